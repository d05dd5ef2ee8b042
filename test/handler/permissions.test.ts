/**
 * Channel permissions (SPEC §4), `recipients` (SPEC §2) and actions that need an
 * authenticated connection, over real WebSocket connections to a real server on
 * 127.0.0.1 and a free port. Clients authenticate with HS256 tokens in the
 * `Authorization: Bearer` header, minted here with a throwaway secret.
 *
 * A denial is proven to deliver nothing by a later message that must arrive: once it has,
 * anything the denied action had let through would have arrived before it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { SignJWT } from 'jose';
import type { ChannelRule } from '../../src/channels/rules.js';
import type { HandlerOptions } from '../../src/handler.js';
import { ErrorCode } from '../../src/codes.js';
import { TestClient, isMessageOn, settle, type Frame } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** A key made up for these tests only. */
const SECRET = 'switchboard-permissions-test-secret-0123456789';

/** No heartbeat pings during a test (they would be extra frames), and no rate limit. */
const QUIET: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0 };

/** The channels file of SPEC §4, verbatim. */
const SPEC_RULES: ChannelRule[] = [
  { pattern: 'user.{user_id}.**', subscribe: ['authenticated'], publish: ['authenticated'] },
  { pattern: 'user.**', subscribe: ['admin'], publish: ['admin'] },
  { pattern: 'admin.**', subscribe: ['admin'], publish: ['admin'] },
  { pattern: 'chat.*', subscribe: ['*'], publish: ['user', 'admin'], presence: true, history: { size: 100, ttl: 3600 } },
  { pattern: '**', subscribe: ['*'], publish: [] },
];

/** Token claims; null connects anonymously. */
type Claims = Record<string, unknown> | null;

const ANONYMOUS: Claims = null;
const asUser = (userId: string | number, extra: Record<string, unknown> = { role: 'user' }): Claims => ({ user_id: userId, ...extra });
const ADMIN: Claims = { user_id: 1, role: 'admin' };

async function tokenFor(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
}

/** Writes `rules` as a channels file (what WS_CHANNELS_FILE names) and returns its path. */
async function channelsFile(t: TestContext, rules: readonly ChannelRule[]): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'switchboard-channels-'));
  t.after(() => rm(directory, { recursive: true, force: true }));
  const path = join(directory, 'channels.json');
  await writeFile(path, JSON.stringify({ rules }, null, 2));
  return path;
}

async function start(t: TestContext, options: HandlerOptions = {}, setup?: Parameters<typeof startServer>[1]): Promise<TestServer> {
  const server = await startServer({ ...QUIET, auth: { secret: SECRET }, ...options }, setup);
  t.after(() => server.close());
  return server;
}

/** A server with SPEC §4's example rules, read from a channels file. */
async function startWithSpecRules(t: TestContext): Promise<TestServer> {
  return start(t, { channels: await channelsFile(t, SPEC_RULES) });
}

async function connect(t: TestContext, server: TestServer, claims: Claims): Promise<TestClient> {
  const headers = claims === null ? undefined : { Authorization: `Bearer ${await tokenFor(claims)}` };
  const client = await TestClient.connect(server.url, headers === undefined ? {} : { headers });
  t.after(() => client.close());
  // The handshake's token is what the rules look at; make sure it was taken.
  assert.equal(client.welcome.authenticated, claims !== null, `welcome: ${JSON.stringify(client.welcome)}`);
  return client;
}

/** Sends a request with an id of our choosing and returns the reply carrying it. */
async function requestWithId(client: TestClient, action: string, data: unknown, id: string): Promise<Frame> {
  client.send({ action, data, id });
  return client.next((frame) => frame.id === id);
}

function assertAck(reply: Frame, action: string, channel: string): void {
  assert.equal(reply.success, true, `expected ${action} on ${channel} to be allowed: ${JSON.stringify(reply)}`);
  assert.equal(reply.action, action);
  assert.equal(reply.channel, channel);
}

function assertRefused(reply: Frame, code: ErrorCode, action: string): void {
  assert.equal(reply.type, 'error', `expected ${code} for ${action}: ${JSON.stringify(reply)}`);
  assert.equal(reply.success, false);
  assert.equal(reply.code, code);
  assert.equal(reply.action, action);
  assert.equal(typeof reply.error, 'string');
  assert.notEqual(reply.error, '');
}

async function assertSubscribeAllowed(client: TestClient, channel: string): Promise<void> {
  assertAck(await client.subscribe(channel), 'subscribe', channel);
}

async function assertSubscribeForbidden(client: TestClient, channel: string): Promise<void> {
  assertRefused(await client.subscribe(channel), ErrorCode.FORBIDDEN, 'subscribe');
}

async function assertPublishAllowed(client: TestClient, channel: string, message: unknown = 'hello'): Promise<Frame> {
  const reply = await client.publish(channel, message);
  assert.equal(reply.success, true, `expected publishing on ${channel} to be allowed: ${JSON.stringify(reply)}`);
  assert.equal(reply.action, 'message_sent');
  assert.equal(reply.channel, channel);
  return reply;
}

async function assertPublishForbidden(client: TestClient, channel: string, message: unknown = 'hello'): Promise<void> {
  assertRefused(await client.publish(channel, message), ErrorCode.FORBIDDEN, 'message');
}

/**
 * Waits for a matching frame, also among those already received. `client.next` alone would
 * miss a publisher's own copy of its message, which arrives before the ack `request` waits for.
 */
async function arrival(client: TestClient, predicate: (frame: Frame) => boolean): Promise<Frame> {
  return client.received(predicate)[0] ?? client.next(predicate);
}

const messagesOn = (client: TestClient, channel: string): unknown[] => client.received(isMessageOn(channel)).map((frame) => frame.message);
const isMessage = (channel: string, message: unknown) => (frame: Frame) => isMessageOn(channel)(frame) && frame.message === message;

describe('SPEC §4 example rules, from a channels file', () => {
  test('a user subscribes to and publishes on its own inbox user.<own id>.inbox', async (t) => {
    const server = await startWithSpecRules(t);
    const user = await connect(t, server, asUser(7));
    await assertSubscribeAllowed(user, 'user.7.inbox');
    const ack = await assertPublishAllowed(user, 'user.7.inbox', 'note to self');
    assert.equal(ack.recipients_count, 1);
    await arrival(user, isMessage('user.7.inbox', 'note to self'));
  });

  test("subscribing to another user's inbox is FORBIDDEN, with the request id", async (t) => {
    const server = await startWithSpecRules(t);
    const user = await connect(t, server, asUser(7));
    const reply = await requestWithId(user, 'subscribe', { channel: 'user.8.inbox' }, 'peek');
    assertRefused(reply, ErrorCode.FORBIDDEN, 'subscribe');
    assert.equal(reply.id, 'peek');
  });

  test("publishing on another user's inbox is FORBIDDEN, with the request id", async (t) => {
    const server = await startWithSpecRules(t);
    const owner = await connect(t, server, asUser(8));
    const user = await connect(t, server, asUser(7));
    await assertSubscribeAllowed(owner, 'user.8.inbox');
    const reply = await requestWithId(user, 'message', { channel: 'user.8.inbox', message: 'spam' }, 'push');
    assertRefused(reply, ErrorCode.FORBIDDEN, 'message');
    assert.equal(reply.id, 'push');
  });

  test("an admin subscribes to another user's inbox through the user.** rule", async (t) => {
    const server = await startWithSpecRules(t);
    const admin = await connect(t, server, ADMIN);
    await assertSubscribeAllowed(admin, 'user.42.inbox');
  });

  test('an admin subscribes to and publishes on admin and admin.x.y (admin.** matches zero or more further segments)', async (t) => {
    const server = await startWithSpecRules(t);
    const admin = await connect(t, server, ADMIN);
    // Publishing proves the admin.** rule decided: the ** catch-all would refuse it.
    for (const channel of ['admin', 'admin.x.y']) {
      await assertSubscribeAllowed(admin, channel);
      await assertPublishAllowed(admin, channel);
    }
  });

  test('a user without the admin role is FORBIDDEN admin and admin.x.y', async (t) => {
    const server = await startWithSpecRules(t);
    const user = await connect(t, server, asUser(7));
    await assertSubscribeForbidden(user, 'admin');
    await assertSubscribeForbidden(user, 'admin.x.y');
  });

  test('an anonymous client is FORBIDDEN user.x.y', async (t) => {
    const server = await startWithSpecRules(t);
    const anonymous = await connect(t, server, ANONYMOUS);
    await assertSubscribeForbidden(anonymous, 'user.x.y');
  });

  test('an anonymous client is FORBIDDEN admin.anything', async (t) => {
    const server = await startWithSpecRules(t);
    const anonymous = await connect(t, server, ANONYMOUS);
    await assertSubscribeForbidden(anonymous, 'admin.anything');
  });

  test('anyone, anonymous included, may subscribe to chat.lobby', async (t) => {
    const server = await startWithSpecRules(t);
    for (const claims of [ANONYMOUS, asUser(7, {}), asUser(8), ADMIN]) {
      const client = await connect(t, server, claims);
      await assertSubscribeAllowed(client, 'chat.lobby');
    }
  });

  test('roles user and admin may publish on chat.lobby', async (t) => {
    const server = await startWithSpecRules(t);
    for (const claims of [asUser(7), ADMIN]) {
      const client = await connect(t, server, claims);
      await assertSubscribeAllowed(client, 'chat.lobby');
      await assertPublishAllowed(client, 'chat.lobby');
    }
  });

  test('an anonymous client subscribed to chat.lobby is FORBIDDEN to publish there', async (t) => {
    const server = await startWithSpecRules(t);
    const anonymous = await connect(t, server, ANONYMOUS);
    await assertSubscribeAllowed(anonymous, 'chat.lobby');
    await assertPublishForbidden(anonymous, 'chat.lobby');
  });

  test('an authenticated user without roles subscribed to chat.lobby is FORBIDDEN to publish there', async (t) => {
    const server = await startWithSpecRules(t);
    const roleless = await connect(t, server, asUser(7, {}));
    assert.equal(roleless.welcome.role, null);
    await assertSubscribeAllowed(roleless, 'chat.lobby');
    await assertPublishForbidden(roleless, 'chat.lobby');
  });

  test('news.today, matched by the ** catch-all, may be subscribed by anyone', async (t) => {
    const server = await startWithSpecRules(t);
    for (const claims of [ANONYMOUS, asUser(7), ADMIN]) {
      const client = await connect(t, server, claims);
      await assertSubscribeAllowed(client, 'news.today');
    }
  });

  test('news.today, matched by the ** catch-all, may be published by no one, admin included', async (t) => {
    const server = await startWithSpecRules(t);
    for (const claims of [ANONYMOUS, asUser(7), ADMIN]) {
      const client = await connect(t, server, claims);
      await assertSubscribeAllowed(client, 'news.today');
      await assertPublishForbidden(client, 'news.today');
    }
  });

  test('chat.a.b does not match chat.* and falls to the catch-all: a user may subscribe but not publish', async (t) => {
    const server = await startWithSpecRules(t);
    const user = await connect(t, server, asUser(7));
    // Under chat.* a user could publish; under ** nobody can.
    await assertSubscribeAllowed(user, 'chat.a');
    await assertPublishAllowed(user, 'chat.a');
    await assertSubscribeAllowed(user, 'chat.a.b');
    await assertPublishForbidden(user, 'chat.a.b');
  });
});

describe('a denied action delivers nothing', () => {
  test('after a FORBIDDEN publish the channel subscribers receive nothing, only the next allowed message', async (t) => {
    const server = await startWithSpecRules(t);
    const listener = await connect(t, server, asUser(8));
    const anonymous = await connect(t, server, ANONYMOUS);
    const user = await connect(t, server, asUser(7));
    for (const client of [listener, anonymous, user]) await assertSubscribeAllowed(client, 'chat.lobby');

    await assertPublishForbidden(anonymous, 'chat.lobby', 'forbidden');
    await assertPublishAllowed(user, 'chat.lobby', 'allowed');

    // 'forbidden' was refused before 'allowed' was sent: had it gone out, it would be first.
    for (const client of [listener, anonymous, user]) {
      await arrival(client, isMessage('chat.lobby', 'allowed'));
      assert.deepEqual(messagesOn(client, 'chat.lobby'), ['allowed']);
    }
  });

  test('a FORBIDDEN subscribe leaves the client unsubscribed: an application publish on that channel does not reach it', async (t) => {
    const server = await startWithSpecRules(t);
    const user = await connect(t, server, asUser(7));
    await assertSubscribeForbidden(user, 'user.8.inbox');
    await assertSubscribeAllowed(user, 'user.7.inbox');

    assert.equal(await server.handler.publish('user.8.inbox', 'secret'), 0);
    await server.handler.publish('user.7.inbox', 'marker');
    await arrival(user, isMessage('user.7.inbox', 'marker'));
    assert.deepEqual(messagesOn(user, 'user.8.inbox'), []);
  });

  test('a FORBIDDEN subscribe leaves the client unsubscribed: publishing there, though the rule allows publishing, is NOT_SUBSCRIBED', async (t) => {
    const server = await start(t, { channels: { rules: [{ pattern: 'locked', subscribe: ['admin'], publish: ['*'] }, { pattern: '**', subscribe: ['*'], publish: ['*'] }] } });
    const user = await connect(t, server, asUser(7));
    await assertSubscribeForbidden(user, 'locked');
    // Publishing is allowed by the rule, so only the missing subscription can refuse it.
    assertRefused(await user.publish('locked', 'sneak'), ErrorCode.NOT_SUBSCRIBED, 'message');
    await assertSubscribeAllowed(user, 'open');
    await assertPublishAllowed(user, 'open', 'marker');
    await arrival(user, isMessage('open', 'marker'));
    assert.deepEqual(messagesOn(user, 'locked'), []);
  });
});

describe('rule evaluation', () => {
  const restrictive: ChannelRule = { pattern: 'room.*', subscribe: ['admin'], publish: ['admin'] };
  const permissive: ChannelRule = { pattern: 'room.open', subscribe: ['*'], publish: ['*'] };

  test('the first matching rule decides even when a later matching rule would allow', async (t) => {
    const firstDenies = await start(t, { channels: { rules: [restrictive, permissive] } });
    await assertSubscribeForbidden(await connect(t, firstDenies, asUser(7)), 'room.open');
    // The same two rules the other way round: now the allowing one is first.
    const firstAllows = await start(t, { channels: { rules: [permissive, restrictive] } });
    await assertSubscribeAllowed(await connect(t, firstAllows, asUser(7)), 'room.open');
  });

  test('{user_id} never matches an anonymous connection, even in a rule open to anyone', async (t) => {
    const server = await start(t, { channels: { rules: [{ pattern: 'user.{user_id}.**', subscribe: ['*'], publish: ['*'] }] } });
    const anonymous = await connect(t, server, ANONYMOUS);
    const user = await connect(t, server, asUser(7));
    await assertSubscribeAllowed(user, 'user.7.inbox');
    await assertSubscribeForbidden(anonymous, 'user.7.inbox');
    await assertSubscribeForbidden(anonymous, 'user.null.inbox');
  });

  test('a channel that no rule matches is FORBIDDEN to subscribe and to publish', async (t) => {
    const server = await start(t, { channels: { rules: [{ pattern: 'chat.*', subscribe: ['*'], publish: ['*'] }] } });
    const admin = await connect(t, server, ADMIN);
    await assertSubscribeAllowed(admin, 'chat.x');
    await assertSubscribeForbidden(admin, 'other.x');
    await assertPublishForbidden(admin, 'other.x');
  });

  test('without channel rules every connection may subscribe and publish everywhere (GEMVC)', async (t) => {
    const server = await start(t);
    for (const claims of [ANONYMOUS, asUser(7, {})]) {
      const client = await connect(t, server, claims);
      for (const channel of ['user.42.inbox', 'admin.x.y', 'news.today', 'chat.lobby']) {
        await assertSubscribeAllowed(client, channel);
        await assertPublishAllowed(client, channel);
      }
    }
  });

  test('rules passed in code as { rules } decide like the same rules from a channels file', async (t) => {
    const server = await start(t, { channels: { rules: SPEC_RULES } });
    const anonymous = await connect(t, server, ANONYMOUS);
    const user = await connect(t, server, asUser(7));
    const admin = await connect(t, server, ADMIN);

    await assertSubscribeAllowed(user, 'user.7.inbox');
    await assertPublishAllowed(user, 'user.7.inbox');
    await assertSubscribeForbidden(user, 'user.8.inbox');
    await assertSubscribeAllowed(admin, 'user.42.inbox');
    await assertSubscribeAllowed(admin, 'admin');
    await assertSubscribeForbidden(anonymous, 'user.x.y');
    await assertSubscribeForbidden(anonymous, 'admin.anything');
    await assertSubscribeAllowed(anonymous, 'chat.lobby');
    await assertPublishForbidden(anonymous, 'chat.lobby');
    await assertSubscribeAllowed(user, 'chat.lobby');
    await assertPublishAllowed(user, 'chat.lobby');
    await assertSubscribeAllowed(user, 'news.today');
    await assertPublishForbidden(user, 'news.today');
    await assertSubscribeAllowed(user, 'chat.a.b');
    await assertPublishForbidden(user, 'chat.a.b');
  });
});

describe('role words', () => {
  const moderated: ChannelRule[] = [{ pattern: 'mod.**', subscribe: ['moderator'], publish: ['moderator'] }];

  test("a token's roles array matches a rule listing one of its roles", async (t) => {
    const server = await start(t, { channels: { rules: moderated } });
    const moderator = await connect(t, server, asUser(7, { roles: ['editor', 'moderator'] }));
    const editor = await connect(t, server, asUser(8, { roles: ['editor'] }));
    await assertSubscribeAllowed(moderator, 'mod.queue');
    await assertPublishAllowed(moderator, 'mod.queue');
    await assertSubscribeForbidden(editor, 'mod.queue');
  });

  test("a comma-separated role claim 'a, b' matches a rule listing 'b'", async (t) => {
    const server = await start(t, { channels: { rules: [{ pattern: 'bee', subscribe: ['b'], publish: ['b'] }] } });
    const both = await connect(t, server, asUser(7, { role: 'a, b' }));
    const onlyA = await connect(t, server, asUser(8, { role: 'a' }));
    await assertSubscribeAllowed(both, 'bee');
    await assertPublishAllowed(both, 'bee');
    await assertSubscribeForbidden(onlyA, 'bee');
  });

  test("'authenticated' admits any valid token, even without roles, but not an anonymous connection", async (t) => {
    const server = await start(t, { channels: { rules: [{ pattern: 'members', subscribe: ['authenticated'], publish: ['authenticated'] }] } });
    const roleless = await connect(t, server, asUser('someone', {}));
    const anonymous = await connect(t, server, ANONYMOUS);
    await assertSubscribeAllowed(roleless, 'members');
    await assertPublishAllowed(roleless, 'members');
    await assertSubscribeForbidden(anonymous, 'members');
  });
});

describe('recipients', () => {
  const CHANNEL = 'chat.team';

  /** Users 1, 2 and '3' plus one anonymous client, all subscribed to CHANNEL. */
  async function team(t: TestContext, server: TestServer): Promise<{ one: TestClient; two: TestClient; three: TestClient; anonymous: TestClient }> {
    const one = await connect(t, server, asUser(1));
    const two = await connect(t, server, asUser(2));
    const three = await connect(t, server, asUser('3'));
    const anonymous = await connect(t, server, ANONYMOUS);
    for (const client of [one, two, three, anonymous]) await assertSubscribeAllowed(client, CHANNEL);
    return { one, two, three, anonymous };
  }

  /** Publishes a broadcast marker and waits until every client has it. */
  async function marker(sender: TestClient, clients: readonly TestClient[]): Promise<void> {
    await assertPublishAllowed(sender, CHANNEL, 'marker');
    for (const client of clients) await arrival(client, isMessage(CHANNEL, 'marker'));
  }

  test('a message with recipients [2, "3"] reaches exactly users 2 and 3: not the anonymous client, not the unlisted sender', async (t) => {
    const server = await startWithSpecRules(t);
    const { one, two, three, anonymous } = await team(t, server);

    const broadcast = await assertPublishAllowed(one, CHANNEL, 'everyone');
    assert.equal(broadcast.recipients_count, 4, 'all four are subscribed');
    const addressed = await one.publish(CHANNEL, 'for 2 and 3', { recipients: [2, '3'] });
    assert.equal(addressed.recipients_count, 2, JSON.stringify(addressed));
    await marker(one, [one, two, three, anonymous]);

    assert.deepEqual(messagesOn(two, CHANNEL), ['everyone', 'for 2 and 3', 'marker']);
    assert.deepEqual(messagesOn(three, CHANNEL), ['everyone', 'for 2 and 3', 'marker']);
    assert.deepEqual(messagesOn(anonymous, CHANNEL), ['everyone', 'marker']);
    assert.deepEqual(messagesOn(one, CHANNEL), ['everyone', 'marker']);
    const delivered = two.received(isMessage(CHANNEL, 'for 2 and 3'))[0] as Frame;
    assert.equal(delivered.sender, one.welcome.connection_id);
    assert.equal(delivered.user_id, 1);
  });

  test('recipient ids and user ids are compared as strings: ["2", 3] reaches user 2 and user "3"', async (t) => {
    const server = await startWithSpecRules(t);
    const { one, two, three, anonymous } = await team(t, server);

    const addressed = await one.publish(CHANNEL, 'cross-typed', { recipients: ['2', 3] });
    assert.equal(addressed.recipients_count, 2, JSON.stringify(addressed));
    await marker(one, [one, two, three, anonymous]);

    assert.deepEqual(messagesOn(two, CHANNEL), ['cross-typed', 'marker']);
    assert.deepEqual(messagesOn(three, CHANNEL), ['cross-typed', 'marker']);
    assert.deepEqual(messagesOn(anonymous, CHANNEL), ['marker']);
    assert.deepEqual(messagesOn(one, CHANNEL), ['marker']);
  });

  test('recipients_count counts the addressed connections, two connections of one user both counting', async (t) => {
    const server = await startWithSpecRules(t);
    const { one, two, three, anonymous } = await team(t, server);
    const twoAgain = await connect(t, server, asUser(2));
    await assertSubscribeAllowed(twoAgain, CHANNEL);

    const toTwo = await one.publish(CHANNEL, 'for 2', { recipients: [2] });
    assert.equal(toTwo.recipients_count, 2, JSON.stringify(toTwo));
    const toTwoAndThree = await one.publish(CHANNEL, 'for 2 and 3', { recipients: [2, '3'] });
    assert.equal(toTwoAndThree.recipients_count, 3, JSON.stringify(toTwoAndThree));
    await marker(one, [one, two, twoAgain, three, anonymous]);

    assert.deepEqual(messagesOn(two, CHANNEL), ['for 2', 'for 2 and 3', 'marker']);
    assert.deepEqual(messagesOn(twoAgain, CHANNEL), ['for 2', 'for 2 and 3', 'marker']);
    assert.deepEqual(messagesOn(three, CHANNEL), ['for 2 and 3', 'marker']);
  });

  test('the sender receives an addressed message when its own user id is listed', async (t) => {
    const server = await startWithSpecRules(t);
    const { one, two, three, anonymous } = await team(t, server);

    const addressed = await one.publish(CHANNEL, 'for 1 and 2', { recipients: [1, 2] });
    assert.equal(addressed.recipients_count, 2, JSON.stringify(addressed));
    await marker(one, [one, two, three, anonymous]);

    assert.deepEqual(messagesOn(one, CHANNEL), ['for 1 and 2', 'marker']);
    assert.deepEqual(messagesOn(two, CHANNEL), ['for 1 and 2', 'marker']);
    assert.deepEqual(messagesOn(three, CHANNEL), ['marker']);
  });
});

describe('actions that require authentication', () => {
  async function startWithWhoami(t: TestContext, calls: string[]): Promise<TestServer> {
    return start(t, { channels: { rules: SPEC_RULES } }, (handler) => {
      handler.onAction(
        'whoami',
        ({ connection }) => {
          calls.push(String(connection.userId));
          return { user_id: connection.userId };
        },
        { requireAuth: true },
      );
    });
  }

  test('onAction with requireAuth refuses an anonymous connection with UNAUTHORIZED and the request id, without running', async (t) => {
    const calls: string[] = [];
    const server = await startWithWhoami(t, calls);
    const anonymous = await connect(t, server, ANONYMOUS);
    const reply = await requestWithId(anonymous, 'whoami', {}, 'who');
    assertRefused(reply, ErrorCode.UNAUTHORIZED, 'whoami');
    assert.equal(reply.id, 'who');
    await settle(anonymous);
    assert.deepEqual(calls, []);
  });

  test('onAction with requireAuth runs for an authenticated connection', async (t) => {
    const calls: string[] = [];
    const server = await startWithWhoami(t, calls);
    const user = await connect(t, server, asUser(7));
    const reply = await requestWithId(user, 'whoami', {}, 'who');
    assert.deepEqual(reply, { success: true, action: 'whoami', data: { user_id: 7 }, id: 'who' });
    assert.deepEqual(calls, ['7']);
  });
});
