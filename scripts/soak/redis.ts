/**
 * `--redis`: a redis-server for the run, on a free loopback port, without persistence, and
 * what the report reads from it (its memory, and how many keys are left once every client
 * has gone: memberships that outlive their connections would show there).
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './server.js';

export interface SoakRedis {
  readonly port: number;
  /** used_memory in bytes and the number of keys. */
  figures(): Promise<{ usedMemory: number; keys: number }>;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<SoakRedis> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const started = await new Promise<Error | null>((resolve) => {
    child.once('error', (error) => resolve(error));
    child.once('spawn', () => resolve(null));
  });
  if (started !== null) throw new Error(`--redis: cannot start redis-server (${started.message}); install it (apt-get install redis-server) or run without --redis`);
  const deadline = Date.now() + 10_000;
  let client: Redis;
  for (;;) {
    client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (error) {
      client.disconnect();
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`--redis: redis-server did not answer on port ${port}: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    port,
    async figures() {
      const info = await client.info('memory');
      const usedMemory = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
      return { usedMemory, keys: await client.dbsize() };
    },
    async stop() {
      client.disconnect();
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    },
  };
}
