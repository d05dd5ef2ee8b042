/**
 * What a token change does to a connection's rights: a renewed token with fewer roles
 * takes away the channels those roles gave, and handshake refusals say only what the
 * client can act on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { ErrorCode } from '../../src/codes.js';
import { TestClient, isMessageOn, settle } from '../helpers/client.js';
import { assertErrorBody, refusedHandshake } from '../helpers/http.js';
import { startServer } from '../helpers/server.js';

const SECRET = 'renewal-test-secret-0123456789abcdef-0123456789';

function token(claims: Record<string, unknown>, expiresIn = '1h'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(expiresIn).sign(new TextEncoder().encode(SECRET));
}

const RULES = {
  rules: [
    { pattern: 'admin.**', subscribe: ['admin'], publish: ['admin'] },
    { pattern: '**', subscribe: ['*'], publish: ['*'] },
  ],
};

test('renewing with a token that lost a role leaves the channels that role gave, and says so', async (t) => {
  const server = await startServer({ auth: { secret: SECRET }, channels: RULES });
  t.after(() => server.close());
  const client = await TestClient.connect(server.url, { headers: { Authorization: `Bearer ${await token({ user_id: 7, role: 'admin' })}` } });
  assert.equal((await client.subscribe('admin.secrets')).success, true);
  assert.equal((await client.subscribe('lobby')).success, true);

  const renewed = await client.request('auth', { token: await token({ user_id: 7, role: 'user' }) });
  assert.equal(renewed.success, true);
  assert.deepEqual(
    client.received((frame) => frame.action === 'unsubscribe' && frame.reason === 'forbidden'),
    [{ action: 'unsubscribe', channel: 'admin.secrets', reason: 'forbidden' }],
  );

  // Subscribing again is refused, even though the server once had it subscribed.
  assert.equal((await client.subscribe('admin.secrets')).code, ErrorCode.FORBIDDEN);
  // Nothing on the lost channel reaches it any more; the channel it kept still works.
  assert.equal(await server.handler.publish('admin.secrets', 'secret'), 0);
  await server.handler.publish('lobby', 'marker');
  await client.next((frame) => isMessageOn('lobby')(frame) && frame.message === 'marker');
  assert.equal(client.received(isMessageOn('admin.secrets')).length, 0);
  await settle(client);
});

test('a handshake refusal names no configuration detail, only what the client can act on', async (t) => {
  const server = await startServer({ auth: { secret: SECRET }, allowAnonymous: false });
  t.after(() => server.close());
  const rs256Header = Buffer.from(JSON.stringify({ alg: 'RS256' })).toString('base64url');
  const forged = `${rs256Header}.${Buffer.from(JSON.stringify({ user_id: 1, exp: 9999999999 })).toString('base64url')}.c2ln`;
  const cases: Array<[string, Record<string, string>, string]> = [
    ['a token signed with an algorithm not configured', { Authorization: `Bearer ${forged}` }, 'invalid token'],
    ['an expired token', { Authorization: `Bearer ${await token({ user_id: 1 }, '-10s')}` }, 'token expired'],
    ['no token', {}, 'a token is required'],
  ];
  for (const [what, headers, expected] of cases) {
    const answer = await refusedHandshake(server.url, { headers });
    assertErrorBody(answer, 401);
    assert.equal((JSON.parse(answer.body) as { error: string }).error, expected, what);
  }
});
