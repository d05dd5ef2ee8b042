/** Running detached: the pid file, the log file, and `switchboard stop` (SPEC §1). */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../errors.js';

/** Set in the environment of the detached child so it knows it is the daemon. */
export const DAEMON_CHILD_ENV = 'SWITCHBOARD_DAEMON_CHILD';
/** Where a daemon logs when WS_LOG_FILE is not set: a detached process has no terminal. */
export const DEFAULT_DAEMON_LOG = './switchboard.log';

export type DaemonMessage = { type: 'ready'; url: string } | { type: 'failed'; message: string; exitCode: number };

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readPid(pidFile: string): number | null {
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8').trim();
  } catch {
    return null;
  }
  const pid = Number(text);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

/**
 * Creates the pid file exclusively, so that of two daemons started at once only one
 * runs. A pid file left by a process that is gone is replaced.
 */
export function writePidFile(pidFile: string): void {
  const write = (flag: 'wx' | 'w'): void => writeFileSync(pidFile, `${process.pid}\n`, { flag });
  try {
    write('wx');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      const owner = readPid(pidFile);
      if (owner !== null && owner !== process.pid && isAlive(owner)) {
        throw new ConfigError(`WS_PID_FILE (pidFile): already running (pid ${owner}, pid file ${pidFile})`);
      }
      try {
        write('w');
        return;
      } catch (retry) {
        throw new ConfigError(`WS_PID_FILE (pidFile): cannot write '${pidFile}': ${(retry as NodeJS.ErrnoException).code ?? String(retry)}`);
      }
    }
    throw new ConfigError(`WS_PID_FILE (pidFile): cannot write '${pidFile}': ${code ?? String(error)}`);
  }
}

/** Removes the pid file if it still names this process. */
export function removePidFile(pidFile: string): void {
  if (readPid(pidFile) === process.pid) rmSync(pidFile, { force: true });
}

/**
 * Starts this CLI again, detached, with the same arguments, and waits until the child
 * reports that it listens (or why it could not). Returns the exit code for the parent.
 */
export async function daemonize(args: readonly string[], logFile: string, pidFile: string): Promise<number> {
  const existing = readPid(pidFile);
  if (existing !== null && isAlive(existing)) {
    process.stderr.write(`switchboard: already running (pid ${existing}, pid file ${pidFile})\n`);
    return 1;
  }
  let log: number;
  try {
    mkdirSync(dirname(resolve(logFile)), { recursive: true });
    log = openSync(logFile, 'a');
  } catch (error) {
    throw new ConfigError(`WS_LOG_FILE (logFile): cannot open '${logFile}': ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  // `--` keeps Node from reading our flags (Node 20 takes `--env-file` even after the script).
  const child = spawn(process.execPath, [...process.execArgv, '--', process.argv[1] as string, ...args], {
    detached: true,
    stdio: ['ignore', log, log, 'ipc'],
    env: { ...process.env, [DAEMON_CHILD_ENV]: '1' },
  });
  const outcome = await new Promise<DaemonMessage>((done) => {
    child.once('message', (message: DaemonMessage) => done(message));
    child.once('exit', (code) =>
      done({ type: 'failed', message: `the server exited during start-up (code ${code ?? 'none'}); see ${logFile}`, exitCode: code ?? 1 }),
    );
  });
  child.removeAllListeners();
  if (child.connected) child.disconnect();
  child.unref();
  if (outcome.type === 'failed') {
    process.stderr.write(`switchboard: ${outcome.message}\n`);
    return outcome.exitCode;
  }
  process.stdout.write(`switchboard: started in the background (pid ${child.pid}) on ${outcome.url}; logs in ${resolve(logFile)}\n`);
  return 0;
}

/** Tells the parent of a daemon child how start-up went, then lets go of it. */
export function reportToParent(message: DaemonMessage): void {
  if (typeof process.send !== 'function') return;
  process.send(message, () => process.disconnect());
}

/** `switchboard stop`: SIGTERM to the daemon, then wait until it has exited. */
export async function stopDaemon(pidFile: string, timeoutMs: number): Promise<number> {
  const pid = readPid(pidFile);
  if (pid === null) {
    process.stderr.write(`switchboard: no pid file at ${pidFile}; is the server running with --daemon?\n`);
    return 1;
  }
  if (!isAlive(pid)) {
    rmSync(pidFile, { force: true });
    process.stderr.write(`switchboard: process ${pid} from ${pidFile} is not running; removed the stale pid file\n`);
    return 1;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      process.stderr.write(`switchboard: process ${pid} did not exit within ${Math.round(timeoutMs / 1000)} s\n`);
      return 1;
    }
    await new Promise((done) => setTimeout(done, 50));
  }
  process.stdout.write(`switchboard: stopped (pid ${pid})\n`);
  return 0;
}
