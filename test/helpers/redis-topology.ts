/**
 * Real Redis topologies for the reliability tests and `npm run chaos`: the pieces they share
 * (a redis-server process that can be SIGKILLed and started again on its port, one-shot
 * commands, polling) and a single Redis with optional AOF persistence. Sentinel and Cluster
 * are in redis-topology-sentinel.ts and redis-topology-cluster.ts; the wrappers for
 * node:test (cleanup, skip without redis-server) in redis-topology-test.ts. Nothing here
 * takes a TestContext, so a plain script can use it too.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './cli.js';
import { REDIS_SERVER } from './redis.js';

export { REDIS_SERVER, freePort };

export const REDIS_CLI = findProgram(['redis-cli', '/usr/bin/redis-cli', '/usr/local/bin/redis-cli']);

function findProgram(candidates: readonly string[]): string | null {
  for (const candidate of candidates) {
    if (spawnSync(candidate, ['--version'], { encoding: 'utf8' }).status === 0) return candidate;
  }
  return null;
}

/** Why the topologies cannot run on this machine, or null when they can. */
export function missingRedis(): string | null {
  if (REDIS_SERVER === null) return 'redis-server is not installed';
  if (REDIS_CLI === null) return 'redis-cli is not installed';
  return null;
}

/** How long a topology may take to come up, fail over or settle before a helper gives up. */
export const TOPOLOGY_MS = 60_000;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it gives something other than null/false; rejects after `timeoutMs`. */
export async function pollFor<T>(check: () => Promise<T | null | false> | T | null | false, timeoutMs: number, what: string, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await check();
      if (value !== null && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError instanceof Error ? ` (last error: ${lastError.message})` : ''}`);
    await sleep(everyMs);
  }
}

/** "127.0.0.1:6379" → its parts. */
export function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

/**
 * One command on a fresh connection that is closed right after: for polling servers that
 * may be down, failing over or restarting (no retry, no offline queue, a short timeout).
 */
export async function redisCommand(address: string, command: string, ...args: (string | number)[]): Promise<unknown> {
  const { host, port } = splitAddress(address);
  const redis = new Redis({ host, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 2000, commandTimeout: 2000, enableReadyCheck: false });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await redis.call(command, ...args);
  } finally {
    redis.disconnect();
  }
}

/** A port whose cluster bus port (port + 10000) is free too, both below the ephemeral range. */
export async function freeClusterPort(taken: ReadonlySet<number> = new Set()): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 15_000 + Math.floor(Math.random() * 7000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await portIsFree(port)) && (await portIsFree(port + 10_000))) return port;
  }
  throw new Error('no free port pair (port, port + 10000) found for a cluster node');
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Every redis-server this process started and has not seen exit: killed if the process exits first. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A temporary directory for a topology's files. */
export function topologyDir(kind: string): string {
  return mkdtempSync(join(tmpdir(), `switchboard-${kind}-`));
}

/**
 * One redis-server (or sentinel) on a fixed port, with its files in `dir` (its log is
 * `dir/redis.log`): started, SIGKILLed as abruptly as a crash, started again on the same
 * port with the same files.
 */
export class RedisProcess {
  readonly address: string;
  private child: ChildProcess | null = null;

  constructor(
    readonly port: number,
    readonly dir: string,
    /** Arguments after the program: options, or a config file first. */
    private readonly args: () => readonly string[],
  ) {
    this.address = `127.0.0.1:${port}`;
    mkdirSync(dir, { recursive: true });
  }

  get running(): boolean {
    return this.child !== null;
  }

  /** Starts it (with `extraArgs` after its own, this time only) and waits until it answers PING. */
  async start(extraArgs: readonly string[] = []): Promise<void> {
    if (REDIS_SERVER === null) throw new Error('redis-server is not installed');
    if (this.child !== null) return;
    const child = spawn(REDIS_SERVER, [...this.args(), ...extraArgs], { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    this.child = child;
    running.add(child);
    child.once('exit', () => {
      running.delete(child);
      if (this.child === child) this.child = null;
    });
    try {
      await pollFor(
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server on ${this.port} exited at start: ${stderr}${this.logTail()}`);
          return (await redisCommand(this.address, 'PING')) === 'PONG';
        },
        15_000,
        `redis-server on port ${this.port} to answer PING`,
        50,
      );
    } catch (error) {
      await this.kill();
      throw error;
    }
  }

  /** SIGKILL, then waits until the process is gone (its port is free again). */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP: frozen (a stalled host), its connections open but unanswered. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** SIGCONT after pause(). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** The end of its log file, for error messages. */
  logTail(characters = 2000): string {
    try {
      return readFileSync(join(this.dir, 'redis.log'), 'utf8').slice(-characters);
    } catch {
      return '';
    }
  }
}

/** Options every data node shares: loopback only, log to a file, persistence as asked. */
export function serverArgs(port: number, dir: string, persistent: boolean): string[] {
  const persistence = persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  return ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...persistence, '--logfile', join(dir, 'redis.log'), '--loglevel', 'notice'];
}

export interface SingleRedis {
  readonly port: number;
  /** host:port */
  readonly address: string;
  readonly persistent: boolean;
  readonly running: boolean;
  /** SIGKILL: a crash. With persistence, every write it acknowledged survives it. */
  kill(): Promise<void>;
  /** Starts it again on the same port; `wipe` deletes its data first (a Redis that lost everything). */
  start(options?: { wipe?: boolean }): Promise<void>;
  /** Kills it and deletes its files. */
  stopAll(): Promise<void>;
}

export interface SingleRedisOptions {
  /** An append-only file fsync'd before every answer, kept across kill() and start(). */
  persistent?: boolean;
  port?: number;
}

/** One redis-server on a free port (or `port`), running when this resolves. */
export async function startSingleRedis(options: SingleRedisOptions = {}): Promise<SingleRedis> {
  const persistent = options.persistent === true;
  const port = options.port ?? (await freePort());
  const root = topologyDir('redis');
  const dataDir = join(root, 'data');
  const server = new RedisProcess(port, dataDir, () => serverArgs(port, dataDir, persistent));
  try {
    await server.start();
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
  return {
    port,
    address: server.address,
    persistent,
    get running() {
      return server.running;
    },
    kill: () => server.kill(),
    async start(startOptions = {}) {
      if (startOptions.wipe === true) {
        await server.kill();
        rmSync(dataDir, { recursive: true, force: true });
        mkdirSync(dataDir, { recursive: true });
      }
      await server.start();
    },
    async stopAll() {
      await server.kill();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
