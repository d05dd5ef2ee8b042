/**
 * The Pusher webhook sender (SPEC §10) against real node:http receivers on 127.0.0.1, with
 * the real global fetch: signatures the `pusher` SDK accepts, batching, retries with backoff
 * (500s, a hanging receiver, a receiver that is down), the bounded queue, send() never
 * waiting for the network, and close() flushing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { describe, test } from 'node:test';
import Pusher from 'pusher';
import { WebhookSender, type PusherWebhookEvent, type WebhookSenderTuning } from '../../src/pusher/webhooks.js';
import { eventually } from '../helpers/client.js';
import { memoryLogger, type LogLine } from '../helpers/memory-logger.js';

const SUITE = { timeout: 60_000 };

const KEY = 'webhook-test-key';
const SECRET = 'webhook-test-secret';

/** One request as the receiver got it. */
interface Hit {
  headers: IncomingHttpHeaders;
  rawBody: string;
  time_ms: unknown;
  events: PusherWebhookEvent[];
  res: ServerResponse;
  /** The sender gave up on the request before it was answered. */
  aborted: boolean;
}

/** How a receiver answers its `index`th request (0-based); it may also leave it hanging. */
type Respond = (hit: Hit, index: number) => void;

const status =
  (code: number): Respond =>
  (hit) => {
    hit.res.writeHead(code, { 'Content-Type': 'text/plain' }).end(String(code));
  };

interface Receiver {
  url: string;
  port: number;
  hits: Hit[];
  close(): Promise<void>;
}

/** A webhook receiver on 127.0.0.1 (on `port`, or any free one), closed after the test. */
async function startReceiver(t: TestContext, respond: Respond = status(200), port = 0): Promise<Receiver> {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const parsed = JSON.parse(rawBody) as { time_ms: unknown; events: PusherWebhookEvent[] };
      const hit: Hit = { headers: req.headers, rawBody, time_ms: parsed.time_ms, events: parsed.events, res, aborted: false };
      res.on('close', () => {
        if (!res.writableFinished) hit.aborted = true;
      });
      hits.push(hit);
      respond(hit, hits.length - 1);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
    return closed;
  };
  t.after(close);
  return { url: `http://127.0.0.1:${bound}/pusher/webhooks`, port: bound, hits, close };
}

/** A sender to `url`, closed after the test; its log lines are kept. */
function startSender(t: TestContext, url: string, tuning: WebhookSenderTuning = {}): { sender: WebhookSender; lines: LogLine[] } {
  const { logger, lines } = memoryLogger('debug');
  const sender = new WebhookSender({ url, key: KEY, secret: SECRET, logger, batchMs: 10, retryBaseMs: 10, ...tuning });
  t.after(() => sender.close(1_000));
  return { sender, lines };
}

const occupied = (channel: string): PusherWebhookEvent => ({ name: 'channel_occupied', channel });
const channelsOf = (hits: readonly Hit[]): string[] => hits.flatMap((hit) => hit.events.map((event) => event.channel));
const logged = (lines: readonly LogLine[], text: string): LogLine[] => lines.filter((line) => line.msg?.includes(text));

describe('WebhookSender', SUITE, () => {
  test('a batch is signed so that the pusher SDK validates it, with body {time_ms, events}', async (t) => {
    const receiver = await startReceiver(t);
    const { sender } = startSender(t, receiver.url);
    const events: PusherWebhookEvent[] = [
      { name: 'channel_occupied', channel: 'presence-room' },
      { name: 'member_added', channel: 'presence-room', user_id: 'u1' },
      { name: 'client_event', channel: 'presence-room', event: 'client-typing', data: '{"on":true}', socket_id: '123.456', user_id: 'u1' },
      { name: 'member_removed', channel: 'presence-room', user_id: 'u1' },
      { name: 'channel_vacated', channel: 'presence-room' },
    ];
    for (const event of events) sender.send(event);
    // The receiver has the request before the sender has its answer: wait for both.
    await eventually(() => sender.stats.sentEvents === 5, 10_000, 'the batch accepted');
    assert.equal(receiver.hits.length, 1);

    const [hit] = receiver.hits;
    assert.ok(hit);
    assert.equal(hit.headers['content-type'], 'application/json');
    assert.equal(hit.headers['x-pusher-key'], KEY);
    assert.match(String(hit.headers['x-pusher-signature']), /^[0-9a-f]{64}$/);

    const webhook = new Pusher({ appId: '1', key: KEY, secret: SECRET, cluster: 'mt1' }).webhook({ headers: hit.headers, rawBody: hit.rawBody });
    assert.equal(webhook.isValid(), true);
    assert.deepEqual(webhook.getEvents(), events);
    assert.deepEqual(Object.keys(JSON.parse(hit.rawBody) as object), ['time_ms', 'events']);
    assert.ok(Number.isInteger(hit.time_ms) && (hit.time_ms as number) > 0, `time_ms: ${String(hit.time_ms)}`);
    assert.equal(webhook.getTime().getTime(), hit.time_ms);

    // The same request is refused with another secret or a changed body.
    const other = new Pusher({ appId: '1', key: KEY, secret: 'another-secret', cluster: 'mt1' });
    assert.equal(other.webhook({ headers: hit.headers, rawBody: hit.rawBody }).isValid(), false);
    const tampered = hit.rawBody.replace('client-typing', 'client-tampered');
    assert.equal(new Pusher({ appId: '1', key: KEY, secret: SECRET, cluster: 'mt1' }).webhook({ headers: hit.headers, rawBody: tampered }).isValid(), false);

    assert.deepEqual(sender.stats, { sentEvents: 5, sentBatches: 1, failedAttempts: 0, droppedEvents: 0, queuedEvents: 0 });
  });

  test('events sent close together go in one request; more than maxBatch are split in order', async (t) => {
    const receiver = await startReceiver(t);
    const { sender } = startSender(t, receiver.url, { batchMs: 50 });
    for (let i = 1; i <= 5; i += 1) sender.send(occupied(`a${i}`));
    await eventually(() => sender.stats.sentEvents === 5, 10_000, 'five events sent');
    assert.equal(receiver.hits.length, 1);
    assert.deepEqual(channelsOf(receiver.hits), ['a1', 'a2', 'a3', 'a4', 'a5']);

    const split = await startReceiver(t);
    const { sender: small } = startSender(t, split.url, { batchMs: 50, maxBatch: 3 });
    for (let i = 1; i <= 7; i += 1) small.send(occupied(`b${i}`));
    await eventually(() => small.stats.sentEvents === 7, 10_000, 'seven events sent');
    assert.deepEqual(
      split.hits.map((hit) => hit.events.length),
      [3, 3, 1],
    );
    assert.deepEqual(channelsOf(split.hits), ['b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7']);
    assert.equal(small.stats.sentBatches, 3);
  });

  test('a receiver answering 500 twice then 200 gets the batch on the third attempt, once', async (t) => {
    const receiver = await startReceiver(t, (hit, index) => status(index < 2 ? 500 : 200)(hit, index));
    const { sender } = startSender(t, receiver.url, { retries: 5 });
    sender.send(occupied('c1'));
    sender.send(occupied('c2'));
    sender.send(occupied('c3'));
    await eventually(() => sender.stats.sentEvents === 3, 10_000, 'the batch accepted');
    await sender.close(1_000);

    assert.equal(receiver.hits.length, 3);
    // A retry resends the very same signed body.
    assert.equal(new Set(receiver.hits.map((hit) => hit.rawBody)).size, 1);
    assert.equal(new Set(receiver.hits.map((hit) => hit.headers['x-pusher-signature'])).size, 1);
    const accepted = receiver.hits.slice(2);
    assert.deepEqual(channelsOf(accepted), ['c1', 'c2', 'c3']);
    assert.deepEqual(sender.stats, { sentEvents: 3, sentBatches: 1, failedAttempts: 2, droppedEvents: 0, queuedEvents: 0 });
  });

  test('a receiver that hangs is timed out and the batch retried', async (t) => {
    // The first request is never answered; the second is.
    const receiver = await startReceiver(t, (hit, index) => {
      if (index > 0) status(204)(hit, index);
    });
    const { sender, lines } = startSender(t, receiver.url, { timeoutMs: 1_000 });
    sender.send(occupied('d1'));
    sender.send(occupied('d2'));
    await eventually(() => sender.stats.sentEvents === 2, 10_000, 'the retried batch accepted');

    assert.equal(receiver.hits.length, 2);
    assert.equal(receiver.hits[0]?.rawBody, receiver.hits[1]?.rawBody);
    await eventually(() => receiver.hits[0]?.aborted === true, 10_000, 'the hung request abandoned by the sender');
    assert.deepEqual(sender.stats, { sentEvents: 2, sentBatches: 1, failedAttempts: 1, droppedEvents: 0, queuedEvents: 0 });
    assert.match(String(logged(lines, 'retrying')[0]?.reason), /timed out/);
  });

  test('a receiver that is down: after the retries the events are dropped and counted; later events go out once it is back', async (t) => {
    // A port that nothing listens on (until the receiver comes back on it).
    const probe = await startReceiver(t);
    const { port, url } = probe;
    await probe.close();

    const { sender, lines } = startSender(t, url, { retries: 2 });
    sender.send(occupied('e1'));
    sender.send(occupied('e2'));
    await eventually(() => sender.stats.droppedEvents === 2, 10_000, 'the batch dropped');
    assert.deepEqual(sender.stats, { sentEvents: 0, sentBatches: 0, failedAttempts: 3, droppedEvents: 2, queuedEvents: 0 });
    const dropped = logged(lines, 'every attempt failed');
    assert.equal(dropped.length, 1);
    assert.equal(dropped[0]?.attempts, 3);
    assert.equal(dropped[0]?.dropped, 2);
    assert.match(String(dropped[0]?.reason), /ECONNREFUSED/);

    const receiver = await startReceiver(t, status(200), port);
    sender.send(occupied('e3'));
    await eventually(() => sender.stats.sentEvents === 1, 10_000, 'the later event sent');
    assert.deepEqual(channelsOf(receiver.hits), ['e3']);
    assert.deepEqual(sender.stats, { sentEvents: 1, sentBatches: 1, failedAttempts: 3, droppedEvents: 2, queuedEvents: 0 });
  });

  test('a full queue drops the oldest events, counts them, and logs once per burst', async (t) => {
    const receiver = await startReceiver(t);
    const { sender, lines } = startSender(t, receiver.url, { maxQueue: 5, batchMs: 20 });
    for (let i = 1; i <= 20; i += 1) sender.send(occupied(`f${i}`));
    // Dropping happens in send() itself.
    assert.equal(sender.stats.droppedEvents, 15);
    assert.equal(sender.stats.queuedEvents, 5);

    await eventually(() => sender.stats.sentEvents === 5, 10_000, 'the newest five sent');
    assert.deepEqual(channelsOf(receiver.hits), ['f16', 'f17', 'f18', 'f19', 'f20']);
    assert.equal(logged(lines, 'webhook queue full').length, 1);
    const over = logged(lines, 'overflow over');
    assert.equal(over.length, 1);
    assert.equal(over[0]?.dropped, 15);
    assert.deepEqual(sender.stats, { sentEvents: 5, sentBatches: 1, failedAttempts: 0, droppedEvents: 15, queuedEvents: 0 });
  });

  test('send() returns at once while the receiver hangs: it never waits for the network', async (t) => {
    const held: ServerResponse[] = [];
    const order: string[] = [];
    const receiver = await startReceiver(t, (hit) => {
      order.push(`received ${hit.events.map((event) => event.channel).join(',')}`);
      held.push(hit.res);
    });
    const { sender } = startSender(t, receiver.url, { batchMs: 0 });
    sender.send(occupied('g1'));
    await eventually(() => receiver.hits.length === 1, 10_000, 'the first request');

    // The first request is in flight and unanswered; sending more must not wait for it.
    const results: unknown[] = [];
    for (let i = 2; i <= 101; i += 1) results.push(sender.send(occupied(`g${i}`)));
    order.push('send returned');
    assert.ok(results.every((result) => result === undefined), 'send() returns nothing to await');
    assert.equal(held[0]?.writableEnded, false, 'the receiver has not answered yet');
    assert.equal(sender.stats.queuedEvents, 101);

    held[0]?.writeHead(200).end();
    order.push('answered g1');
    await eventually(() => receiver.hits.length === 2, 10_000, 'the second request');
    held[1]?.writeHead(200).end();
    await eventually(() => sender.stats.sentEvents === 101, 10_000, 'everything sent');

    assert.deepEqual(order.slice(0, 3), ['received g1', 'send returned', 'answered g1']);
    assert.deepEqual(
      channelsOf(receiver.hits),
      Array.from({ length: 101 }, (_, i) => `g${i + 1}`),
    );
  });

  test('close() flushes what is queued, then send() is a no-op', async (t) => {
    const receiver = await startReceiver(t);
    // A batch window far longer than the test: only close() can send these.
    const { sender } = startSender(t, receiver.url, { batchMs: 600_000 });
    sender.send(occupied('h1'));
    sender.send(occupied('h2'));
    sender.send(occupied('h3'));
    assert.equal(receiver.hits.length, 0);
    await sender.close(5_000);

    assert.deepEqual(channelsOf(receiver.hits), ['h1', 'h2', 'h3']);
    assert.deepEqual(sender.stats, { sentEvents: 3, sentBatches: 1, failedAttempts: 0, droppedEvents: 0, queuedEvents: 0 });

    sender.send(occupied('h4'));
    assert.deepEqual(sender.stats, { sentEvents: 3, sentBatches: 1, failedAttempts: 0, droppedEvents: 0, queuedEvents: 0 });
    assert.equal(sender.close(5_000), sender.close(5_000), 'close() again returns the same promise');
  });

  test('close() gives up on a hanging receiver at its timeout and counts what is left as dropped', async (t) => {
    const receiver = await startReceiver(t, () => {
      // Never answers.
    });
    const { sender, lines } = startSender(t, receiver.url, { batchMs: 0, maxBatch: 2 });
    for (let i = 1; i <= 5; i += 1) sender.send(occupied(`i${i}`));
    await eventually(() => receiver.hits.length === 1, 10_000, 'the first request');
    await sender.close(100);

    assert.deepEqual(sender.stats, { sentEvents: 0, sentBatches: 0, failedAttempts: 0, droppedEvents: 5, queuedEvents: 0 });
    await eventually(() => receiver.hits[0]?.aborted === true, 10_000, 'the request in flight cancelled');
    assert.equal(receiver.hits.length, 1);
    assert.equal(logged(lines, 'batch in flight dropped')[0]?.dropped, 2);
    assert.equal(logged(lines, 'undelivered events dropped')[0]?.dropped, 3);
  });

  test('no timer of the sender keeps the process alive: not the batch window, not a backoff', async (t) => {
    const probe = await startReceiver(t);
    await probe.close();
    // A process with one sender waiting out a 60 s backoff and another a 60 s batch window
    // must end by itself (code 0); the unref'd guard exits 3 if it does not.
    const script = `
      const { WebhookSender } = await import(process.argv[1]);
      setTimeout(() => process.exit(3), 30_000).unref();
      const logger = { debug() {}, info() {}, warn() {}, error() {} };
      const retrying = new WebhookSender({ url: process.argv[2], key: 'k', secret: 's', logger, batchMs: 0, retryBaseMs: 60_000 });
      retrying.send({ name: 'channel_occupied', channel: 'x' });
      while (retrying.stats.failedAttempts === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      const batching = new WebhookSender({ url: process.argv[2], key: 'k', secret: 's', logger, batchMs: 60_000 });
      batching.send({ name: 'channel_occupied', channel: 'y' });
      process.stdout.write(JSON.stringify([retrying.stats, batching.stats]));
    `;
    const module = new URL('../../src/pusher/webhooks.ts', import.meta.url).href;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, module, probe.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, output);
    const [retrying, batching] = JSON.parse(output) as Array<{ failedAttempts: number; queuedEvents: number }>;
    assert.equal(retrying?.failedAttempts, 1);
    assert.equal(retrying?.queuedEvents, 1);
    assert.equal(batching?.queuedEvents, 1);
  });

  test('send() never throws; bad URLs and tuning are refused at construction', (t) => {
    const { sender, lines } = startSender(t, 'http://127.0.0.1:9/hooks', { batchMs: 600_000 });
    const unserializable = { name: 'client_event', channel: 'c', event: 'client-x', data: 1n, socket_id: '1.2' } as unknown as PusherWebhookEvent;
    assert.doesNotThrow(() => sender.send(unserializable));
    assert.equal(sender.stats.droppedEvents, 1);
    assert.equal(logged(lines, 'does not encode').length, 1);

    const { logger } = memoryLogger();
    assert.throws(() => new WebhookSender({ url: 'not a url', key: KEY, secret: SECRET, logger }), TypeError);
    assert.throws(() => new WebhookSender({ url: 'ftp://127.0.0.1/', key: KEY, secret: SECRET, logger }), TypeError);
    assert.throws(() => new WebhookSender({ url: 'http://127.0.0.1/', key: KEY, secret: SECRET, logger, maxBatch: 0 }), RangeError);
    assert.throws(() => new WebhookSender({ url: 'http://127.0.0.1/', key: KEY, secret: SECRET, logger, retries: 1.5 }), RangeError);
    assert.throws(() => new WebhookSender({ url: 'http://127.0.0.1/', key: KEY, secret: SECRET, logger, timeoutMs: Number.NaN }), RangeError);
  });
});
