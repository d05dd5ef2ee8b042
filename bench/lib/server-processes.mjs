// Starting the servers the benchmark measures, each as its own process on 127.0.0.1 with
// the event-loop monitor preloaded (loop-monitor.mjs), and a redis-server for the scenarios
// across two nodes. A server handle: { kind, port, pid, pids(), resetLoopMax(), loopMax(), stop() }.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { askLoopMax, LOOP_MONITOR, loopDirectory, processTree } from './loop-delay.mjs';
import { freePort, waitForPort } from './processes.mjs';
import { BENCH_DIR, ROOT, SECRET } from './settings.mjs';

/** The command line of each server kind after `node --import <monitor>`. */
function serverArguments(kind, port) {
  if (kind === 'switchboard') return ['--', join(ROOT, 'dist/cli/main.js'), 'start'];
  if (kind === 'socketio') return [join(BENCH_DIR, 'servers/socketio.mjs'), String(port), SECRET];
  return [join(BENCH_DIR, 'servers/ws-servers.mjs'), kind, String(port), SECRET];
}

/**
 * A fresh `kind` server (switchboard, socketio, ws-loop, frame-once) on a free port;
 * `extraEnv` adds to (or overrides) Switchboard's environment. It resolves once the server
 * listens, and fails at once when the server exits first (a bad setting).
 */
export async function startServer(kind, extraEnv = {}) {
  const port = await freePort();
  const switchboardEnv = {
    WS_HOST: '127.0.0.1',
    WS_PORT: String(port),
    WS_MAX_MESSAGES_PER_MINUTE: '0',
    WS_MAX_BUFFERED_BYTES: String(64 * 1024 * 1024),
    WS_MAX_CHANNELS_PER_CONNECTION: '10',
    WS_LOG_LEVEL: 'error',
    TOKEN_SECRET: SECRET,
    ...extraEnv,
  };
  // BENCH_SERVER_NODE_ARGS: more Node options for every server process, workers included
  // (cluster.fork passes execArgv on), e.g. "--cpu-prof --cpu-prof-dir=/tmp/profiles".
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, '--import', LOOP_MONITOR, ...serverArguments(kind, port)], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, ...(kind === 'switchboard' && switchboardEnv), BENCH_LOOP_DIR: loopDirectory() },
  });
  let onExit;
  const exited = new Promise((_, reject) => {
    onExit = (code) => reject(new Error(`${kind} exited with code ${code} before listening`));
    child.once('exit', onExit);
  });
  try {
    await Promise.race([waitForPort(port), exited]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    child.off('exit', onExit);
  }
  const handle = {
    kind,
    port,
    pid: child.pid,
    /** The server's processes: itself and its children (Switchboard's cluster workers with WS_WORKER_NUM > 1). */
    pids: () => processTree(child.pid),
    /** The largest event-loop delay, in ms, over all its processes since the previous call (or the start). */
    async loopMax() {
      const { maxMs, perProcess, stalls } = await askLoopMax(handle.pids());
      handle.lastLoop = perProcess;
      handle.lastStalls = stalls;
      return maxMs;
    },
    /** Starts a measured part: every process starts its largest delay over, and what came before is forgotten. */
    async resetLoopMax() {
      await askLoopMax(handle.pids(), { record: false });
    },
    /** {pid: ms} of the last loopMax() call. */
    lastLoop: {},
    /** {pid: the longest stall's make-up (loop-monitor.mjs)} of the last loopMax() call. */
    lastStalls: {},
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', resolve)));
    },
  };
  return handle;
}

/** A redis-server on a free port, without persistence; null when none is installed. */
export async function startRedis() {
  if (spawnSync('redis-server', ['--version']).status !== 0) return null;
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await waitForPort(port);
  return {
    port,
    pid: child.pid,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', resolve)));
    },
  };
}
