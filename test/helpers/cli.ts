/**
 * Runs the built `switchboard` CLI (dist/cli/main.js, what users run) as a real child
 * process, in a temp working directory with a controlled environment, and records what
 * it prints. Every process started here is killed in `t.after`, even when a test fails.
 */
import { DEFAULTS } from '../../src/config/options.js';
import { describeOptions } from '../../src/config/resolve.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

export const CLI_PATH = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const PACKAGE_JSON_PATH = fileURLToPath(new URL('../../package.json', import.meta.url));

/** How long anything that must happen (start-up, exit) may take before a test gives up. */
export const GENEROUS_MS = 30_000;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export type LogLine = Record<string, unknown>;

/** A fresh working directory under the OS temp dir (its real path), removed after the test. */
export function tempDir(t: TestContext): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'switchboard-cli-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every environment variable the configuration reads (WS_*, TOKEN_SECRET, JWT_*, REDIS_*). */
const CONFIG_VARIABLES = new Set(describeOptions(DEFAULTS).map((field) => field.env));

/**
 * process.env without any variable the configuration reads (a developer's own
 * TOKEN_SECRET or REDIS_* must not leak into a test), nor daemon/test-runner markers,
 * plus `overrides`.
 */
export function cliEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('WS_') || CONFIG_VARIABLES.has(key)) delete env[key];
  }
  delete env.SWITCHBOARD_DAEMON_CHILD;
  delete env.NODE_TEST_CONTEXT;
  // Set by npm for the script it runs (npm test): the CLI's hints for npm users depend on it.
  delete env.npm_lifecycle_event;
  return { ...env, ...overrides };
}

/** A port that was free a moment ago (bind to port 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port from a TCP server');
  return address.port;
}

/** A TCP server holding a port on 127.0.0.1 for the test (closed after it); resolves with the port. */
export async function occupyPort(t: TestContext): Promise<number> {
  const blocker = createServer();
  await new Promise<void>((resolve, reject) => {
    blocker.once('error', reject);
    blocker.listen(0, '127.0.0.1', () => resolve());
  });
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const address = blocker.address();
  if (address === null || typeof address === 'string') throw new Error('no port from a TCP server');
  return address.port;
}

/** Rejects with `what` if `promise` has not settled within `timeoutMs`. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Parses the JSON lines of a pino log; lines that are not JSON objects are skipped. */
export function parseLogLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // a partly written line; the caller polls again
    }
  }
  return lines;
}

/** The URL from a "listening on <url>" log line, or null when there is none. */
export function listeningUrlIn(lines: readonly LogLine[]): string | null {
  for (const line of lines) {
    if (typeof line.msg === 'string' && line.msg.startsWith('listening on')) {
      const match = /^listening on (\S+)/.exec(line.msg);
      if (match?.[1] !== undefined) return match[1];
    }
  }
  return null;
}

/** Lines of a stream's text without the trailing newline. */
export function linesOf(text: string): string[] {
  const trimmed = text.replace(/\n+$/, '');
  return trimmed === '' ? [] : trimmed.split('\n');
}

/** True when a process with this pid exists (EPERM means it exists but is not ours). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid in a pid file, or null when the file is missing or holds no pid. */
export function readPidFile(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Polls until `condition` holds; rejects after `timeoutMs`. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export interface SpawnOptions {
  cwd: string;
  /** The whole environment of the child; build it with cliEnv(). */
  env: NodeJS.ProcessEnv;
}

/** One running `switchboard` process. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  /** Resolves once the process has exited and its output is complete. */
  readonly exited: Promise<CliResult>;
  private result: CliResult | null = null;

  constructor(args: readonly string[], options: SpawnOptions) {
    // `--` as in `npm start` and the bin's shebang: Node 20 would otherwise take `--env-file` as its own flag.
    this.child = spawn(process.execPath, ['--', CLI_PATH, ...args], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise<CliResult>((resolve, reject) => {
      this.child.once('error', reject);
      this.child.once('close', (code, signal) => {
        this.result = { code, signal, stdout: this.stdout, stderr: this.stderr };
        resolve(this.result);
      });
    });
    // A test that never awaits `exited` must not see an unhandled rejection.
    this.exited.catch(() => undefined);
  }

  get running(): boolean {
    return this.result === null;
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('the CLI process did not start');
    return this.child.pid;
  }

  /** The JSON log lines printed on stdout so far. */
  logLines(): LogLine[] {
    return parseLogLines(this.stdout);
  }

  /** Waits for the "listening on" log line and returns its URL; fails if the process exits first. */
  async listeningUrl(timeoutMs = GENEROUS_MS): Promise<string> {
    await waitUntil(
      () => {
        if (listeningUrlIn(this.logLines()) !== null) return true;
        if (!this.running) throw new Error(`the server exited before listening: code ${String(this.result?.code)}, stderr: ${this.stderr}`);
        return false;
      },
      timeoutMs,
      `a "listening on" log line; stdout so far: ${this.stdout}`,
    );
    const url = listeningUrlIn(this.logLines());
    if (url === null) throw new Error('the "listening on" line disappeared');
    return url;
  }

  /** Waits for the process to exit, failing the test after `timeoutMs`. */
  async waitForExit(timeoutMs = GENEROUS_MS): Promise<CliResult> {
    return within(this.exited, timeoutMs, `switchboard ${this.child.spawnargs.slice(3).join(' ')} to exit`);
  }

  /** SIGKILLs the process if it still runs and waits for it. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await within(this.exited, GENEROUS_MS, 'a killed CLI process to exit').catch(() => undefined);
  }
}

/** Starts the CLI; the process is killed after the test if it still runs. */
export function spawnCli(t: TestContext, args: readonly string[], options: SpawnOptions): CliProcess {
  const cli = new CliProcess(args, options);
  t.after(() => cli.kill());
  return cli;
}

/** Runs a CLI command that should end on its own, and returns what it printed and its exit code. */
export async function runCli(t: TestContext, args: readonly string[], options: SpawnOptions, timeoutMs = GENEROUS_MS): Promise<CliResult> {
  return spawnCli(t, args, options).waitForExit(timeoutMs);
}

/**
 * Makes sure a daemon the test may have started is gone afterwards: the pid comes from
 * `pid()` (a pid file, the CLI's output) at cleanup time.
 */
export function killDaemonAfter(t: TestContext, pid: () => number | null): void {
  t.after(async () => {
    const daemon = pid();
    if (daemon === null || daemon === process.pid || !isAlive(daemon)) return;
    try {
      process.kill(daemon, 'SIGKILL');
    } catch {
      return;
    }
    await waitUntil(() => !isAlive(daemon), GENEROUS_MS, `daemon ${daemon} to die`).catch(() => undefined);
  });
}

/**
 * Pids of switchboard CLI processes whose working directory is `dir` (Linux /proc; an
 * empty list where there is no /proc). Finds a daemon even when it wrote no pid anywhere.
 */
export function cliProcessesIn(dir: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // After-hooks run in the order they were added, so the directory may already be removed.
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cwd !== dir && cwd !== `${dir} (deleted)`) continue;
      const commandLine = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (commandLine.includes(CLI_PATH)) pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to inspect
    }
  }
  return pids;
}

/** Kills, after the test, every CLI process still running in `dir` (daemons included). */
export function killCliProcessesInAfter(t: TestContext, dir: string): void {
  t.after(async () => {
    const pids = cliProcessesIn(dir);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await waitUntil(() => pids.every((pid) => !isAlive(pid)), GENEROUS_MS, `processes ${pids.join(', ')} to die`).catch(() => undefined);
  });
}

/** The pid in "started in the background (pid N)" printed by `start --daemon`. */
export function daemonPidFromOutput(stdout: string): number | null {
  const match = /\(pid (\d+)\)/.exec(stdout);
  return match?.[1] === undefined ? null : Number(match[1]);
}
