import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChannelPermissions, parseChannelRules, RuleError, type ChannelRule, type Operation, type Subject } from '../../src/channels/rules.js';

const ANONYMOUS: Subject = { authenticated: false, userKey: null, roles: [] };

function user(userKey: string, ...roles: string[]): Subject {
  return { authenticated: true, userKey, roles };
}

function rule(pattern: string, subscribe: string[] = ['*'], publish: string[] = subscribe): ChannelRule {
  return { pattern, subscribe, publish };
}

/** Permissions with one rule allowing anyone on `pattern` and nothing else. */
function onlyPattern(pattern: string): ChannelPermissions {
  return new ChannelPermissions([rule(pattern)]);
}

function matches(pattern: string, channel: string, subject: Subject = user('1')): boolean {
  return onlyPattern(pattern).can('subscribe', channel, subject);
}

/** Parses `document`, which must be refused with a RuleError, and returns its message. */
function ruleError(document: unknown): string {
  try {
    const rules = parseChannelRules(document);
    assert.fail(`expected a RuleError, got ${JSON.stringify(rules)}`);
  } catch (error) {
    if (!(error instanceof RuleError)) throw error;
    assert.ok(error.message.length > 0);
    return error.message;
  }
}

/** SPEC §4's example channels file, as written there. */
const SPEC_EXAMPLE = `{ "rules": [
  { "pattern": "user.{user_id}.**", "subscribe": ["authenticated"], "publish": ["authenticated"] },
  { "pattern": "user.**",           "subscribe": ["admin"], "publish": ["admin"] },
  { "pattern": "admin.**",          "subscribe": ["admin"], "publish": ["admin"] },
  { "pattern": "chat.*",            "subscribe": ["*"], "publish": ["user", "admin"],
    "presence": true, "history": { "size": 100, "ttl": 3600 } },
  { "pattern": "**",                "subscribe": ["*"], "publish": [] }
] }`;

void describe('patterns', () => {
  void test('a literal pattern matches exactly that channel', () => {
    assert.equal(matches('chat.room.1', 'chat.room.1'), true);
    assert.equal(matches('chat.room.1', 'chat.room.2'), false);
    assert.equal(matches('chat.room.1', 'chat.room'), false);
    assert.equal(matches('chat.room.1', 'chat.room.1.x'), false);
  });

  void test('literals compare case-sensitively', () => {
    assert.equal(matches('chat.room', 'Chat.room'), false);
  });

  void test('* matches exactly one segment', () => {
    assert.equal(matches('chat.*', 'chat.lobby'), true);
    assert.equal(matches('chat.*', 'chat'), false);
    assert.equal(matches('chat.*', 'chat.a.b'), false);
    assert.equal(matches('*.room', 'chat.room'), true);
    assert.equal(matches('*.room', 'room'), false);
  });

  void test('* in the middle matches one segment between literals', () => {
    assert.equal(matches('chat.*.messages', 'chat.1.messages'), true);
    assert.equal(matches('chat.*.messages', 'chat.messages'), false);
    assert.equal(matches('chat.*.messages', 'chat.1.2.messages'), false);
  });

  void test('a trailing ** matches zero further segments (admin.** matches admin)', () => {
    assert.equal(matches('admin.**', 'admin'), true);
  });

  void test('a trailing ** matches one or more further segments', () => {
    assert.equal(matches('admin.**', 'admin.x'), true);
    assert.equal(matches('admin.**', 'admin.x.y'), true);
    assert.equal(matches('admin.**', 'admin.x.y.z.w'), true);
  });

  void test('a trailing ** still requires the literal prefix', () => {
    assert.equal(matches('admin.**', 'administrator'), false);
    assert.equal(matches('admin.**', 'user.admin'), false);
    assert.equal(matches('admin.**', 'x.admin.y'), false);
  });

  void test('** alone matches every channel', () => {
    for (const channel of ['a', 'a.b', 'chat.room.1', 'x.y.z.w.v.u']) assert.equal(matches('**', channel), true, channel);
  });

  void test('{user_id} matches the subject’s own user id', () => {
    assert.equal(matches('user.{user_id}.**', 'user.42.inbox', user('42')), true);
    assert.equal(matches('user.{user_id}', 'user.42', user('42')), true);
  });

  void test('{user_id} does not match another user’s id', () => {
    assert.equal(matches('user.{user_id}.**', 'user.43.inbox', user('42')), false);
    assert.equal(matches('user.{user_id}', 'user.4', user('42')), false);
  });

  void test('{user_id} never matches an anonymous subject', () => {
    assert.equal(matches('user.{user_id}', 'user.42', ANONYMOUS), false);
    assert.equal(matches('user.{user_id}', 'user.null', ANONYMOUS), false);
    assert.equal(matches('user.{user_id}', 'user.', ANONYMOUS), false);
  });

  void test('{user_id} compares numeric user ids as strings', () => {
    // A numeric user id 42 reaches the rules as the key String(42).
    assert.equal(matches('user.{user_id}', 'user.42', user(String(42))), true);
    assert.equal(matches('user.{user_id}', 'user.042', user(String(42))), false);
  });

  void test('{user_id} matches one segment only', () => {
    assert.equal(matches('user.{user_id}', 'user.42.x', user('42')), false);
  });
});

void describe('role words', () => {
  void test('* lets anyone, anonymous included', () => {
    const permissions = new ChannelPermissions([rule('news', ['*'])]);
    assert.equal(permissions.can('subscribe', 'news', ANONYMOUS), true);
    assert.equal(permissions.can('subscribe', 'news', user('1')), true);
  });

  void test('authenticated lets any authenticated subject, with or without roles', () => {
    const permissions = new ChannelPermissions([rule('news', ['authenticated'])]);
    assert.equal(permissions.can('subscribe', 'news', user('1')), true);
    assert.equal(permissions.can('subscribe', 'news', user('2', 'admin')), true);
  });

  void test('authenticated refuses anonymous subjects', () => {
    assert.equal(new ChannelPermissions([rule('news', ['authenticated'])]).can('subscribe', 'news', ANONYMOUS), false);
  });

  void test('a role name lets subjects holding that role', () => {
    assert.equal(new ChannelPermissions([rule('ops', ['admin'])]).can('subscribe', 'ops', user('1', 'admin')), true);
  });

  void test('a role name refuses subjects without that role', () => {
    const permissions = new ChannelPermissions([rule('ops', ['admin'])]);
    assert.equal(permissions.can('subscribe', 'ops', user('1')), false);
    assert.equal(permissions.can('subscribe', 'ops', user('1', 'user', 'editor')), false);
    assert.equal(permissions.can('subscribe', 'ops', ANONYMOUS), false);
  });

  void test('a list of role names lets a subject holding any one of them', () => {
    const permissions = new ChannelPermissions([rule('ops', ['admin', 'editor', 'moderator'])]);
    assert.equal(permissions.can('subscribe', 'ops', user('1', 'editor')), true);
    assert.equal(permissions.can('subscribe', 'ops', user('2', 'viewer', 'moderator')), true);
    assert.equal(permissions.can('subscribe', 'ops', user('3', 'viewer')), false);
  });

  void test('role names compare case-sensitively', () => {
    assert.equal(new ChannelPermissions([rule('ops', ['admin'])]).can('subscribe', 'ops', user('1', 'Admin')), false);
  });

  void test('an empty role list lets nobody', () => {
    const permissions = new ChannelPermissions([rule('ops', [])]);
    assert.equal(permissions.can('subscribe', 'ops', user('1', 'admin')), false);
    assert.equal(permissions.can('subscribe', 'ops', ANONYMOUS), false);
  });
});

void describe('rule order and defaults', () => {
  void test('the first matching rule decides even when a later rule would allow', () => {
    const permissions = new ChannelPermissions([rule('chat.secret', ['admin']), rule('chat.*', ['*'])]);
    assert.equal(permissions.can('subscribe', 'chat.secret', user('1')), false);
    assert.equal(permissions.can('subscribe', 'chat.other', user('1')), true);
  });

  void test('the first matching rule decides even when a later rule would deny', () => {
    const permissions = new ChannelPermissions([rule('chat.*', ['*']), rule('chat.secret', ['admin'])]);
    assert.equal(permissions.can('subscribe', 'chat.secret', user('1')), true);
  });

  void test('a channel no rule matches is denied', () => {
    const permissions = new ChannelPermissions([rule('chat.*', ['*'])]);
    assert.equal(permissions.can('subscribe', 'news.today', user('1', 'admin')), false);
    assert.equal(permissions.can('publish', 'news.today', user('1', 'admin')), false);
  });

  void test('an empty rule list denies everything', () => {
    assert.equal(new ChannelPermissions([]).can('subscribe', 'chat', user('1', 'admin')), false);
  });

  void test('no rules (null) allows everything to everyone', () => {
    const permissions = new ChannelPermissions(null);
    for (const operation of ['subscribe', 'publish'] as const) {
      assert.equal(permissions.can(operation, 'any.channel.at.all', ANONYMOUS), true);
      assert.equal(permissions.can(operation, 'admin', user('1')), true);
    }
  });

  void test('subscribe and publish are decided separately', () => {
    const permissions = new ChannelPermissions([rule('chat.*', ['*'], ['user'])]);
    assert.equal(permissions.can('subscribe', 'chat.lobby', ANONYMOUS), true);
    assert.equal(permissions.can('publish', 'chat.lobby', ANONYMOUS), false);
    assert.equal(permissions.can('publish', 'chat.lobby', user('1', 'user')), true);
    const publishOnly = new ChannelPermissions([rule('inbox', [], ['*'])]);
    assert.equal(publishOnly.can('subscribe', 'inbox', user('1')), false);
    assert.equal(publishOnly.can('publish', 'inbox', user('1')), true);
  });

  void test('matching stays right with 500 literal rules before a catch-all', () => {
    const rules: ChannelRule[] = [];
    for (let index = 0; index < 500; index++) rules.push(rule(`room.${index}`, [`role${index}`]));
    rules.push(rule('**', ['*'], []));
    const permissions = new ChannelPermissions(parseChannelRules({ rules }));
    for (const index of [0, 1, 250, 498, 499]) {
      assert.equal(permissions.can('subscribe', `room.${index}`, user('1', `role${index}`)), true, `room.${index} with its role`);
      assert.equal(permissions.can('subscribe', `room.${index}`, user('1', `role${(index + 1) % 500}`)), false, `room.${index} with another role`);
    }
    assert.equal(permissions.can('subscribe', 'room.500', ANONYMOUS), true);
    assert.equal(permissions.can('publish', 'room.500', user('1', 'role0')), false);
    assert.equal(permissions.can('subscribe', 'room', ANONYMOUS), true);
  });
});

void describe('the SPEC §4 example', () => {
  const permissions = new ChannelPermissions(parseChannelRules(JSON.parse(SPEC_EXAMPLE)));
  const can = (operation: Operation, channel: string, subject: Subject): boolean => permissions.can(operation, channel, subject);
  const alice = user('42', 'user');
  const admin = user('1', 'admin');

  void test('a user may subscribe and publish under user.<own id>', () => {
    assert.equal(can('subscribe', 'user.42', alice), true);
    assert.equal(can('subscribe', 'user.42.notifications', alice), true);
    assert.equal(can('publish', 'user.42.notifications', alice), true);
  });

  void test("a user may not subscribe or publish under another user's id", () => {
    assert.equal(can('subscribe', 'user.43.notifications', alice), false);
    assert.equal(can('publish', 'user.43', alice), false);
  });

  void test("an admin may use another user's channels through user.**", () => {
    assert.equal(can('subscribe', 'user.42.notifications', admin), true);
    assert.equal(can('publish', 'user.42', admin), true);
  });

  void test('admin.** is for admins only', () => {
    assert.equal(can('subscribe', 'admin', admin), true);
    assert.equal(can('publish', 'admin.audit.log', admin), true);
    assert.equal(can('subscribe', 'admin', alice), false);
    assert.equal(can('subscribe', 'admin.audit', alice), false);
    assert.equal(can('subscribe', 'admin.audit', ANONYMOUS), false);
  });

  void test('chat.* lets anyone subscribe and users and admins publish', () => {
    assert.equal(can('subscribe', 'chat.lobby', ANONYMOUS), true);
    assert.equal(can('publish', 'chat.lobby', alice), true);
    assert.equal(can('publish', 'chat.lobby', admin), true);
    assert.equal(can('publish', 'chat.lobby', ANONYMOUS), false);
    assert.equal(can('publish', 'chat.lobby', user('7')), false);
  });

  void test('any other channel falls to ** : anyone subscribes, nobody publishes', () => {
    for (const subject of [ANONYMOUS, alice, admin]) {
      assert.equal(can('subscribe', 'news.today', subject), true);
      assert.equal(can('publish', 'news.today', subject), false);
    }
    // chat.a.b has two segments after chat, so chat.* does not match it.
    assert.equal(can('publish', 'chat.a.b', alice), false);
  });

  void test('an anonymous subject gets nothing under user.**', () => {
    assert.equal(can('subscribe', 'user.42', ANONYMOUS), false);
    assert.equal(can('subscribe', 'user.42.notifications', ANONYMOUS), false);
    assert.equal(can('publish', 'user.42', ANONYMOUS), false);
  });

  void test('parsing keeps presence and history of the chat.* rule', () => {
    const rules = parseChannelRules(JSON.parse(SPEC_EXAMPLE));
    assert.equal(rules.length, 5);
    assert.equal(rules[3]?.pattern, 'chat.*');
    assert.equal(rules[3]?.presence, true);
    assert.deepEqual(rules[3]?.history, { size: 100, ttl: 3600 });
    assert.equal(rules[0]?.presence, undefined);
    assert.equal(rules[0]?.history, undefined);
  });
});

void describe('parseChannelRules', () => {
  const valid = { pattern: 'chat.*', subscribe: ['*'], publish: ['user'] };

  void test('returns the rules with pattern, subscribe and publish as given', () => {
    assert.deepEqual(parseChannelRules({ rules: [valid] }), [valid]);
  });

  void test('accepts an empty rules list', () => {
    assert.deepEqual(parseChannelRules({ rules: [] }), []);
  });

  void test('accepts presence false and keeps it', () => {
    assert.equal(parseChannelRules({ rules: [{ ...valid, presence: false }] })[0]?.presence, false);
  });

  void test('accepts presence true and history and keeps them', () => {
    const [parsed] = parseChannelRules({ rules: [{ ...valid, presence: true, history: { size: 10, ttl: 60 } }] });
    assert.equal(parsed?.presence, true);
    assert.deepEqual(parsed?.history, { size: 10, ttl: 60 });
  });

  void test('accepts every pattern form of SPEC §4', () => {
    for (const pattern of ['a', 'a.b', 'chat.*', '*', 'admin.**', '**', 'user.{user_id}', 'user.{user_id}.**', 'a-b_c:d@e=f.*.x']) {
      assert.equal(parseChannelRules({ rules: [{ ...valid, pattern }] })[0]?.pattern, pattern);
    }
  });

  void test('refuses a document that is not an object', () => {
    for (const document of [null, 'rules', 42, [valid]]) ruleError(document);
  });

  void test('refuses a document without a rules array', () => {
    ruleError({});
    ruleError({ rules: valid });
    ruleError({ rules: 'chat.*' });
  });

  void test('refuses an unknown top-level field and names it', () => {
    assert.match(ruleError({ rules: [], version: 2 }), /version/);
  });

  void test('refuses a rule that is not an object and names its position', () => {
    for (const raw of [null, 'chat.*', 3, [valid]]) assert.match(ruleError({ rules: [valid, raw] }), /rules\[1\]/);
  });

  void test('refuses an unknown rule field and names the field and the rule position', () => {
    const message = ruleError({ rules: [valid, valid, { ...valid, recipients: ['x'] }] });
    assert.match(message, /rules\[2\]/);
    assert.match(message, /recipients/);
  });

  void test('refuses an empty or non-string pattern', () => {
    for (const pattern of ['', undefined, null, 3, ['chat']]) {
      assert.match(ruleError({ rules: [{ ...valid, pattern }] }), /rules\[0\]\.pattern/, JSON.stringify(pattern));
    }
  });

  void test("refuses '**' anywhere but last", () => {
    for (const pattern of ['**.chat', 'a.**.b', '**.**']) assert.match(ruleError({ rules: [{ ...valid, pattern }] }), /\*\*/, pattern);
  });

  void test('refuses pattern segments with characters outside the channel grammar', () => {
    for (const pattern of ['a..b', '.a', 'a.', 'a b', 'chat/room', 'a*', '*a', 'a.***', '{userid}', 'user.{user_id}x', 'user.{sub}', 'ü']) {
      ruleError({ rules: [{ ...valid, pattern }] });
    }
  });

  void test('refuses role lists that are not arrays of non-empty strings', () => {
    for (const field of ['subscribe', 'publish']) {
      for (const roles of ['*', 'admin', [''], ['  '], [1], [null], ['admin', 2], {}]) {
        assert.match(ruleError({ rules: [{ ...valid, [field]: roles }] }), new RegExp(`rules\\[0\\]\\.${field}`), `${field}: ${JSON.stringify(roles)}`);
      }
    }
  });

  void test('refuses presence that is not a boolean', () => {
    for (const presence of ['true', 1, null, {}]) assert.match(ruleError({ rules: [{ ...valid, presence }] }), /presence/, JSON.stringify(presence));
  });

  void test('refuses history that is not {size, ttl} positive integers', () => {
    const bad = [
      null,
      100,
      'yes',
      [],
      {},
      { size: 10 },
      { ttl: 60 },
      { size: 0, ttl: 60 },
      { size: 10, ttl: 0 },
      { size: -1, ttl: 60 },
      { size: 1.5, ttl: 60 },
      { size: 10, ttl: 2.5 },
      { size: '10', ttl: 60 },
      { size: 10, ttl: 60, extra: 1 },
    ];
    for (const history of bad) assert.match(ruleError({ rules: [{ ...valid, history }] }), /history/, JSON.stringify(history));
  });
});
