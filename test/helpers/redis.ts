/**
 * A real `redis-server` process for one test, on a free port, without persistence (or,
 * asked for, with an append-only file in a temporary directory that outlives stop/start).
 * Without redis-server on this machine the test is skipped, except under CI=true, where
 * it fails: CI installs Redis, so a missing one is a broken CI, not a reason to skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { freePort } from './cli.js';

export const REDIS_SERVER = findRedisServer();

function findRedisServer(): string | null {
  for (const candidate of ['redis-server', '/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
    const probe = spawnSync(candidate, ['--version'], { encoding: 'utf8' });
    if (probe.status === 0) return candidate;
  }
  return null;
}

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** A plain client for assertions (closed after the test). */
  readonly client: Redis;
  /** Stops the server (SIGKILL: as abrupt as a crash). Data is lost, unless started with `persistent`. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  readonly running: boolean;
}

export interface StartRedisOptions {
  /**
   * Every write goes to an append-only file (fsync'd before Redis answers) in a temporary
   * directory kept across stop() and start(): what Redis acknowledged survives a SIGKILL.
   */
  persistent?: boolean;
}

/**
 * Starts redis-server for the test, or skips the test (fails it under CI=true) when
 * there is none. Returns null when skipped: `const redis = await startRedis(t); if (!redis) return;`.
 */
export async function startRedis(t: TestContext, extraArgs: readonly string[] = [], options: StartRedisOptions = {}): Promise<TestRedis | null> {
  if (REDIS_SERVER === null) {
    if (process.env.CI === 'true') throw new Error('redis-server is not installed, and CI=true: Redis tests must run in CI (.ci/run installs it)');
    t.skip('redis-server is not installed');
    return null;
  }
  const port = await freePort();
  let child: ChildProcess | null = null;
  const dataDir = options.persistent === true ? mkdtempSync(join(tmpdir(), 'switchboard-redis-')) : null;
  const persistence = dataDir === null ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dataDir];

  const start = async (): Promise<void> => {
    const process = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--loglevel', 'warning', ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = process;
    let output = '';
    process.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    process.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (process.exitCode !== null) throw new Error(`redis-server exited at start: ${output}`);
      // With --requirepass, the password goes in the options: ioredis's ready check (INFO) fails without it.
      const password = extraArgs.includes('--requirepass') ? extraArgs[extraArgs.indexOf('--requirepass') + 1] : undefined;
      const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, ...(password !== undefined && { password }) });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        probe.disconnect();
      }
      if (Date.now() > deadline) {
        // Not left running: the test's cleanup is registered only once the server is up.
        process.kill('SIGKILL');
        throw new Error(`redis-server did not start on port ${port}: ${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const stop = async (): Promise<void> => {
    const process = child;
    child = null;
    if (process === null || process.exitCode !== null || process.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => process.once('exit', () => resolve()));
    process.kill('SIGKILL');
    await exited;
  };

  try {
    await start();
  } catch (error) {
    if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const passwordIndex = extraArgs.indexOf('--requirepass');
  const client = new Redis({
    port,
    host: '127.0.0.1',
    ...(passwordIndex !== -1 && { password: extraArgs[passwordIndex + 1] }),
    retryStrategy: () => 200,
    maxRetriesPerRequest: 1,
  });
  client.on('error', () => undefined);
  t.after(async () => {
    client.disconnect();
    await stop();
    if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client,
    stop,
    start,
    get running() {
      return child !== null;
    },
  };
}

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
