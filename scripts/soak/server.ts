/**
 * The server under test: the built CLI (`node dist/cli/main.js start`, what users run) as
 * a child process on a free port, configured by environment variables only, from an empty
 * working directory (so that no .env is read), with its log in a file. It runs with the
 * inspector on a loopback port so that the soak can force a garbage collection before it
 * reads the heap (inspector.ts); nothing else uses it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const START_TIMEOUT_MS = 30_000;
const SHUTDOWN_TIMEOUT_S = 10;

export interface ServerSettings {
  readonly heartbeatSeconds: number;
  readonly maxMessagesPerMinute: number;
  readonly maxChannelsPerConnection: number;
  readonly secret: string;
  /** The port of the redis-server to use, or null for the embedded broker. */
  readonly redisPort: number | null;
}

export interface ServerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunningServer {
  readonly pid: number;
  readonly port: number;
  readonly inspectorPort: number;
  readonly logPath: string;
  /** The environment it was started with (the secret masked), for the report. */
  readonly settings: Readonly<Record<string, string>>;
  /** Settles when the process exits, whoever ended it. */
  readonly exited: Promise<ServerExit>;
  /** SIGTERM, then SIGKILL if it has not exited after its shutdown timeout and a margin. */
  stop(): Promise<ServerExit>;
}

/** A port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** process.env without anything the server's configuration reads, so that only the soak's settings count. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^(WS_|REDIS_|JWT_|PUSHER_)/.test(key) || key === 'TOKEN_SECRET' || key === 'SWITCHBOARD_DAEMON_CHILD' || key === 'NODE_TEST_CONTEXT') delete env[key];
  }
  return env;
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function waitUntilReady(port: number, child: ChildProcess, logPath: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the server exited at start-up (${child.signalCode ?? `code ${child.exitCode}`}); its log ends:\n${tail(logPath)}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the server was not ready after ${START_TIMEOUT_MS / 1000} s; its log ends:\n${tail(logPath)}`);
}

export async function startServer(settings: ServerSettings, workDir: string): Promise<RunningServer> {
  const port = await freePort();
  const inspectorPort = await freePort();
  const own: Record<string, string> = {
    WS_HOST: '127.0.0.1',
    WS_PORT: String(port),
    WS_HEARTBEAT_INTERVAL: String(settings.heartbeatSeconds),
    // Three missed heartbeats: a client that stopped answering is closed (4008) well within the run.
    WS_CONNECTION_TIMEOUT: String(settings.heartbeatSeconds * 3),
    WS_MAX_MESSAGES_PER_MINUTE: String(settings.maxMessagesPerMinute),
    WS_MAX_CHANNELS_PER_CONNECTION: String(settings.maxChannelsPerConnection),
    WS_ALLOW_ANONYMOUS: 'false',
    WS_SHUTDOWN_TIMEOUT: String(SHUTDOWN_TIMEOUT_S),
    WS_LOG_LEVEL: 'warn',
    TOKEN_SECRET: settings.secret,
    ...(settings.redisPort !== null && { REDIS_ENABLED: 'true', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(settings.redisPort) }),
  };
  const logPath = join(workDir, 'server.log');
  const log = openSync(logPath, 'a');
  const child = spawn(process.execPath, [`--inspect=127.0.0.1:${inspectorPort}`, '--', CLI, 'start'], {
    cwd: workDir,
    env: { ...cleanEnv(), ...own },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const exited = new Promise<ServerExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  try {
    await waitUntilReady(port, child, logPath);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  const stop = async (): Promise<ServerExit> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), (SHUTDOWN_TIMEOUT_S + 5) * 1000);
    const exit = await exited;
    clearTimeout(killer);
    return exit;
  };
  return { pid: child.pid ?? 0, port, inspectorPort, logPath, settings: { ...own, TOKEN_SECRET: '(set)' }, exited, stop };
}

/** The log's lines at warn level (pino's 40) and at error level or above (50, 60), counted, with the first few. */
export function logProblems(logPath: string): { warnings: number; errors: number; first: string[] } {
  const problems = { warnings: 0, errors: 0, first: [] as string[] };
  let text = '';
  try {
    text = readFileSync(logPath, 'utf8');
  } catch {
    return problems;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let level = 0;
    try {
      level = (JSON.parse(line) as { level?: number }).level ?? 0;
    } catch {
      continue;
    }
    if (level < 40) continue;
    if (level >= 50) problems.errors++;
    else problems.warnings++;
    if (problems.first.length < 5) problems.first.push(line.length > 300 ? `${line.slice(0, 300)}…` : line);
  }
  return problems;
}
