/**
 * SPEC §2: `message` is any JSON value but null. A number too large for a double (1e309)
 * parses as Infinity and would be serialized as null, so it is refused like null.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode } from '../../src/codes.js';
import { MAX_DEPTH, parseRequest } from '../../src/protocol/inbound.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { TestClient, isMessageOn, settle } from '../helpers/client.js';
import { startServer } from '../helpers/server.js';

void describe('the message value', { timeout: 30_000 }, () => {
  void test('Infinity, -Infinity and NaN are refused as INVALID_MESSAGE naming data.message', () => {
    for (const message of [Infinity, -Infinity, NaN]) {
      const result = parseRequest({ action: 'message', data: { channel: 'chat.room.1', message }, id: 1 });
      assert.ok(!result.ok, `message ${message} was accepted`);
      assert.equal(result.violation.code, ErrorCode.INVALID_MESSAGE);
      assert.match(result.violation.error, /'data\.message'/);
      assert.equal(result.violation.action, 'message');
      assert.equal(result.violation.id, 1);
    }
  });

  void test('other numbers, -0 included, are messages', () => {
    for (const message of [0, -0, 1.5, -1e308, Number.MAX_VALUE, 5e-324]) {
      assert.ok(parseRequest({ action: 'message', data: { channel: 'chat.room.1', message } }).ok, `message ${message}`);
    }
  });

  void test('over the wire, 1e309 is refused and never delivered as null', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    t.after(() => client.close());
    await client.subscribe('chat.room.1');
    client.sendRaw('{"action":"message","data":{"channel":"chat.room.1","message":1e309},"id":"big"}');
    const refused = await client.next((frame) => frame.id === 'big');
    assert.equal(refused.code, ErrorCode.INVALID_MESSAGE);
    await settle(client);
    assert.deepEqual(client.received(isMessageOn('chat.room.1')), []);
  });

  void test(`a message nested up to ${MAX_DEPTH} levels is a message; deeper is INVALID_MESSAGE, over the wire too, and the server logs no error`, async (t) => {
    const nested = (depth: number): unknown => {
      let value: unknown = 'leaf';
      for (let level = 0; level < depth; level++) value = level % 2 === 0 ? [value] : { inner: value };
      return value;
    };
    assert.ok(parseRequest({ action: 'message', data: { channel: 'chat.room.1', message: nested(MAX_DEPTH) } }).ok);
    const deeper = parseRequest({ action: 'message', data: { channel: 'chat.room.1', message: nested(MAX_DEPTH + 1) } });
    assert.ok(!deeper.ok);
    assert.equal(deeper.violation.code, ErrorCode.INVALID_MESSAGE);
    assert.match(deeper.violation.error, /nested more than 512 levels/);

    const { logger, lines } = memoryLogger();
    const server = await startServer({ logger });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    t.after(() => client.close());
    await client.subscribe('chat.room.1');
    // 10,000 levels: deep enough to overflow JSON.stringify's stack, were it sent on.
    client.sendRaw(`{"action":"message","data":{"channel":"chat.room.1","message":${'['.repeat(10_000)}${']'.repeat(10_000)}},"id":"deep"}`);
    assert.equal((await client.next((frame) => frame.id === 'deep')).code, ErrorCode.INVALID_MESSAGE);
    await settle(client);
    assert.deepEqual(client.received(isMessageOn('chat.room.1')), []);
    assert.deepEqual(lines.filter((line) => line.level >= 50), [], 'no error logged');
  });
});
