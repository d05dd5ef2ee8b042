/**
 * Shared pieces of the Redis scale-out tests (SPEC §6): in-process nodes that share one
 * real redis-server, real WebSocket clients, tokens, /readyz, captured logs and the keys
 * of redis-keys.ts. Not a test file (the runner takes only *.test.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { Redis } from 'ioredis';
import type { ClientOptions } from 'ws';
import { mintToken } from '../../src/auth/tokens.js';
import type { Delivery, LocalNode, Member, Publication } from '../../src/broker/broker.js';
import { RedisBroker, type RedisBrokerTuning } from '../../src/broker/redis/redis-broker.js';
import type { RedisOptions } from '../../src/config/options.js';
import type { HandlerOptions } from '../../src/handler.js';
import type { HistorySettings } from '../../src/history/history.js';
import type { NodeReport } from '../../src/views/cluster-view.js';
import { TestClient, eventually, type Frame } from './client.js';
import { get } from './http.js';
import { memoryLogger } from './memory-logger.js';
import { until, type TestRedis } from './redis.js';
import { startServer, type TestServer } from './server.js';

export const SECRET = 'redis-broker-test-secret-of-at-least-32-bytes';
export const PREFIX = 'sbtest:';
export const CHANNEL = 'chat.room.1';

/** For things that must happen (a reconnect with backoff, a message through Redis) on a busy machine. */
export const GENEROUS_MS = 20_000;
/** How long to keep listening after the last expected frame before asserting nothing more came. */
export const QUIET_MS = 300;

/**
 * Liveness timings for tests that wait on them (production: a 10 s TTL, checked every 3 s).
 * Give them to a node as `{ brokerTuning: SHORT_TIMINGS }`.
 */
export const SHORT_TIMINGS: RedisBrokerTuning = { nodeTtlMs: 2000, checkIntervalMs: 300 };

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The resolved Redis options of a node of the test's Redis (as loadConfig would give them). */
export function redisOptions(redis: TestRedis, overrides: Partial<RedisOptions> = {}): RedisOptions {
  return { enabled: true, host: '127.0.0.1', port: redis.port, password: null, database: 0, prefix: PREFIX, url: null, sentinels: null, sentinelName: null, clusterNodes: null, ...overrides };
}

/**
 * An in-process node (its own WebSocketHandler, so its own node id) on the test's Redis,
 * closed after the test. No rate limit; tokens signed with SECRET are accepted and
 * anonymous connections too.
 */
export async function startNode(t: TestContext, redis: TestRedis, options: HandlerOptions = {}, redisOverrides: Partial<RedisOptions> = {}): Promise<TestServer> {
  const node = await startServer({
    auth: { secret: SECRET },
    maxMessagesPerMinute: 0,
    ...options,
    redis: { enabled: true, host: '127.0.0.1', port: redis.port, prefix: PREFIX, ...redisOverrides },
  });
  t.after(() => node.close());
  return node;
}

/** A client of `node`, anonymous unless `userId` is given; closed after the test. */
export async function connect(t: TestContext, node: TestServer, userId?: string | number): Promise<TestClient> {
  const options: ClientOptions = {};
  if (userId !== undefined) {
    const token = await mintToken(node.handler.options.auth, { userId, role: 'user', ttlSeconds: 3600 });
    options.headers = { Authorization: `Bearer ${token}` };
  }
  const client = await TestClient.connect(node.url, options);
  t.after(() => client.close());
  return client;
}

export async function subscribeAll(clients: readonly TestClient[], channel: string = CHANNEL): Promise<void> {
  for (const client of clients) {
    const ack = await client.subscribe(channel);
    assert.equal(ack.success, true, `subscribe ack: ${JSON.stringify(ack)}`);
  }
}

export const connectionId = (client: TestClient): string => client.welcome.connection_id as string;

/** The channel messages a client received on `channel`, in order. */
export const messagesOn = (client: TestClient, channel: string = CHANNEL): Frame[] =>
  client.received((frame) => frame.action === 'message' && frame.channel === channel);

export const isMessage = (channel: string, message: unknown) => (frame: Frame) => frame.action === 'message' && frame.channel === channel && frame.message === message;

/**
 * Waits until the client has received at least `count` frames matching (whenever they
 * arrived: unlike TestClient.next, frames passed over by an earlier wait still count).
 */
export async function receivedAtLeast(client: TestClient, predicate: (frame: Frame) => boolean, count = 1, timeoutMs = GENEROUS_MS): Promise<Frame[]> {
  await eventually(() => client.received(predicate).length >= count, timeoutMs, `${count} matching frame(s); received so far: ${JSON.stringify(client.frames).slice(0, 2000)}`);
  return client.received(predicate);
}

export interface Readiness {
  status: number;
  body: Record<string, unknown>;
}

export async function readyz(node: TestServer): Promise<Readiness> {
  const answer = await get(`${node.httpUrl}/readyz`);
  return { status: answer.status, body: JSON.parse(answer.body) as Record<string, unknown> };
}


/** The keys of redis-keys.ts, written out here so that a change of layout fails these tests. */
export const keys = {
  pub: (channel: string = CHANNEL, prefix = PREFIX) => `${prefix}{${channel}}:pub`,
  members: (channel: string = CHANNEL, prefix = PREFIX) => `${prefix}{${channel}}:members`,
  users: (channel: string = CHANNEL, prefix = PREFIX) => `${prefix}{${channel}}:users`,
  nodes: (prefix = PREFIX) => `${prefix}nodes`,
  nodeAlive: (nodeId: string, prefix = PREFIX) => `${prefix}node:{${nodeId}}:alive`,
  nodeMembers: (nodeId: string, prefix = PREFIX) => `${prefix}node:{${nodeId}}:members`,
  history: (channel: string = CHANNEL, prefix = PREFIX) => `${prefix}{${channel}}:history`,
  position: (channel: string = CHANNEL, prefix = PREFIX) => `${prefix}{${channel}}:position`,
};

/** PUBSUB NUMSUB for one pub/sub channel. */
export async function numsub(redis: TestRedis, pubChannel: string): Promise<number> {
  const reply = (await redis.client.pubsub('NUMSUB', pubChannel)) as [string, number];
  return Number(reply[1]);
}

/** Every key in the Redis, by SCAN (never KEYS). */
export async function allKeys(redis: TestRedis): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.client.scan(cursor, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found.sort();
}

/** Sends every message without waiting for acks, then waits for each ack; returns them in order. */
export async function publishMany(client: TestClient, channel: string, messages: readonly unknown[]): Promise<Frame[]> {
  const first = 1_000_000 + Math.floor(Math.random() * 1_000_000);
  messages.forEach((message, index) => client.send({ action: 'message', data: { channel, message }, id: first + index }));
  const acks: Frame[] = [];
  for (let index = 0; index < messages.length; index++) acks.push(await client.next((frame) => frame.id === first + index, GENEROUS_MS));
  return acks;
}

export const isReady = async (node: TestServer): Promise<boolean> => (await readyz(node)).status === 200;
export const isNotReady = async (node: TestServer): Promise<boolean> => (await readyz(node)).status === 503;

export async function waitUntilDown(node: TestServer): Promise<void> {
  await until(() => isNotReady(node), GENEROUS_MS, 'the node to notice that Redis is down');
}

export async function waitUntilReady(...nodes: TestServer[]): Promise<void> {
  for (const node of nodes) await until(() => isReady(node), GENEROUS_MS, 'the node to be ready again');
}

/** A plain ioredis subscriber on one pub/sub channel; returns the channel messages' `message` fields, in arrival order. */
export async function rawSubscriber(t: TestContext, redis: TestRedis, pubChannel: string): Promise<unknown[]> {
  const received: unknown[] = [];
  const subscriber = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 0, retryStrategy: () => null });
  subscriber.on('error', () => undefined);
  t.after(() => subscriber.disconnect());
  subscriber.on('message', (_channel: string, payload: string) => {
    // `<node id><meta JSON or nothing>\n<frame>` (redis/payload.ts).
    const frame = JSON.parse(payload.slice(payload.indexOf('\n') + 1)) as { message: unknown };
    received.push(frame.message);
  });
  await subscriber.subscribe(pubChannel);
  return received;
}

/** Kills the Redis connections of one node (its command and subscriber connections are named after its node id). */
export async function killConnectionsOf(redis: TestRedis, nodeId: string, which: 'all' | 'commands' = 'all'): Promise<void> {
  const list = (await redis.client.client('LIST')) as string;
  const names = which === 'all' ? [`switchboard:${nodeId}`, `switchboard:${nodeId}:sub`] : [`switchboard:${nodeId}`];
  let killed = 0;
  for (const line of list.split('\n')) {
    const id = /\bid=(\d+)/.exec(line)?.[1];
    const name = /\bname=(\S*)/.exec(line)?.[1];
    if (id !== undefined && name !== undefined && names.includes(name)) {
      await redis.client.client('KILL', 'ID', id);
      killed++;
    }
  }
  assert.equal(killed, names.length, `connections named ${names.join(', ')} in:\n${list}`);
}

/**
 * A node with its own RedisBroker: a fixed reconnect delay, and a hook that tells when a
 * reconnect attempt was scheduled. With the default 1.5 s, restarting Redis right after
 * one leaves the test over a second to set up its observers before the node can be back.
 *
 * The handler takes the broker's node id, so the node's connection ids start with it.
 */
export async function nodeWithOwnBroker(
  t: TestContext,
  redis: TestRedis,
  { nodeId = 'outboxA1', retryMs = 1500, outboxMessages }: { nodeId?: string; retryMs?: number; outboxMessages?: number } = {},
) {
  const { logger, lines } = memoryLogger();
  let scheduled: (() => void) | null = null;
  const broker = new RedisBroker(redisOptions(redis), {
    nodeId,
    logger,
    ...(outboxMessages !== undefined && { outboxMessages }),
    retryDelay: () => {
      scheduled?.();
      return retryMs;
    },
  });
  const node = await startNode(t, redis, { broker, logger });
  assert.equal(node.handler.nodeId, nodeId, 'a handler given a broker with a node id uses that id');
  const nextAttemptScheduled = (): Promise<void> =>
    new Promise((resolve) => {
      scheduled = () => {
        scheduled = null;
        resolve();
      };
    });
  return { node, lines, nextAttemptScheduled };
}

/** A node in a process of its own, on SHORT_TIMINGS: it can be SIGKILLed, as a crash would. */
export interface NodeProcess {
  readonly url: string;
  readonly nodeId: string;
  /** SIGKILL; resolves once it has exited. */
  kill(): Promise<void>;
}

export async function startNodeProcess(t: TestContext, redis: TestRedis): Promise<NodeProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', NODE_PROCESS_SCRIPT], {
    env: { ...process.env, SB_TEST_REDIS_PORT: String(redis.port), SB_TEST_PREFIX: PREFIX, SB_TEST_TIMINGS: JSON.stringify(SHORT_TIMINGS) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const started = await new Promise<{ url: string; nodeId: string }>((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const newline = text.indexOf('\n');
      if (newline !== -1) resolve(JSON.parse(text.slice(0, newline)) as { url: string; nodeId: string });
    });
    child.once('exit', (code, signal) => reject(new Error(`the node process exited (${signal ?? code}) before listening: ${output}`)));
  });
  return {
    ...started,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

const NODE_PROCESS_SCRIPT = fileURLToPath(new URL('../broker/fixtures/node-process.ts', import.meta.url));

/** A LocalNode that records what its broker hands it (broker-level tests, no hub). */
export interface RecordingNode extends LocalNode {
  readonly deliveries: Delivery[];
  /** How many times the broker said it was back in touch (reconnected()). */
  reconnects: number;
  readonly gone: Array<{ channel: string; members: readonly Member[]; everywhere: boolean }>;
}

export function recordingNode(nodeId: string): RecordingNode {
  const report: NodeReport = { id: nodeId, host: 'test', pid: process.pid, connections: 0, channels: 0, messagesInPerSecond: 0, messagesOutPerSecond: 0, uptime: 0, ready: true };
  const node: RecordingNode = {
    deliveries: [],
    reconnects: 0,
    gone: [],
    deliver(delivery) {
      node.deliveries.push(delivery);
      return 1;
    },
    reconnected() {
      node.reconnects++;
    },
    membersGone(channel, members, everywhere) {
      node.gone.push({ channel, members, everywhere });
    },
    report: () => report,
    channels: () => [],
    members: () => [],
    disconnect: () => 0,
  };
  return node;
}

/** A delivery's frame as text. */
export const frameText = (delivery: Delivery): string => (typeof delivery.frame === 'string' ? delivery.frame : delivery.frame.toString('utf8'));

export interface BrokerNode {
  readonly broker: RedisBroker;
  readonly node: RecordingNode;
  readonly nodeId: string;
  /**
   * Cuts the broker off from Redis for good, as a SIGKILL would: its connections are
   * killed and it never reconnects; it stops beating, so the others clean it out.
   */
  die(): Promise<void>;
}

/** A bare RedisBroker on the test's Redis, serving a RecordingNode; closed after the test. */
export async function startBroker(
  t: TestContext,
  redis: TestRedis,
  { nodeId, tuning = {} }: { nodeId: string; tuning?: RedisBrokerTuning },
): Promise<BrokerNode> {
  let dead = false;
  const { logger } = memoryLogger();
  const broker = new RedisBroker(redisOptions(redis), {
    nodeId,
    logger,
    retryDelay: () => (dead ? 3_600_000 : 100),
    ...tuning,
  });
  const node = recordingNode(nodeId);
  t.after(() => broker.close());
  await broker.start(node);
  assert.equal(broker.notReadyReason(), null, `broker ${nodeId} is ready after start()`);
  return {
    broker,
    node,
    nodeId,
    die: async () => {
      dead = true;
      await killConnectionsOf(redis, nodeId);
      await until(() => broker.notReadyReason() !== null, GENEROUS_MS, `broker ${nodeId} to notice it is cut off`);
    },
  };
}

/** History settings for the broker-level history tests. */
export const KEPT: HistorySettings = { size: 100, ttl: 60 };

export const frameOf = (text: string): string => JSON.stringify({ action: 'message', channel: CHANNEL, message: text });

/** A publication kept in the history. */
export function kept(text: string, overrides: Partial<Publication> = {}): Publication {
  return { channel: CHANNEL, recipients: null, exclude: null, frame: frameOf(text), history: KEPT, ...overrides };
}

/** A publication not kept (ephemeral messages, presence events). */
export function live(text: string, overrides: Partial<Publication> = {}): Publication {
  return { ...kept(text, overrides), history: null, ...overrides };
}

/** The kept deliveries a broker's node got on `channel`, as [offset, message text]. */
export function keptOn({ node }: BrokerNode, channel = CHANNEL): Array<[number, string]> {
  return node.deliveries
    .filter((delivery) => delivery.channel === channel && delivery.position !== null)
    .map((delivery) => [delivery.position?.offset ?? -1, (JSON.parse(frameText(delivery)) as { message: string }).message]);
}

/** `count` brokers on one Redis (history0, history1, …), each with one member in CHANNEL (so subscribed to it). */
export async function brokerCluster(t: TestContext, redis: TestRedis, count = 2, tuning: RedisBrokerTuning = {}): Promise<BrokerNode[]> {
  const nodes: BrokerNode[] = [];
  for (let index = 0; index < count; index++) {
    const node = await startBroker(t, redis, { nodeId: `history${index}`, tuning });
    await node.broker.join(CHANNEL, { connectionId: `${node.nodeId}-1`, userId: `user${index}` });
    nodes.push(node);
  }
  return nodes;
}

/** Waits until every node delivered at least `count` kept messages on `channel`, then a quiet while (so that one too many shows). */
export async function deliveredOnEvery(nodes: readonly BrokerNode[], count: number, channel = CHANNEL): Promise<void> {
  for (const node of nodes) await until(() => keptOn(node, channel).length >= count, GENEROUS_MS, `${count} kept messages on ${node.nodeId}; got ${JSON.stringify(keptOn(node, channel))}`);
  await sleep(QUIET_MS);
}
