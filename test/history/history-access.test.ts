/**
 * History on one node, from the outside (SPEC §4, §7): who may read it (NOT_ENABLED where
 * a channel has no history, FORBIDDEN without the subscribe right, no subscription
 * needed); GET /api/channels/NAME/history (since, limit, its 400/401/404/405 answers) and
 * POST /api/publish (the offset and the epoch on a history channel). Real sockets, a real
 * server.
 *
 * Offsets, the history action, ephemeral messages, a restart: history.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode } from '../../src/codes.js';
import { SwitchboardError } from '../../src/errors.js';
import { eventually, isMessageOn, type Frame } from '../helpers/client.js';
import { apiRequest, assertErrorBody, assertJson } from '../helpers/http.js';
import { RULES, WAIT_MS, api, assertRefused, connect, historyOf, messagesIn, offsetsIn, publishMany, start, startWithHistory, subscribed } from '../helpers/history.js';

void describe('who may read history', () => {
  void test('NOT_ENABLED on a channel without history; FORBIDDEN without the subscribe right; no subscription needed', async (t) => {
    const server = await start(t, { channels: { rules: RULES } });
    const client = await connect(t, server);
    await server.handler.publishMessage('admin.x', 'secret');
    await server.handler.publishMessage('feed.x', 'public');

    const page = await historyOf(client, 'feed.x');
    assert.deepEqual(messagesIn(page.messages as Frame[]), ['public']);
    assertRefused(await client.request('history', { channel: 'plain.x' }), ErrorCode.NOT_ENABLED, 'history');
    client.send({ action: 'history', data: { channel: 'admin.x' }, id: 'h-9' });
    const forbidden = await client.next((frame) => frame.id === 'h-9');
    assertRefused(forbidden, ErrorCode.FORBIDDEN, 'history');
    assert.ok(!JSON.stringify(forbidden).includes('secret"'), 'nothing of the history leaks');
    assertRefused(await client.request('history', { channel: 'nowhere.x' }), ErrorCode.FORBIDDEN, 'history');
    await assert.rejects(server.handler.history('plain.x'), (error: unknown) => error instanceof SwitchboardError && error.code === ErrorCode.NOT_ENABLED);
  });

  void test('without a channels file, history is off unless WS_HISTORY_SIZE: NOT_ENABLED', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    const ack = await subscribed(client, 'feed.a');
    assert.equal(Object.hasOwn(ack, 'epoch'), false);
    assertRefused(await client.request('history', { channel: 'feed.a' }), ErrorCode.NOT_ENABLED, 'history');
  });
});

void describe('the HTTP API', () => {
  void test('GET /api/channels/NAME/history answers the epoch, the offset and the messages, with since and limit', async (t) => {
    const server = await startWithHistory(t);
    const client = await connect(t, server);
    const ack = await subscribed(client, 'feed.api');
    await publishMany(server, 'feed.api', 6);
    await eventually(() => client.received(isMessageOn('feed.api')).length === 6, WAIT_MS, 'every message');

    const body = assertJson(await api(server, '/api/channels/feed.api/history'), 200);
    assert.deepEqual(Object.keys(body).sort(), ['channel', 'epoch', 'messages', 'offset']);
    assert.equal(body.channel, 'feed.api');
    assert.equal(body.epoch, ack.epoch);
    assert.equal(body.offset, 6);
    assert.deepEqual(body.messages, client.received(isMessageOn('feed.api')));
    assert.deepEqual(offsetsIn(assertJson(await api(server, '/api/channels/feed.api/history?since=2'), 200).messages as Frame[]), [3, 4, 5, 6]);
    assert.deepEqual(offsetsIn(assertJson(await api(server, '/api/channels/feed.api/history?since=2&limit=2'), 200).messages as Frame[]), [3, 4]);
    assert.deepEqual(offsetsIn(assertJson(await api(server, '/api/channels/feed.api/history?limit=2'), 200).messages as Frame[]), [5, 6]);
    assert.deepEqual(assertJson(await api(server, '/api/channels/feed.api/history?since=6'), 200).messages, []);
  });

  void test('GET …/history: 400 on bad parameters, 404 where history is off, 401 without the key', async (t) => {
    const server = await startWithHistory(t);
    for (const query of ['since=-1', 'since=abc', 'since=1.5', 'since=', 'limit=0', 'limit=1001', 'limit=x', 'limit=2.5']) {
      assertErrorBody(await api(server, `/api/channels/feed.a/history?${query}`), 400);
    }
    assertErrorBody(await api(server, '/api/channels/feed..a/history'), 400);
    assertErrorBody(await apiRequest(`${server.httpUrl}/api/channels/feed.a/history`, 'wrong-key', 'GET'), 401);
    assertErrorBody(await api(server, '/api/channels/feed.a/history', 'POST', {}), 405);

    const withRules = await start(t, { channels: { rules: RULES } });
    assertErrorBody(await api(withRules, '/api/channels/plain.a/history'), 404);
    assertJson(await api(withRules, '/api/channels/feed.a/history'), 200);
    const without = await start(t);
    assertErrorBody(await api(without, '/api/channels/feed.a/history'), 404);
  });

  void test('POST /api/publish answers the offset and the epoch on a history channel, and nothing of the kind elsewhere', async (t) => {
    const server = await start(t, { channels: { rules: RULES } });
    const client = await connect(t, server);
    const ack = await subscribed(client, 'feed.p');
    const first = assertJson(await api(server, '/api/publish', 'POST', { channel: 'feed.p', message: { n: 1 } }), 200);
    assert.deepEqual(first, { success: true, recipients_count: 1, offset: 1, epoch: ack.epoch });
    const second = assertJson(await api(server, '/api/publish', 'POST', { channel: 'feed.p', message: { n: 2 } }), 200);
    assert.equal(second.offset, 2);
    assert.equal(second.epoch, ack.epoch);
    await eventually(() => client.received(isMessageOn('feed.p')).length === 2, WAIT_MS, 'both messages');
    const frames = client.received(isMessageOn('feed.p'));
    assert.deepEqual(offsetsIn(frames), [1, 2]);
    assert.deepEqual(frames.map((frame) => frame.sender), [null, null]);

    const plain = assertJson(await api(server, '/api/publish', 'POST', { channel: 'plain.p', message: 'x' }), 200);
    assert.deepEqual(plain, { success: true, recipients_count: 0 });
  });
});
