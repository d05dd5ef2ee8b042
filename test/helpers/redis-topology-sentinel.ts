/**
 * A real Redis Sentinel setup: one master, one or two replicas and three sentinels (quorum
 * 2, a master taken for down after 1 s), each a redis-server process with its files in a
 * temporary directory. The master can be SIGKILLed, the failover waited for, and the old
 * master started again: it comes back as a master with no replicaof, and the sentinels
 * turn it into a replica of the new one, as they would after a real crash.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, pollFor, redisCommand, RedisProcess, serverArgs, splitAddress, topologyDir, TOPOLOGY_MS } from './redis-topology.js';

export const SENTINEL_MASTER_NAME = 'mymaster';

/** How long a restarted old master may take to be made a replica by the sentinels (see restart()). */
export const REJOIN_MS = 2 * TOPOLOGY_MS;

export interface SentinelOptions {
  /** 1 or 2. @default 1 */
  replicas?: number;
  /** Every data node keeps an fsync'd append-only file across kill and restart. */
  persistent?: boolean;
  /** @default 'mymaster' */
  name?: string;
}

export interface SentinelTopology {
  readonly name: string;
  /** The sentinels' host:port, e.g. for REDIS_SENTINELS. */
  readonly sentinels: readonly string[];
  /** Every data node's host:port (master and replicas, whatever their role now). */
  readonly servers: readonly string[];
  /** The master the sentinels name now. */
  masterAddress(): Promise<string>;
  /** SIGKILLs the current master; resolves with its address. */
  killMaster(): Promise<string>;
  /** Waits until every sentinel names a master other than `oldMaster`, and it acts as one. */
  waitForFailover(oldMaster: string, timeoutMs?: number): Promise<string>;
  /**
   * Starts a killed data node again; resolves once it replicates the current master and the
   * sentinels see it. The sentinels wait 8 s of a steady report before they turn an old
   * master into a replica, ask for INFO every 10 s, and take no action at all for 30 s after
   * a pause of their own timer over 2 s (TILT, which a loaded machine brings about): hence
   * the long bound.
   */
  restart(address: string, timeoutMs?: number): Promise<void>;
  /**
   * Starts a killed data node again as a replica of the master the sentinels name (as an
   * orchestrated restart brings a crashed master back: asking the sentinels first), and
   * resolves once it replicates it. Unlike restart(), nothing waits for the sentinels.
   */
  restartAsReplica(address: string, timeoutMs?: number): Promise<void>;
  isRunning(address: string): boolean;
  /** The running data nodes other than the master the sentinels name. */
  replicas(): Promise<string[]>;
  /** SIGSTOP / SIGCONT a data node (a replica that falls behind). */
  pause(address: string): void;
  resume(address: string): void;
  stopAll(): Promise<void>;
}

/** Starts the master, its replicas and the sentinels, and waits until the sentinels know each other and every replica. */
export async function startSentinel(options: SentinelOptions = {}): Promise<SentinelTopology> {
  const name = options.name ?? SENTINEL_MASTER_NAME;
  const replicaCount = options.replicas ?? 1;
  const persistent = options.persistent === true;
  const root = topologyDir('sentinel');
  const data: RedisProcess[] = [];
  const sentinels: RedisProcess[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all([...sentinels, ...data].map((server) => server.kill()));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const masterPort = await freePort();
    for (let index = 0; index <= replicaCount; index++) {
      const port = index === 0 ? masterPort : await freePort();
      const dir = join(root, `redis-${port}`);
      const replicaOf = index === 0 ? [] : ['--replicaof', '127.0.0.1', String(masterPort)];
      data.push(new RedisProcess(port, dir, () => [...serverArgs(port, dir, persistent), ...replicaOf]));
    }
    for (let index = 0; index < 3; index++) {
      const port = await freePort();
      const dir = join(root, `sentinel-${port}`);
      const config = join(dir, 'sentinel.conf');
      const sentinel = new RedisProcess(port, dir, () => [config, '--sentinel']);
      writeFileSync(config, sentinelConfig(port, dir, name, masterPort));
      sentinels.push(sentinel);
    }
    for (const server of data) await server.start();
    for (const sentinel of sentinels) await sentinel.start();
    const topology = sentinelTopology(name, data, sentinels, stopAll);
    await pollFor(() => settled(topology, name, sentinels, replicaCount), TOPOLOGY_MS, 'the sentinels to know each other and every replica', 200);
    return topology;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function sentinelConfig(port: number, dir: string, name: string, masterPort: number): string {
  return [
    `port ${port}`,
    'bind 127.0.0.1',
    `dir "${dir}"`,
    `logfile "${join(dir, 'redis.log')}"`,
    'sentinel resolve-hostnames no',
    `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
    `sentinel down-after-milliseconds ${name} 1000`,
    `sentinel failover-timeout ${name} 4000`,
    `sentinel parallel-syncs ${name} 1`,
    '',
  ].join('\n');
}

function sentinelTopology(name: string, data: readonly RedisProcess[], sentinels: readonly RedisProcess[], stopAll: () => Promise<void>): SentinelTopology {
  const byAddress = (address: string): RedisProcess => {
    const server = data.find((candidate) => candidate.address === address);
    if (server === undefined) throw new Error(`${address} is not a data node of this Sentinel setup`);
    return server;
  };
  const topology: SentinelTopology = {
    name,
    sentinels: sentinels.map((sentinel) => sentinel.address),
    servers: data.map((server) => server.address),
    masterAddress: () => pollFor(() => askMaster(sentinels, name), 10_000, 'a sentinel to name the master'),
    async killMaster() {
      const master = await topology.masterAddress();
      await byAddress(master).kill();
      return master;
    },
    async waitForFailover(oldMaster, timeoutMs = TOPOLOGY_MS) {
      return pollFor(
        async () => {
          const named = new Set<string>();
          for (const sentinel of sentinels) {
            if (!sentinel.running) continue;
            const reply = (await redisCommand(sentinel.address, 'SENTINEL', 'get-master-addr-by-name', name)) as [string, string] | null;
            if (reply === null) return null;
            named.add(`${reply[0]}:${reply[1]}`);
          }
          const [master] = [...named];
          if (named.size !== 1 || master === undefined || master === oldMaster) return null;
          const role = (await redisCommand(master, 'ROLE')) as [string];
          return role[0] === 'master' ? master : null;
        },
        timeoutMs,
        `the sentinels to promote a replica in place of ${oldMaster}`,
        200,
      );
    },
    async restart(address, timeoutMs = REJOIN_MS) {
      const server = byAddress(address);
      await server.start();
      await pollFor(
        async () => {
          const master = await askMaster(sentinels, name);
          if (master === null || master === address) return false;
          if (!(await replicates(address, master))) return false;
          // The sentinels' view of its link lags by up to their 10 s INFO period: their flags suffice.
          return seenAsReplica(sentinels, name, address, false);
        },
        timeoutMs,
        `${address} to rejoin as a replica`,
        200,
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}; what the sentinels logged: ${sentinelEvents(sentinels)}`);
      });
    },
    async restartAsReplica(address, timeoutMs = TOPOLOGY_MS) {
      const master = await topology.masterAddress();
      const { host, port } = splitAddress(master);
      await byAddress(address).start(['--replicaof', host, String(port)]);
      await pollFor(
        () => replicates(address, master),
        timeoutMs,
        `${address} to replicate ${master}`,
        200,
      );
    },
    isRunning: (address) => byAddress(address).running,
    async replicas() {
      const master = await topology.masterAddress();
      return data.filter((server) => server.running && server.address !== master).map((server) => server.address);
    },
    pause: (address) => byAddress(address).pause(),
    resume: (address) => byAddress(address).resume(),
    stopAll,
  };
  return topology;
}

/** The last events in each sentinel's log (failovers, TILT, reconfigurations), for failure messages. */
function sentinelEvents(sentinels: readonly RedisProcess[]): string {
  return sentinels
    .map((sentinel) => {
      const events = sentinel
        .logTail(20_000)
        .split('\n')
        .filter((line) => / [+-][a-z-]+ /.test(line))
        .slice(-12)
        .map((line) => line.replace(/^\d+:X /, ''));
      return `${sentinel.address}: ${events.join(' | ')}`;
    })
    .join(' || ');
}

/** Whether the data node at `address` is a replica of `master` with its link up. */
async function replicates(address: string, master: string): Promise<boolean> {
  const role = (await redisCommand(address, 'ROLE')) as [string, string, number, string];
  return role[0] === 'slave' && `${role[1]}:${role[2]}` === master && role[3] === 'connected';
}

/** The master the first answering sentinel names, or null. */
async function askMaster(sentinels: readonly RedisProcess[], name: string): Promise<string | null> {
  for (const sentinel of sentinels) {
    if (!sentinel.running) continue;
    try {
      const reply = (await redisCommand(sentinel.address, 'SENTINEL', 'get-master-addr-by-name', name)) as [string, string] | null;
      if (reply !== null) return `${reply[0]}:${reply[1]}`;
    } catch {
      // try the next one
    }
  }
  return null;
}

/** A flat [field, value, ...] reply as an object. */
function fields(reply: unknown): Record<string, string> {
  const list = reply as string[];
  const result: Record<string, string> = {};
  for (let index = 0; index + 1 < list.length; index += 2) result[list[index] as string] = list[index + 1] as string;
  return result;
}

/** True once every sentinel sees the other two and every replica up, and every replica is in sync. */
async function settled(topology: SentinelTopology, name: string, sentinels: readonly RedisProcess[], replicaCount: number): Promise<boolean> {
  for (const sentinel of sentinels) {
    const master = fields(await redisCommand(sentinel.address, 'SENTINEL', 'master', name));
    if (master.flags !== 'master' || master['num-other-sentinels'] !== String(sentinels.length - 1)) return false;
    if (master['num-slaves'] !== String(replicaCount)) return false;
  }
  const master = await topology.masterAddress();
  for (const address of topology.servers) {
    if (address === master) continue;
    const role = (await redisCommand(address, 'ROLE')) as [string, string, number, string];
    if (role[0] !== 'slave' || role[3] !== 'connected') return false;
    if (!(await seenAsReplica(sentinels, name, address))) return false;
  }
  return true;
}

/** True when every running sentinel lists `address` as a replica that is up (and, with `linkUp`, reports its link to the master up). */
async function seenAsReplica(sentinels: readonly RedisProcess[], name: string, address: string, linkUp = true): Promise<boolean> {
  const { port } = splitAddress(address);
  for (const sentinel of sentinels) {
    if (!sentinel.running) continue;
    const replicas = ((await redisCommand(sentinel.address, 'SENTINEL', 'replicas', name)) as unknown[]).map(fields);
    const entry = replicas.find((replica) => replica.port === String(port));
    if (entry === undefined || /s_down|o_down|disconnected/.test(entry.flags ?? '')) return false;
    if (linkUp && entry['master-link-status'] !== 'ok') return false;
  }
  return true;
}
