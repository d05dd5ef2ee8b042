/**
 * GET /metrics (SPEC §7) over real sockets: Prometheus text with the counters of this
 * node, moved by what real clients do, and no label that grows with channel names.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode } from '../../src/codes.js';
import { TestClient, eventually, isMessageOn } from '../helpers/client.js';
import { get, refusedHandshake } from '../helpers/http.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** The samples of a scrape: `name{labels}` → value. */
async function scrape(server: TestServer): Promise<Map<string, number>> {
  const answer = await get(`${server.httpUrl}/metrics`);
  assert.equal(answer.status, 200);
  const samples = new Map<string, number>();
  for (const line of answer.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

test('GET /metrics answers Prometheus text with the node\'s metrics and Node\'s event-loop lag', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const answer = await get(`${server.httpUrl}/metrics`);
  assert.equal(answer.status, 200);
  assert.match(String(answer.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  for (const name of [
    'switchboard_connections',
    'switchboard_channels',
    'switchboard_frames_received_total',
    'switchboard_frames_sent_total',
    'switchboard_received_bytes_total',
    'switchboard_sent_bytes_total',
    'switchboard_messages_published_total',
    'switchboard_deliveries_total',
    'switchboard_rate_limited_total',
    'switchboard_errors_total',
    'switchboard_handshake_refusals_total',
    'switchboard_closes_total',
    'switchboard_socket_writes_total',
    'switchboard_ready',
    'nodejs_eventloop_lag_seconds',
  ]) {
    assert.match(answer.body, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is exposed`);
  }
  // Without Redis there is no Redis state to report.
  assert.doesNotMatch(answer.body, /switchboard_redis_up/);
});

test('connections, channels, frames, publishes and deliveries follow what clients do', async (t) => {
  const server = await startServer({ maxMessagesPerMinute: 0 });
  t.after(() => server.close());
  const alice = await TestClient.connect(server.url);
  const bob = await TestClient.connect(server.url);
  await alice.subscribe('chat.room.1');
  await bob.subscribe('chat.room.1');
  for (const text of ['one', 'two', 'three']) await alice.publish('chat.room.1', text);
  await eventually(() => bob.received(isMessageOn('chat.room.1')).length === 3);
  await server.handler.publish('chat.room.1', 'from the application');
  await eventually(() => bob.received(isMessageOn('chat.room.1')).length === 4);

  const samples = await scrape(server);
  assert.equal(samples.get('switchboard_connections'), 2);
  assert.equal(samples.get('switchboard_channels'), 1);
  assert.equal(samples.get('switchboard_frames_received_total'), 5, '2 subscribes and 3 messages');
  assert.equal(samples.get('switchboard_messages_published_total'), 4);
  assert.equal(samples.get('switchboard_deliveries_total'), 8, '4 messages to 2 subscribers');
  // Sent: 2 welcomes, 2 subscribe acks, 3 message_sent acks and 8 deliveries.
  assert.equal(samples.get('switchboard_frames_sent_total'), 15);
  assert.ok((samples.get('switchboard_sent_bytes_total') ?? 0) > 15 * 20);
  assert.ok((samples.get('switchboard_received_bytes_total') ?? 0) > 5 * 20);
  assert.equal(samples.get('switchboard_ready'), 1);
  // Every write of a plain (uncompressed) connection takes the fast path.
  assert.ok((samples.get('switchboard_socket_writes_total{path="fast"}') ?? 0) > 0);
  assert.equal(samples.get('switchboard_socket_writes_total{path="fallback"}'), 0);
});

test('error frames are counted by code, and rate-limited frames on their own', async (t) => {
  const server = await startServer({ maxMessagesPerMinute: 2 });
  t.after(() => server.close());
  const client = await TestClient.connect(server.url);
  client.sendRaw('{not json');
  await client.next((frame) => frame.code === ErrorCode.INVALID_JSON);
  client.send({ action: 'ping' });
  client.send({ action: 'ping' });
  await client.next((frame) => frame.code === ErrorCode.RATE_LIMITED);

  const samples = await scrape(server);
  assert.equal(samples.get(`switchboard_errors_total{code="${ErrorCode.INVALID_JSON}"}`), 1);
  // Three frames against a limit of two: the bad JSON counts too, so the second ping is refused.
  assert.equal(samples.get(`switchboard_errors_total{code="${ErrorCode.RATE_LIMITED}"}`), 1);
  assert.equal(samples.get('switchboard_rate_limited_total'), 1);
});

test('handshake refusals are counted by reason', async (t) => {
  const server = await startServer({ auth: { secret: 'metrics-test-secret-of-at-least-32-bytes!' }, allowAnonymous: false });
  t.after(() => server.close());
  assert.equal((await refusedHandshake(server.url)).status, 401);
  assert.equal((await refusedHandshake(`${server.url}?token=not-a-jwt`)).status, 401);
  assert.equal((await refusedHandshake(server.url.replace(/\/$/, '/elsewhere'))).status, 404);

  const samples = await scrape(server);
  assert.equal(samples.get('switchboard_handshake_refusals_total{reason="unauthorized"}'), 2);
  assert.equal(samples.get('switchboard_handshake_refusals_total{reason="not_found"}'), 1);
});

test('closes are counted by code, and codes the server does not know as "other"', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const polite = await TestClient.connect(server.url);
  polite.close(1000);
  await polite.closed;
  const odd = await TestClient.connect(server.url);
  odd.close(4321);
  await odd.closed;

  await eventually(() => server.handler.connectionCount === 0);
  const samples = await scrape(server);
  assert.equal(samples.get('switchboard_closes_total{code="1000"}'), 1);
  assert.equal(samples.get('switchboard_closes_total{code="other"}'), 1);
  assert.equal(samples.get('switchboard_connections'), 0);
});

test('no metric gets a label per channel: publishing on many channels adds no series', async (t) => {
  const server = await startServer({ maxMessagesPerMinute: 0 });
  t.after(() => server.close());
  const client = await TestClient.connect(server.url);
  await client.subscribe('warm.up');
  await client.publish('warm.up', 'x');
  // Switchboard's own series only: Node's default metrics add a series of their own when,
  // say, the first major GC of the run happens in between.
  const switchboardSeries = (samples: Map<string, number>): string[] => [...samples.keys()].filter((key) => key.startsWith('switchboard_'));
  const before = switchboardSeries(await scrape(server));
  for (let index = 0; index < 50; index++) {
    await client.subscribe(`room.${index}`);
    await client.publish(`room.${index}`, 'hello');
  }
  const after = await scrape(server);
  const added = switchboardSeries(after).filter((key) => !before.includes(key));
  assert.ok(added.length <= 2, `series added: ${JSON.stringify(added)}`);
  assert.ok(![...after.keys()].some((key) => key.includes('room.')), 'no series names a channel');
});
