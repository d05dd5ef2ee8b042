/**
 * A seeded fuzz of the native protocol (SPEC §2) over real sockets. Several clients send a
 * few thousand hostile frames (test/helpers/fuzz-frames.ts), each followed by a ping whose
 * pong marks the end of that frame's answers, so that every answer is checked against the
 * frame it belongs to: an error frame of the SPEC's shape with the right code, action and
 * id, a valid ack, or nothing for a pong. Frames the protocol cannot take close with a
 * WebSocket close code. Meanwhile a bystander receives every one of a publisher's
 * messages, and at the end the server still serves and Object.prototype is untouched.
 *
 * FUZZ_SEED=<n> replays a run; the seed is printed with every failure.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode } from '../../src/codes.js';
import { TestClient, eventually, isMessageOn, type Frame } from '../helpers/client.js';
import { within } from '../helpers/cli.js';
import { ECHO, FAIL, FrameMaker, Rng, type Expectation, type FuzzFrame } from '../helpers/fuzz-frames.js';
import { get } from '../helpers/http.js';
import { startServer } from '../helpers/server.js';

const SEED = process.env.FUZZ_SEED === undefined ? 0x5eed_2024 : Number(process.env.FUZZ_SEED) >>> 0;
const CLIENTS = 5;
const FRAMES_PER_CLIENT = 600;
const BATCH = 30;
const MAX_PAYLOAD = 65536;
const BYSTANDER_MESSAGES = 200;
const LIVENESS_MS = 30_000;

const SENTINEL = '\u0001sentinel:';
const sentinel = (index: number): string => `${SENTINEL}${index}`;
const CODES = new Set<unknown>(Object.values(ErrorCode));
const ERROR_KEYS = new Set(['type', 'success', 'code', 'error', 'action', 'id']);
/** The keys each ack may have (SPEC §2), by the action it answers. */
const ACK_KEYS: Readonly<Record<string, readonly string[]>> = {
  subscribe: ['success', 'action', 'channel', 'id', 'epoch', 'offset', 'recovered'],
  unsubscribe: ['success', 'action', 'channel', 'id'],
  message_sent: ['success', 'action', 'channel', 'recipients_count', 'id', 'offset'],
  [ECHO]: ['success', 'action', 'data', 'id'],
  pong: ['action', 'time', 'id'],
};
const ACK_ACTION: Readonly<Record<string, string>> = { subscribe: 'subscribe', unsubscribe: 'unsubscribe', message: 'message_sent', ping: 'pong', [ECHO]: ECHO };
const DELIVERY_KEYS = ['action', 'channel', 'message', 'sender', 'user_id', 'time'];

const isId = (value: unknown): boolean => typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
const extraKeys = (frame: Frame, allowed: Iterable<string>): string[] => Object.keys(frame).filter((key) => !new Set(allowed).has(key));

function errorShapeProblem(frame: Frame): string | null {
  if (frame.success !== false) return 'an error frame without success: false';
  const extra = extraKeys(frame, ERROR_KEYS);
  if (extra.length > 0) return `an error frame with ${extra.join(', ')}`;
  if (!CODES.has(frame.code)) return `an unknown code ${String(frame.code)}`;
  if (typeof frame.error !== 'string' || frame.error === '') return 'an error frame without its text';
  if (frame.action !== null && typeof frame.action !== 'string') return 'an error frame whose action is neither a string nor null';
  if ('id' in frame && !isId(frame.id)) return 'an error frame whose id is neither a string nor a number';
  return null;
}

/** What is wrong with the answers to one frame, or null. */
function replyProblem(expect: Expectation, replies: Frame[]): string | null {
  if (expect.reply === 'none') return replies.length === 0 ? null : 'expected no answer';
  if (replies.length !== 1) return `expected one answer, got ${replies.length}`;
  const reply = replies[0] as Frame;
  if (expect.id === null ? 'id' in reply : reply.id !== expect.id) return `expected id ${JSON.stringify(expect.id)}`;
  if (reply.type === 'error') {
    const shape = errorShapeProblem(reply);
    if (shape !== null) return shape;
    if (!expect.codes.includes(reply.code as ErrorCode)) return `expected ${expect.reply === 'any' ? 'an ack or ' : ''}${expect.codes.join(' or ')}`;
    return reply.action === expect.action ? null : `expected action ${JSON.stringify(expect.action)}`;
  }
  if (expect.reply === 'error') return `expected a ${expect.codes.join(' or ')} error`;
  const action = ACK_ACTION[expect.action];
  if (action === undefined || reply.action !== action) return `expected the ${String(action)} ack`;
  const extra = extraKeys(reply, ACK_KEYS[action] ?? []);
  if (extra.length > 0) return `an ack with ${extra.join(', ')}`;
  return action === 'pong' ? (typeof reply.time === 'number' ? null : 'a pong without time') : reply.success === true ? null : 'an ack without success: true';
}

function deliveryProblem(frame: Frame): string | null {
  if (extraKeys(frame, DELIVERY_KEYS).length > 0 || Object.keys(frame).length !== DELIVERY_KEYS.length) return 'a delivery of the wrong shape';
  if (frame.message === null) return 'a delivery whose message is null';
  return typeof frame.channel === 'string' && typeof frame.sender === 'string' && typeof frame.time === 'number' ? null : 'a delivery with a field of the wrong type';
}

function excerpt(frame: FuzzFrame): string {
  const text = typeof frame.data === 'string' ? JSON.stringify(frame.data) : `<${frame.data.length} bytes>`;
  return text.length > 200 ? `${text.slice(0, 200)}… (${text.length} chars)` : text;
}

/** Sends one client's frames, each with its sentinel ping; returns what was wrong with the answers. */
async function fuzzClient(url: string, index: number): Promise<{ client: TestClient; problems: string[]; deliveries: number }> {
  const maker = new FrameMaker(new Rng((SEED ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0), MAX_PAYLOAD);
  const client = await TestClient.connect(url);
  const sent: FuzzFrame[] = [];
  while (sent.length < FRAMES_PER_CLIENT) {
    for (let count = 0; count < BATCH; count++) {
      const frame = maker.next();
      client.sendRaw(frame.data, { binary: frame.binary });
      client.send({ action: 'ping', id: sentinel(sent.length) });
      sent.push(frame);
    }
    const last = sentinel(sent.length - 1);
    await client.next((frame) => frame.id === last, LIVENESS_MS);
  }

  const problems: string[] = [];
  let deliveries = 0;
  let replies: Frame[] = [];
  let answered = 0;
  for (const frame of client.frames.slice(1)) {
    if (frame.action === 'message' && !('success' in frame)) {
      deliveries++;
      const problem = deliveryProblem(frame);
      if (problem !== null) problems.push(`client ${index}: ${problem}: ${JSON.stringify(frame).slice(0, 300)}`);
    } else if (frame.action === 'pong' && typeof frame.id === 'string' && frame.id.startsWith(SENTINEL)) {
      const fuzzed = sent[answered] as FuzzFrame;
      if (frame.id !== sentinel(answered)) problems.push(`client ${index}: sentinel ${JSON.stringify(frame.id)} out of order, expected ${answered}`);
      const problem = replyProblem(fuzzed.expect, replies);
      if (problem !== null) problems.push(`client ${index} frame ${answered} (${fuzzed.kind}) ${excerpt(fuzzed)}: ${problem}; got ${JSON.stringify(replies).slice(0, 300)}`);
      replies = [];
      answered++;
    } else {
      replies.push(frame);
    }
  }
  if (answered !== sent.length) problems.push(`client ${index}: ${answered} of ${sent.length} frames answered`);
  return { client, problems, deliveries };
}

/** A fresh connection sends `data`; resolves with the code the server closed it with. */
async function closeCodeFor(url: string, data: string | Buffer, binary: boolean): Promise<number> {
  const client = await TestClient.connect(url);
  client.sendRaw(data, { binary });
  return (await within(client.closed, LIVENESS_MS, 'the connection to be closed')).code;
}

void test(`hostile frames get the SPEC's answers and harm nobody else (FUZZ_SEED=${SEED})`, { timeout: 120_000 }, async (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED}`);
  const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
  const server = await startServer({ maxMessagesPerMinute: 0, maxPayload: MAX_PAYLOAD, maxBufferedBytes: 64 * 1024 * 1024 }, (handler) => {
    handler.onAction(ECHO, (_context, data) => ({ echoed: data ?? null }));
    handler.onAction(FAIL, () => {
      throw new Error('fuzz: this action always fails');
    });
  });
  t.after(() => server.close());
  const clients: TestClient[] = [];
  t.after(() => clients.forEach((client) => client.close()));

  try {
    const bystander = await TestClient.connect(server.url);
    const publisher = await TestClient.connect(server.url);
    clients.push(bystander, publisher);
    await bystander.subscribe('fuzz.bystander');
    await publisher.subscribe('fuzz.bystander');
    const publishing = (async () => {
      for (let seq = 0; seq < BYSTANDER_MESSAGES; seq++) {
        assert.equal((await publisher.publish('fuzz.bystander', { seq })).success, true);
        await sleep(2);
      }
    })();

    const results = await Promise.all(Array.from({ length: CLIENTS }, (_, index) => fuzzClient(server.url, index)));
    await publishing;
    clients.push(...results.map((result) => result.client));
    const problems = results.flatMap((result) => result.problems);
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problems`);

    // Frames the protocol cannot take at all close the connection: 1009 too large (SPEC
    // §2), 1007 a text frame that is not UTF-8 (RFC 6455 §8.1).
    const tooLarge = `{"action":"message","data":{"channel":"fuzz.a","message":"${'x'.repeat(MAX_PAYLOAD)}"}}`;
    assert.equal(await closeCodeFor(server.url, tooLarge, false), 1009);
    assert.equal(await closeCodeFor(server.url, Buffer.alloc(MAX_PAYLOAD + 1, 7), true), 1009);
    for (const bytes of [[0x7b, 0x22, 0xff, 0x22, 0x7d], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
      assert.equal(await closeCodeFor(server.url, Buffer.from(bytes), false), 1007);
    }

    // Nothing lost for the bystander, in order, from the publisher only.
    const fromPublisher = () => bystander.received(isMessageOn('fuzz.bystander')).filter((frame) => frame.sender === publisher.welcome.connection_id);
    await eventually(() => fromPublisher().length >= BYSTANDER_MESSAGES, LIVENESS_MS, 'every message at the bystander');
    assert.deepEqual(
      fromPublisher().map((frame) => (frame.message as { seq: number }).seq),
      Array.from({ length: BYSTANDER_MESSAGES }, (_, seq) => seq),
    );
    assert.equal(bystander.received((frame) => frame.type === 'error').length, 0);

    // Every fuzzing client is still connected, and the server still serves newcomers.
    for (const { client } of results) assert.equal(client.socket.readyState, client.socket.OPEN);
    const newcomer = await TestClient.connect(server.url);
    clients.push(newcomer);
    await newcomer.subscribe('fuzz.after');
    const delivered = newcomer.next(isMessageOn('fuzz.after'));
    await newcomer.publish('fuzz.after', 'still serving');
    assert.equal((await delivered).message, 'still serving');
    assert.equal((await get(`${server.httpUrl}/healthz`)).status, 200);
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeBefore);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    t.diagnostic(`${CLIENTS * FRAMES_PER_CLIENT} frames, ${results.reduce((sum, result) => sum + result.deliveries, 0)} deliveries to fuzzing clients`);
  } catch (error) {
    throw new Error(`fuzz failed with FUZZ_SEED=${SEED} (replay: FUZZ_SEED=${SEED} node --import tsx --test test/protocol/fuzz.test.ts): ${(error as Error).message}`, { cause: error });
  }
});
