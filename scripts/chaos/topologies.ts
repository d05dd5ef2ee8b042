/**
 * Redis for a chaos run, one topology at a time: how the nodes find it (their REDIS_*
 * variables), where the channels go (on a Cluster, one channel of each kind per master),
 * and the faults it can suffer. The node faults are in faults.ts.
 */
import { startCluster, type ClusterTopology } from '../../test/helpers/redis-topology-cluster.js';
import { startSentinel, type SentinelTopology } from '../../test/helpers/redis-topology-sentinel.js';
import { redisCommand, sleep, startSingleRedis, type SingleRedis } from '../../test/helpers/redis-topology.js';
import type { Kind } from './ledger.js';
import type { Topology } from './options.js';

export interface FaultContext {
  /** How long a killed process stays down before it is started again. */
  readonly outageMs: number;
  /** Says what happened, in the run's event log. */
  readonly note: (what: string) => void;
  /** Counts against the run: something that should have happened did not. */
  readonly fail: (what: string) => void;
  /** Work the run need not wait for now (the old master rejoining), awaited before the end. */
  readonly background: (work: Promise<unknown>) => void;
}

export interface Fault {
  readonly name: string;
  run(context: FaultContext): Promise<void>;
}

export interface ChaosRedis {
  readonly topology: Topology;
  /** The nodes' Redis variables. */
  readonly env: Record<string, string>;
  /** The Redis faults of this topology, in the order the run plays them; `channels` are the run's history channels. */
  faults(short: boolean, channels: readonly string[]): Fault[];
  /** Channel names of `kind`: on a Cluster, one on each master. */
  channelNames(kind: Kind, count: number): Promise<string[]>;
  stopAll(): Promise<void>;
}

const plainNames = (kind: Kind, count: number): string[] => Array.from({ length: count }, (_, index) => `${kind}.${index}`);

export async function startChaosRedis(topology: Topology): Promise<ChaosRedis> {
  if (topology === 'single') return single(await startSingleRedis({ persistent: true }));
  if (topology === 'sentinel') return sentinel(await startSentinel({ replicas: 1 }));
  return cluster(await startCluster());
}

function single(redis: SingleRedis): ChaosRedis {
  const restart = (wipe: boolean): Fault => ({
    name: wipe ? 'redis SIGKILL, data lost' : 'redis SIGKILL (AOF)',
    async run({ outageMs, note }) {
      await redis.kill();
      note(`redis ${redis.address} killed`);
      await sleep(outageMs);
      await redis.start({ wipe });
      note(`redis ${redis.address} started again${wipe ? ' without its data' : ' from its AOF'}`);
    },
  });
  return {
    topology: 'single',
    env: { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port) },
    faults: (short) => (short ? [restart(false)] : [restart(false), restart(true)]),
    channelNames: (kind, count) => Promise.resolve(plainNames(kind, count)),
    stopAll: () => redis.stopAll(),
  };
}

function sentinel(topology: SentinelTopology): ChaosRedis {
  /** A master failover; with `lagMs`, its replicas miss what it acknowledged in its last `lagMs`. */
  const failover = (lagMs: number): Fault => ({
    name: lagMs === 0 ? 'master SIGKILL (failover)' : `master SIGKILL, replica ${lagMs / 1000} s behind`,
    async run({ note, background }) {
      const master = await topology.masterAddress();
      const replicas = await topology.replicas();
      if (lagMs > 0) await leaveBehind(master, replicas, topology, lagMs, note);
      await topology.killMaster();
      note(`master ${master} killed`);
      for (const replica of replicas) topology.resume(replica);
      const promoted = await topology.waitForFailover(master);
      note(`sentinels promoted ${promoted}`);
      // The old master comes back as a master and is turned into a replica by the sentinels
      // (which takes them some 20 s): in the background, while the run goes on.
      background(
        topology.restart(master).then(
          () => note(`${master} rejoined as a replica`),
          // Redis's own recovery, not the server's: reported, not a failure (under load the sentinels may take longer).
          (error: unknown) => note(`${master} did not rejoin as a replica yet: ${String(error)}`),
        ),
      );
    },
  });
  return {
    topology: 'sentinel',
    env: { REDIS_SENTINELS: topology.sentinels.join(','), REDIS_SENTINEL_NAME: topology.name },
    faults: (short) => (short ? [failover(0)] : [failover(0), failover(LAG_MS)]),
    channelNames: (kind, count) => Promise.resolve(plainNames(kind, count)),
    stopAll: () => topology.stopAll(),
  };
}

/** How far behind its master a replica is left before the master is killed, in the long form. */
const LAG_MS = 2000;

/**
 * Replication is asynchronous: a replica may be promoted without the last writes its master
 * acknowledged. To make that happen for sure, the replicas are frozen (SIGSTOP) and the
 * master drops their links, so that nothing it acknowledges from then on reaches them; the
 * caller kills the master `lagMs` later and resumes them.
 */
async function leaveBehind(master: string, replicas: readonly string[], topology: { pause(address: string): void }, lagMs: number, note: (what: string) => void): Promise<void> {
  for (const replica of replicas) topology.pause(replica);
  await redisCommand(master, 'CLIENT', 'KILL', 'TYPE', 'replica');
  note(`replicas ${replicas.join(', ')} frozen and cut off from ${master}`);
  await sleep(lagMs);
}

function cluster(topology: ClusterTopology): ChaosRedis {
  /** A failover of the master serving `channel`; with `lagMs`, its replica misses what it acknowledged in its last `lagMs`. */
  const failover = (channel: string | undefined, lagMs: number): Fault => ({
    name: lagMs === 0 ? 'master SIGKILL (failover)' : `master SIGKILL, replica ${lagMs / 1000} s behind`,
    async run({ note, background }) {
      const name = channel ?? 'history.0';
      const victim = await topology.masterForKey(`{${name}}`);
      const replicas = await topology.replicasOf(victim);
      if (lagMs > 0) await leaveBehind(victim, replicas, topology, lagMs, note);
      await topology.killMaster(victim);
      note(`master ${victim} (serving ${name}) killed`);
      for (const replica of replicas) topology.resume(replica);
      const promoted = await topology.waitForFailover(victim);
      note(`${promoted} promoted in its place`);
      // Restarted at once; it rejoins as a replica while the run goes on.
      background(
        topology.restart(victim).then(
          () => note(`${victim} rejoined as a replica`),
          (error: unknown) => note(`${victim} did not rejoin as a replica yet: ${String(error)}`),
        ),
      );
    },
  });
  /** Channel names whose hash tags fall on distinct masters, as many as there are masters. */
  const names = async (kind: Kind, count: number): Promise<string[]> => {
    const masters = await topology.masters();
    const chosen = new Map<string, string>();
    for (let index = 0; chosen.size < Math.min(count, masters.length) && index < 1000; index++) {
      const name = `${kind}.${index}`;
      const master = await topology.masterForKey(`{${name}}`);
      if (!chosen.has(master)) chosen.set(master, name);
    }
    const spread = [...chosen.values()];
    for (let index = 1000; spread.length < count; index++) spread.push(`${kind}.${index}`);
    return spread;
  };
  return {
    topology: 'cluster',
    env: { REDIS_CLUSTER_NODES: topology.nodes.join(',') },
    faults: (short, channels) => (short ? [failover(channels[0], 0)] : [failover(channels[0], 0), failover(channels[1], LAG_MS)]),
    channelNames: names,
    stopAll: () => topology.stopAll(),
  };
}
