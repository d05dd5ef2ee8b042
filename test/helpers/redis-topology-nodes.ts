/**
 * Shared pieces of the Sentinel and Cluster tests (redis-sentinel.test.ts,
 * redis-cluster.test.ts): in-process nodes that reach a real Sentinel setup or Redis
 * Cluster (redis-topology-*.ts), channel names placed on a chosen master, a publisher that
 * records what became of each message it sent to a channel with history, and the check
 * that a subscriber got every acknowledged one exactly once, in order (SPEC §4, §6). Not a
 * test file (the runner takes only *.test.ts).
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { Redis } from 'ioredis';
import type { RedisBrokerTuning } from '../../src/broker/redis/redis-broker.js';
import type { ChannelRule } from '../../src/channels/rules.js';
import type { RedisOptions } from '../../src/config/options.js';
import type { HandlerOptions } from '../../src/handler.js';
import type { TestClient, Frame } from './client.js';
import { memoryLogger, type LogLine } from './memory-logger.js';
import { until } from './redis.js';
import { GENEROUS_MS, PREFIX, SECRET, SHORT_TIMINGS, isReady, keys, readyz, sleep } from './redis-nodes.js';
import { pollFor, redisCommand, splitAddress } from './redis-topology.js';
import type { ClusterTopology } from './redis-topology-cluster.js';
import type { SentinelTopology } from './redis-topology-sentinel.js';
import { startServer, type TestServer } from './server.js';

/** SHORT_TIMINGS, and a reconnect every 200 ms: a failover is noticed, and got over, quickly. */
export const TOPOLOGY_TUNING: RedisBrokerTuning = { ...SHORT_TIMINGS, retryDelay: () => 200, commandTimeoutMs: 3000 };

/** How long a node may take to be ready again after a failover (the topology's own bound is 60 s). */
export const RECOVERY_MS = 45_000;

/** `hist.*` channels keep their history (and have presence), `live.*` channels keep nothing. */
export const RULES: ChannelRule[] = [
  { pattern: 'hist.**', subscribe: ['*'], publish: ['*'], presence: true, history: { size: 10_000, ttl: 3600 } },
  { pattern: 'live.**', subscribe: ['*'], publish: ['*'] },
];

export const clusterRedis = (cluster: ClusterTopology): Partial<RedisOptions> => ({ enabled: true, clusterNodes: cluster.nodes.map(splitAddress), prefix: PREFIX });

export const sentinelRedis = (sentinel: SentinelTopology): Partial<RedisOptions> => ({
  enabled: true,
  sentinels: sentinel.sentinels.map(splitAddress),
  sentinelName: sentinel.name,
  prefix: PREFIX,
});

export interface TopologyNode extends TestServer {
  /** What the node logged (info and above), for failure messages. */
  readonly lines: LogLine[];
}

/**
 * An in-process node on `redis` (clusterRedis or sentinelRedis) with TOPOLOGY_TUNING and
 * RULES unless `options` says otherwise, ready when this resolves; closed after the test.
 */
export async function topologyNode(t: TestContext, redis: Partial<RedisOptions>, options: HandlerOptions = {}): Promise<TopologyNode> {
  const { logger, lines } = memoryLogger();
  const server = await startServer({ auth: { secret: SECRET }, heartbeatInterval: 3600, maxMessagesPerMinute: 0, channels: { rules: RULES }, brokerTuning: TOPOLOGY_TUNING, logger, ...options, redis });
  t.after(() => server.close());
  const node = Object.assign(server, { lines });
  await readyAgain(node);
  return node;
}

/** Waits until each node answers /readyz 200 (it gets there on its own: nothing here helps it). */
export async function readyAgain(...nodes: TopologyNode[]): Promise<void> {
  for (const node of nodes) {
    try {
      await until(() => isReady(node), RECOVERY_MS, `node ${node.handler.nodeId} to be ready`);
    } catch (error) {
      const { body } = await readyz(node);
      throw new Error(`${(error as Error).message}; /readyz says ${JSON.stringify(body)}; its log: ${logOf(node)}`);
    }
  }
}

/** The node's log lines, short, for failure messages (without the refused requests, many while Redis is away). */
export const logOf = (node: TopologyNode): string =>
  node.lines
    .filter((line) => !String(line.msg).startsWith('request failed'))
    .map((line) => `${line.level} ${line.msg ?? ''}`)
    .join(' | ')
    .slice(-3000);

/**
 * A name `<base>.<i>` for each of `masters`, in their order, whose pub/sub channel
 * (`<prefix>{name}:pub`) has its slot on that master (CLUSTER KEYSLOT, not key-slot.ts).
 */
export async function channelsOn(cluster: ClusterTopology, masters: readonly string[], base: string): Promise<string[]> {
  const found = new Map<string, string>();
  for (let index = 0; found.size < new Set(masters).size; index++) {
    if (index > 1000) throw new Error(`no ${base}.* channel found on each of ${masters.join(', ')}`);
    const name = `${base}.${index}`;
    const master = await cluster.masterForKey(keys.pub(name));
    if (masters.includes(master) && !found.has(master)) found.set(master, name);
  }
  return masters.map((master) => found.get(master) as string);
}

/**
 * Cuts a master's replicas off, so that what it acknowledges from now on never reaches
 * them and a failover loses it, as asynchronous replication may: the master takes a
 * password its replicas do not know and drops their links (the connections already open,
 * the nodes' and the sentinels', stay authenticated). Resolves once every replica's link
 * is down; with the replicas' addresses.
 */
export async function cutOffReplicas(master: string): Promise<string[]> {
  const role = (await redisCommand(master, 'ROLE')) as [string, number, Array<[string, string, string]>];
  assert.equal(role[0], 'master', `${master} is a master`);
  const replicas = role[2].map(([host, port]) => `${host}:${port}`);
  assert.ok(replicas.length > 0, `${master} has replicas`);
  // One connection for both: a new one would need the password.
  const connection = new Redis({ ...splitAddress(master), maxRetriesPerRequest: 0, retryStrategy: () => null });
  connection.on('error', () => undefined);
  try {
    await connection.config('SET', 'requirepass', 'a password its replicas do not know');
    await connection.client('KILL', 'TYPE', 'replica');
  } finally {
    connection.disconnect();
  }
  for (const replica of replicas) {
    await pollFor(async () => /master_link_status:down/.test(String(await redisCommand(replica, 'INFO', 'replication'))), RECOVERY_MS, `${replica} to lose its link to ${master}`);
  }
  return replicas;
}

/** What became of one message the Publisher sent. */
export type Outcome = { n: number; status: 'acked'; offset: number } | { n: number; status: 'failed'; code: unknown };

/** The payload the Publisher sends: `{n}`. */
export const nOf = (frame: Frame): number => (frame.message as { n: number }).n;

/**
 * Publishes `{n: 1}`, `{n: 2}`, … to a channel with history from one client, one at a
 * time (the next once the previous got its ack or error), so that the acknowledged ones
 * have growing offsets; records each outcome. The client must be subscribed to the channel.
 */
export class Publisher {
  readonly outcomes: Outcome[] = [];
  private n = 0;
  private stopping = false;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: TestClient,
    readonly channel: string,
    private readonly everyMs = 20,
  ) {}

  start(): this {
    this.running = this.loop();
    return this;
  }

  /** Stops after the message in flight; resolves with every outcome, in order. */
  async stop(): Promise<Outcome[]> {
    this.stopping = true;
    await this.running;
    return this.outcomes;
  }

  acked(): Array<Extract<Outcome, { status: 'acked' }>> {
    return this.outcomes.filter((outcome) => outcome.status === 'acked');
  }

  failed(): Outcome[] {
    return this.outcomes.filter((outcome) => outcome.status === 'failed');
  }

  /** The number of the last message sent so far. */
  get last(): number {
    return this.n;
  }

  /** Waits until `count` messages numbered above `after` were acknowledged. */
  async ackedAfter(after: number, count: number, timeoutMs = RECOVERY_MS): Promise<void> {
    await until(() => this.acked().filter((outcome) => outcome.n > after).length >= count, timeoutMs, `${count} acknowledged messages after message ${after} (outcomes so far: ${JSON.stringify(this.outcomes.slice(-10))})`);
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const n = ++this.n;
      const id = `publish-${n}`;
      this.client.send({ action: 'message', data: { channel: this.channel, message: { n } }, id });
      // A client closed under it (the test is over, or failed) ends the run.
      const reply = await Promise.race([this.client.next((frame) => frame.id === id, GENEROUS_MS), this.client.closed.then(() => null)]);
      if (reply === null) return;
      if (reply.action === 'message_sent') {
        assert.equal(typeof reply.offset, 'number', `message ${n} acknowledged without an offset: ${JSON.stringify(reply)}`);
        this.outcomes.push({ n, status: 'acked', offset: reply.offset as number });
      } else {
        assert.equal(reply.type, 'error', `message ${n}: ${JSON.stringify(reply)}`);
        this.outcomes.push({ n, status: 'failed', code: reply.code });
      }
      await sleep(this.everyMs);
    }
  }
}

/** The Publisher's messages and the position notices a subscriber got on `channel`, in arrival order. */
export const historyFrames = (subscriber: TestClient, channel: string): Frame[] =>
  subscriber.received((frame) => frame.channel === channel && (frame.action === 'position' || (frame.action === 'message' && typeof (frame.message as { n?: unknown } | null)?.n === 'number')));

/**
 * Asserts what a subscriber that stayed connected got of the Publisher's messages: each
 * at most once, in publish order; the acknowledged ones with their acknowledged offset;
 * offsets contiguous between position notices; and every acknowledged one, unless a
 * notice (`recovered: false`: the store lost messages) came in its place, that is after
 * the message before it and before the message after it. A failed publish may have run
 * (it failed in flight) or not: it may be delivered, or not. Returns the notices.
 */
export function assertEveryAckedOnce(subscriber: TestClient, channel: string, outcomes: readonly Outcome[], what: string): Frame[] {
  const frames = historyFrames(subscriber, channel);
  const byN = new Map(outcomes.map((outcome) => [outcome.n, outcome]));
  const isNotice = (frame: Frame): boolean => frame.action === 'position';
  const notices = frames.filter(isNotice);
  for (const notice of notices) assert.deepEqual(notice, { action: 'position', channel, epoch: notice.epoch, offset: notice.offset, recovered: false }, `${what}: a position notice`);
  const delivered = frames.filter((frame) => !isNotice(frame)).map(nOf);
  for (let index = 1; index < delivered.length; index++) {
    assert.ok((delivered[index] as number) > (delivered[index - 1] as number), `${what}: each message once, in publish order; got ${JSON.stringify(delivered)}`);
  }
  let segment: number[] = [];
  const checkSegment = (): void => {
    for (let index = 1; index < segment.length; index++) assert.equal(segment[index], (segment[index - 1] as number) + 1, `${what}: offsets contiguous between notices; got ${JSON.stringify(segment)}`);
    segment = [];
  };
  for (const frame of frames) {
    if (isNotice(frame)) {
      checkSegment();
      continue;
    }
    const outcome = byN.get(nOf(frame));
    assert.ok(outcome !== undefined, `${what}: message ${nOf(frame)} was never published`);
    if (outcome.status === 'acked') assert.equal(frame.offset, outcome.offset, `${what}: message ${outcome.n} carries its acknowledged offset`);
    segment.push(frame.offset as number);
  }
  checkSegment();
  for (const outcome of outcomes) {
    if (outcome.status !== 'acked' || delivered.includes(outcome.n)) continue;
    const before = frames.findLastIndex((frame) => !isNotice(frame) && nOf(frame) < outcome.n);
    const after = frames.findIndex((frame) => !isNotice(frame) && nOf(frame) > outcome.n);
    const told = frames.some((frame, index) => isNotice(frame) && index > before && (after === -1 || index < after));
    assert.ok(told, `${what}: acknowledged message ${outcome.n} (offset ${outcome.offset}) was never delivered, and no notice said so; delivered ${JSON.stringify(delivered)}`);
  }
  return notices;
}

/** Waits until the subscriber got the Publisher's message `n`. */
export async function deliveredUpTo(subscriber: TestClient, channel: string, n: number, what: string): Promise<void> {
  await until(() => historyFrames(subscriber, channel).some((frame) => frame.action === 'message' && nOf(frame) === n), RECOVERY_MS, `${what} to get message ${n}`);
}
