/**
 * A real Redis Cluster: six redis-server processes with --cluster-enabled (three masters,
 * a replica each, a node taken for failed after 2 s), made into a cluster by
 * `redis-cli --cluster create`. A master can be SIGKILLed, its replica's promotion waited
 * for, and the killed node started again: it reads its nodes.conf, learns it was replaced
 * and rejoins as a replica.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { freeClusterPort, pollFor, REDIS_CLI, redisCommand, RedisProcess, serverArgs, topologyDir, TOPOLOGY_MS } from './redis-topology.js';

export interface ClusterOptions {
  /** Every node keeps an fsync'd append-only file across kill and restart. */
  persistent?: boolean;
  /** cluster-node-timeout. @default 2000 */
  nodeTimeoutMs?: number;
}

export interface SlotRange {
  from: number;
  to: number;
  /** host:port of the master serving it. */
  master: string;
}

export interface ClusterTopology {
  /** Every node's host:port (for REDIS_CLUSTER_NODES, any of them will do). */
  readonly nodes: readonly string[];
  /** Which master serves which slots, as a running node sees it. */
  slots(): Promise<SlotRange[]>;
  /** The masters now, in slot order. */
  masters(): Promise<string[]>;
  /** The master serving `key`'s slot (CLUSTER KEYSLOT: hash tags count). */
  masterForKey(key: string): Promise<string>;
  /** SIGKILLs a master (one of masters()). */
  killMaster(address: string): Promise<void>;
  /** Waits until the killed master's slots are served by a promoted replica and every running node says cluster_state:ok; resolves with the new master. */
  waitForFailover(killed: string, timeoutMs?: number): Promise<string>;
  /** Starts a killed node again; resolves once it is a replica in sync and every node sees it. */
  restart(address: string): Promise<void>;
  isRunning(address: string): boolean;
  /** The running replicas of a master (CLUSTER NODES). */
  replicasOf(master: string): Promise<string[]>;
  /** SIGSTOP / SIGCONT a node (a replica that falls behind). */
  pause(address: string): void;
  resume(address: string): void;
  stopAll(): Promise<void>;
}

type SlotsReply = [number, number, [string, number, string], ...unknown[]][];

/** Starts six nodes, creates the cluster and waits until every node says it is ok with every slot covered. */
export async function startCluster(options: ClusterOptions = {}): Promise<ClusterTopology> {
  const persistent = options.persistent === true;
  const nodeTimeout = options.nodeTimeoutMs ?? 2000;
  const root = topologyDir('cluster');
  const servers: RedisProcess[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(servers.map((server) => server.kill()));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const taken = new Set<number>();
    for (let index = 0; index < 6; index++) {
      const port = await freeClusterPort(taken);
      taken.add(port).add(port + 10_000);
      const dir = join(root, `node-${port}`);
      const clusterArgs = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeout), '--cluster-replica-validity-factor', '0'];
      servers.push(new RedisProcess(port, dir, () => [...serverArgs(port, dir, persistent), ...clusterArgs]));
    }
    await Promise.all(servers.map((server) => server.start()));
    await createCluster(servers.map((server) => server.address));
    const topology = clusterTopology(servers, stopAll);
    await pollFor(() => healthy(servers, null), TOPOLOGY_MS, 'the cluster to be ok on every node, with every replica in sync', 200);
    return topology;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

async function createCluster(addresses: readonly string[]): Promise<void> {
  if (REDIS_CLI === null) throw new Error('redis-cli is not installed');
  const child = spawn(REDIS_CLI, ['--cluster', 'create', ...addresses, '--cluster-replicas', '1', '--cluster-yes'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0 || !output.includes('[OK] All 16384 slots covered')) throw new Error(`redis-cli --cluster create failed (exit ${code}): ${output}`);
}

function clusterTopology(servers: readonly RedisProcess[], stopAll: () => Promise<void>): ClusterTopology {
  const byAddress = (address: string): RedisProcess => {
    const server = servers.find((candidate) => candidate.address === address);
    if (server === undefined) throw new Error(`${address} is not a node of this cluster`);
    return server;
  };
  const slots = (): Promise<SlotRange[]> =>
    pollFor(
      async () => {
        for (const server of servers) {
          if (!server.running) continue;
          try {
            return slotRanges((await redisCommand(server.address, 'CLUSTER', 'SLOTS')) as SlotsReply);
          } catch {
            // ask the next one
          }
        }
        return null;
      },
      10_000,
      'a node to answer CLUSTER SLOTS',
    );
  /** What each killed master served, to find its successor. */
  const servedBy = new Map<string, SlotRange[]>();
  const topology: ClusterTopology = {
    nodes: servers.map((server) => server.address),
    slots,
    masters: async () => [...new Set((await slots()).map((range) => range.master))],
    async masterForKey(key) {
      const running = servers.find((server) => server.running);
      if (running === undefined) throw new Error('no node of the cluster is running');
      const slot = (await redisCommand(running.address, 'CLUSTER', 'KEYSLOT', key)) as number;
      const range = (await slots()).find((candidate) => candidate.from <= slot && slot <= candidate.to);
      if (range === undefined) throw new Error(`no master serves slot ${slot}`);
      return range.master;
    },
    async killMaster(address) {
      const ranges = (await slots()).filter((range) => range.master === address);
      if (ranges.length === 0) throw new Error(`${address} is not a master of the cluster`);
      servedBy.set(address, ranges);
      await byAddress(address).kill();
    },
    async waitForFailover(killed, timeoutMs = TOPOLOGY_MS) {
      const ranges = servedBy.get(killed);
      if (ranges === undefined) throw new Error(`${killed} was not killed with killMaster()`);
      return pollFor(
        async () => {
          if (!(await healthy(servers, killed))) return null;
          const [first] = ranges;
          const now = (await slots()).find((range) => first !== undefined && range.from <= first.from && first.from <= range.to);
          return now !== undefined && now.master !== killed ? now.master : null;
        },
        timeoutMs,
        `a replica of ${killed} to take over its slots`,
        200,
      );
    },
    async restart(address) {
      await byAddress(address).start();
      await pollFor(
        async () => {
          const role = (await redisCommand(address, 'ROLE')) as [string, string, number, string];
          return role[0] === 'slave' && role[3] === 'connected' && (await healthy(servers, null));
        },
        TOPOLOGY_MS,
        `${address} to rejoin the cluster as a replica`,
        200,
      );
    },
    isRunning: (address) => byAddress(address).running,
    async replicasOf(master) {
      const lines = String(await redisCommand(master, 'CLUSTER', 'NODES')).trim().split('\n').map((line) => line.split(' '));
      const id = lines.find(([, address = '']) => address.split('@')[0] === master)?.[0];
      if (id === undefined) throw new Error(`${master} is not in its own CLUSTER NODES`);
      return lines
        .filter(([, address = '', flags = '', masterId]) => flags.includes('slave') && masterId === id && byAddress(address.split('@')[0] ?? '').running)
        .map(([, address = '']) => address.split('@')[0] ?? '');
    },
    pause: (address) => byAddress(address).pause(),
    resume: (address) => byAddress(address).resume(),
    stopAll,
  };
  return topology;
}

function slotRanges(reply: SlotsReply): SlotRange[] {
  return reply.map(([from, to, [host, port]]) => ({ from, to, master: `${host}:${port}` })).sort((a, b) => a.from - b.from);
}

/**
 * True when every running node says cluster_state:ok with all slots ok, knows every other
 * node without a fail flag on a running one, no slot is served by `dead` (or any stopped
 * node), and every running replica is in sync with its master.
 */
async function healthy(servers: readonly RedisProcess[], dead: string | null): Promise<boolean> {
  const running = servers.filter((server) => server.running);
  const stopped = new Set(servers.filter((server) => !server.running).map((server) => server.address));
  if (dead !== null) stopped.add(dead);
  for (const server of running) {
    const info = String(await redisCommand(server.address, 'CLUSTER', 'INFO'));
    if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) return false;
    const ranges = slotRanges((await redisCommand(server.address, 'CLUSTER', 'SLOTS')) as SlotsReply);
    if (ranges.reduce((sum, range) => sum + range.to - range.from + 1, 0) !== 16_384) return false;
    if (ranges.some((range) => stopped.has(range.master))) return false;
    const nodes = String(await redisCommand(server.address, 'CLUSTER', 'NODES'))
      .trim()
      .split('\n');
    if (nodes.length !== servers.length) return false;
    for (const line of nodes) {
      const [, address = '', flags = ''] = line.split(' ');
      const hostPort = address.split('@')[0] ?? '';
      if (!stopped.has(hostPort) && /fail|handshake|noaddr/.test(flags)) return false;
    }
    const role = (await redisCommand(server.address, 'ROLE')) as [string, string, number, string];
    if (role[0] === 'slave' && role[3] !== 'connected') return false;
  }
  return true;
}
