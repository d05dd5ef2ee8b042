/**
 * GET /api/openapi.json held to the real API: the document is OpenAPI 3.1 (every operation
 * has responses, every $ref resolves, every schema compiles as JSON Schema 2020-12 in Ajv's
 * strict mode), and every answer a real server gives — 200s with real WebSocket clients
 * subscribed (anonymous, a numeric and a string user id), 400, 401, 404, 405 and 503 —
 * validates against the schema the document gives for its path, method and status, headers
 * included. Each answer's body is also mutated (a field more, a field less, a value of
 * another type) and must then fail, so a schema that has gone loose fails this test too.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { pino } from 'pino';
import type { ClientOptions } from 'ws';
import { mintToken } from '../../src/auth/tokens.js';
import { channelNameProblem } from '../../src/channels/names.js';
import { WebSocketHandler } from '../../src/handler.js';
import { createRequestListener } from '../../src/http/endpoints.js';
import { TestClient } from '../helpers/client.js';
import { apiRequest, assertJson, request, type HttpAnswer } from '../helpers/http.js';
import { startServer, type TestServer } from '../helpers/server.js';

const SUITE = { timeout: 60_000 };

const KEY = 'openapi-test-key';
const SECRET = 'openapi-test-secret-of-at-least-32-bytes';
const CHANNEL = 'chat.room.1';
const OTHER_CHANNEL = 'news';
/** The suite's one channel with history. */
const KEPT_CHANNEL = 'kept.room';
const RULES = [
  { pattern: 'kept.**', subscribe: ['*'], publish: ['*'], history: { size: 10, ttl: 60 } },
  { pattern: '**', subscribe: ['*'], publish: ['*'] },
];
const MAX_PAYLOAD = 4096;
/** Where Ajv knows the document; the schemas' `#/components/...` refs resolve against it. */
const DOC_ID = 'https://switchboard.invalid/api/openapi.json';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
/** Statuses no test can provoke on a healthy server. */
const UNPROVOKED = new Set(['500']);

type Json = Record<string, unknown>;

/** One API call: the path template and method of the operation it is an answer of, in the document's terms. */
interface Call {
  operation: string;
  method: 'get' | 'post';
  url: string;
  /** The HTTP method sent, when not the operation's (405). */
  send?: string;
  body?: unknown;
  key?: string | null;
}

/** Every operation, with a request that succeeds on the suite's server (bodies filled in by the tests). */
const OPERATIONS: ReadonlyArray<{ operation: string; method: 'get' | 'post'; url: string; body?: unknown }> = [
  { operation: '/api/publish', method: 'post', url: '/api/publish', body: { channel: CHANNEL, message: 'hi' } },
  { operation: '/api/stats', method: 'get', url: '/api/stats' },
  { operation: '/api/channels', method: 'get', url: '/api/channels' },
  { operation: '/api/channels/{name}', method: 'get', url: `/api/channels/${CHANNEL}` },
  { operation: '/api/channels/{name}/history', method: 'get', url: `/api/channels/${KEPT_CHANNEL}/history` },
  { operation: '/api/disconnect', method: 'post', url: '/api/disconnect', body: { user_id: 'nobody' } },
  { operation: '/api/openapi.json', method: 'get', url: '/api/openapi.json' },
];

const escape = (segment: string): string => segment.replaceAll('~', '~0').replaceAll('/', '~1');

function at(document: unknown, pointer: string): unknown {
  assert.ok(pointer === '' || pointer.startsWith('/'), `a JSON pointer: ${pointer}`);
  let node = document;
  for (const part of pointer === '' ? [] : pointer.slice(1).split('/')) {
    const key = part.replaceAll('~1', '/').replaceAll('~0', '~');
    assert.ok(typeof node === 'object' && node !== null && Object.hasOwn(node, key), `${pointer} resolves (no '${key}')`);
    node = (node as Json)[key];
  }
  return node;
}

/** The pointer of what `pointer` designates once its $refs are followed. */
function follow(document: unknown, pointer: string): string {
  let target = pointer;
  for (let hops = 0; ; hops++) {
    assert.ok(hops < 10, `a $ref cycle at ${pointer}`);
    const node = at(document, target) as Json;
    if (typeof node.$ref !== 'string') return target;
    assert.ok(node.$ref.startsWith('#/'), `a local $ref: ${node.$ref}`);
    target = node.$ref.slice(1);
  }
}

/** Every object in `value` with its JSON pointer. */
function* objects(value: unknown, pointer = ''): Generator<[string, Json]> {
  if (typeof value !== 'object' || value === null) return;
  if (!Array.isArray(value)) yield [pointer, value as Json];
  for (const [key, child] of Object.entries(value)) yield* objects(child, `${pointer}/${escape(key)}`);
}

/** The document's schemas compiled with Ajv 2020 in strict mode, refs resolved within the document. */
class Schemas {
  private readonly ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(readonly document: Json) {
    // The Ajv root is the whole document: its OpenAPI members are not schema keywords.
    this.ajv.addVocabulary(Object.keys(document));
    this.ajv.addSchema(document, DOC_ID);
  }

  /** The validator of the schema at `pointer` (after $refs). */
  at(pointer: string): ValidateFunction {
    const target = follow(this.document, pointer);
    let validate = this.compiled.get(target);
    if (validate === undefined) {
      validate = this.ajv.compile({ $ref: `${DOC_ID}#${target}` });
      this.compiled.set(target, validate);
    }
    return validate;
  }

  /** The pointer of the response the document gives for an operation and status. */
  response(operation: string, method: string, status: string): string {
    const responses = `/paths/${escape(operation)}/${method}/responses`;
    assert.ok(Object.hasOwn(at(this.document, responses) as Json, status), `the document lists ${status} for ${method.toUpperCase()} ${operation}`);
    return follow(this.document, `${responses}/${status}`);
  }

  requestBody(operation: string, method: string): ValidateFunction {
    const body = follow(this.document, `/paths/${escape(operation)}/${method}/requestBody`);
    return this.at(`${body}/content/application~1json/schema`);
  }

  errorsText(validate: ValidateFunction): string {
    return this.ajv.errorsText(validate.errors);
  }
}

/** Copies of `body` that each break it once: a field added, one removed, a value of another type. */
/** A stored message's own payload (`/messages/N/message`): any JSON value, so no mutation of it can break a schema. */
const isPayload = (pointer: string): boolean => /^\/messages\/\d+\/message(\/|$)/.test(pointer);

function* mutants(body: unknown): Generator<[string, unknown]> {
  for (const [pointer, node] of objects(body)) {
    if (isPayload(pointer)) continue;
    yield [`${pointer || '/'} with a field more`, mutated(body, pointer, (copy) => ((copy as Json).unexpected = 1))];
    for (const key of Object.keys(node)) {
      const child = `${pointer}/${escape(key)}`;
      if (isPayload(child)) continue;
      yield [`${child} removed`, mutated(body, pointer, (copy) => delete (copy as Json)[key])];
      // No field of an answer takes both an array and an object, nor an array in place of a scalar.
      yield [`${child} of another type`, mutated(body, pointer, (copy) => ((copy as Json)[key] = Array.isArray(node[key]) ? {} : []))];
    }
  }
}

function mutated(body: unknown, pointer: string, change: (node: unknown) => unknown): unknown {
  const copy = structuredClone(body);
  change(at(copy, pointer));
  return copy;
}

void describe('GET /api/openapi.json, checked against the real answers', SUITE, () => {
  let server: TestServer;
  let document: Json;
  let schemas: Schemas;
  const clients: TestClient[] = [];
  /** `METHOD operation status` of every answer validated, to check that every listed one was seen. */
  const seen = new Set<string>();

  async function connect(userId?: string | number): Promise<TestClient> {
    const options: ClientOptions = {};
    if (userId !== undefined) {
      const token = await mintToken(server.handler.options.auth, { userId, role: 'user', ttlSeconds: 3600 });
      options.headers = { Authorization: `Bearer ${token}` };
    }
    const client = await TestClient.connect(server.url, options);
    clients.push(client);
    return client;
  }

  /** Makes the call on `base` and validates the answer (status, headers, body) against the document. */
  async function check(base: string, call: Call, status: number): Promise<unknown> {
    const method = call.send ?? call.method.toUpperCase();
    const answer = await apiRequest(`${base}${call.url}`, call.key === undefined ? KEY : call.key, method, call.body);
    const what = `${method} ${call.url}`;
    assert.equal(answer.status, status, `${what}: ${answer.body}`);
    return validateAnswer(answer, schemas.response(call.operation, call.method, String(status)), what, `${call.method.toUpperCase()} ${call.operation} ${status}`);
  }

  function validateAnswer(answer: HttpAnswer, response: string, what: string, label: string): unknown {
    const body = assertJson(answer, answer.status);
    const validate = schemas.at(`${response}/content/application~1json/schema`);
    assert.ok(validate(body), `${what} → ${answer.status}: ${schemas.errorsText(validate)}\n${answer.body}`);
    const headers = (at(document, response) as Json).headers as Json | undefined;
    for (const name of Object.keys(headers ?? {})) {
      const header = follow(document, `${response}/headers/${escape(name)}`);
      const value = answer.headers[name.toLowerCase()];
      if (value === undefined) {
        assert.notEqual((at(document, header) as Json).required, true, `${what} → ${answer.status}: the ${name} header is missing`);
        continue;
      }
      const validateHeader = schemas.at(`${header}/schema`);
      assert.ok(validateHeader(value), `${what} → ${answer.status}: ${name}: ${JSON.stringify(value)}: ${schemas.errorsText(validateHeader)}`);
    }
    // The schema of the document itself is open on purpose: OpenAPI allows what it leaves out.
    if ((body as Json).openapi === undefined) {
      for (const [change, copy] of mutants(body)) assert.equal(validate(copy), false, `${what} → ${answer.status}: the schema accepts the body with ${change}`);
    }
    seen.add(label);
    return body;
  }

  before(async () => {
    server = await startServer({ apiKey: KEY, auth: { secret: SECRET }, maxMessagesPerMinute: 0, maxPayload: MAX_PAYLOAD, channels: { rules: RULES } });
    const answer = await apiRequest(`${server.httpUrl}/api/openapi.json`, KEY, 'GET');
    document = assertJson(answer, 200);
    schemas = new Schemas(document);
    const anonymous = await connect();
    const numeric = await connect(42);
    const named = await connect('alice');
    for (const client of [anonymous, numeric, named]) assert.equal((await client.subscribe(CHANNEL)).success, true);
    assert.equal((await named.subscribe(OTHER_CHANNEL)).success, true);
  });

  after(async () => {
    for (const client of clients) client.close();
    await server.close();
  });

  void test('the document is OpenAPI 3.1: operations with responses, resolvable $refs, schemas that compile', () => {
    assert.match(document.openapi as string, /^3\.1\.\d+$/);
    const info = document.info as Json;
    assert.equal(typeof info.title, 'string');
    assert.equal(typeof info.version, 'string');
    assert.deepEqual(Object.keys(document.paths as Json).sort(), OPERATIONS.map(({ operation }) => operation).sort());

    for (const [pointer, node] of objects(document)) {
      if (typeof node.$ref === 'string') follow(document, pointer);
    }

    const schemes = (document.components as Json).securitySchemes as Json;
    assert.equal((schemes.bearer as Json).type, 'http');
    assert.equal((schemes.bearer as Json).scheme, 'bearer');
    const requirements = [...(document.security as Json[])];
    const operationIds = new Set<string>();
    for (const [path, item] of Object.entries(document.paths as Record<string, Json>)) {
      const operations = METHODS.filter((method) => item[method] !== undefined);
      assert.ok(operations.length > 0, `${path} has an operation`);
      for (const method of operations) {
        const where = `/paths/${escape(path)}/${method}`;
        const operation = at(document, where) as Json;
        assert.equal(typeof operation.operationId, 'string', `${where} has an operationId`);
        assert.ok(!operationIds.has(operation.operationId as string), `operationId ${operation.operationId as string} is unique`);
        operationIds.add(operation.operationId as string);
        requirements.push(...((operation.security as Json[] | undefined) ?? []));
        const statuses = Object.keys(operation.responses as Json);
        assert.ok(statuses.length > 0, `${where} has responses`);
        for (const status of statuses) {
          assert.match(status, /^[1-5]\d\d$/, `${where}: status ${status}`);
          const response = follow(document, `${where}/responses/${status}`);
          assert.equal(typeof (at(document, response) as Json).description, 'string', `${response} has a description`);
          // Every API answer is JSON: a listed response without a JSON schema would go unchecked.
          schemas.at(`${response}/content/application~1json/schema`);
        }
        const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]);
        const parameters = ((operation.parameters as Json[] | undefined) ?? []).map((parameter, index) => at(document, follow(document, `${where}/parameters/${index}`)) as Json);
        for (const name of templated) {
          assert.ok(parameters.some((parameter) => parameter.name === name && parameter.in === 'path' && parameter.required === true), `${where}: path parameter ${name}`);
        }
        parameters.forEach((_parameter, index) => schemas.at(`${follow(document, `${where}/parameters/${index}`)}/schema`));
        if (operation.requestBody !== undefined) schemas.requestBody(path, method);
      }
    }
    for (const requirement of requirements) {
      for (const name of Object.keys(requirement)) assert.ok(Object.hasOwn(schemes, name), `security scheme ${name} is defined`);
    }
    for (const name of Object.keys((document.components as Json).schemas as Json)) schemas.at(`/components/schemas/${name}`);
    for (const name of Object.keys((document.components as Json).headers as Json)) schemas.at(`/components/headers/${name}/schema`);
  });

  void test('the channel name schema accepts exactly the names the server accepts', () => {
    const validate = schemas.at('/components/schemas/ChannelName');
    const names = ['a', CHANNEL, 'a:b@c=d-e_f.G9', 'x'.repeat(128), 'x'.repeat(129), '', '.a', 'a.', 'a..b', 'a b', 'a/b', 'é', 'a.b.'];
    for (const name of names) assert.equal(validate(name), channelNameProblem(name) === null, `channel name ${JSON.stringify(name)}`);
  });

  void test('every endpoint\'s 200 answer validates, with members of every user id type', async () => {
    const answers = new Map<string, unknown>();
    for (const operation of OPERATIONS) {
      if (operation.operation === '/api/disconnect') continue;
      answers.set(operation.operation, await check(server.httpUrl, operation, 200));
    }
    assert.deepEqual(answers.get('/api/publish'), { success: true, recipients_count: 3 });
    const stats = answers.get('/api/stats') as Json;
    assert.ok((stats.nodes as unknown[]).length > 0 && (stats.connections as number) >= 3, JSON.stringify(stats));
    assert.ok(((answers.get('/api/channels') as Json).channels as unknown[]).length >= 2);
    const members = (answers.get('/api/channels/{name}') as { members: Array<{ user_id: unknown }> }).members;
    assert.ok(members.some((member) => member.user_id === null), 'an anonymous member');
    assert.ok(members.some((member) => member.user_id === 'alice'), 'a member with a string user id');
    assert.ok(members.some((member) => member.user_id === 42 || member.user_id === '42'), 'a member with a numeric user id');

    const channelCall = (name: string): Call => ({ operation: '/api/channels/{name}', method: 'get', url: `/api/channels/${name}` });
    assert.equal(((await check(server.httpUrl, channelCall('nobody.here'), 200)) as Json).subscribers, 0);
    await check(server.httpUrl, channelCall(encodeURIComponent('a:b@c=d')), 200);
    const withRecipients = { channel: CHANNEL, message: { text: 'for alice' }, recipients: ['alice', 42] };
    assert.deepEqual(await check(server.httpUrl, { operation: '/api/publish', method: 'post', url: '/api/publish', body: withRecipients }, 200), { success: true, recipients_count: 2 });
    const kept = (await check(server.httpUrl, { operation: '/api/publish', method: 'post', url: '/api/publish', body: { channel: KEPT_CHANNEL, message: { text: 'kept' } } }, 200)) as Json;
    assert.equal(kept.offset, 1);
    const historyCall = (query: string): Call => ({ operation: '/api/channels/{name}/history', method: 'get', url: `/api/channels/${KEPT_CHANNEL}/history${query}` });
    const page = (await check(server.httpUrl, historyCall('?limit=5'), 200)) as { epoch: unknown; messages: Json[] };
    assert.deepEqual(page.messages.map((message) => message.message), [{ text: 'kept' }]);
    assert.equal(page.epoch, kept.epoch);
    assert.deepEqual(((await check(server.httpUrl, historyCall('?since=1'), 200)) as { messages: unknown[] }).messages, []);

    const victim = await connect('bob');
    const stranger = await connect();
    const disconnect = (body: unknown): Call => ({ operation: '/api/disconnect', method: 'post', url: '/api/disconnect', body });
    for (const [body, disconnected] of [
      [{ user_id: 'nobody' }, 0],
      [{ user_id: 'bob' }, 1],
      [{ connection_id: stranger.welcome.connection_id }, 1],
    ] as const) {
      assert.ok(schemas.requestBody('/api/disconnect', 'post')(body), `the request schema accepts ${JSON.stringify(body)}`);
      assert.deepEqual(await check(server.httpUrl, disconnect(body), 200), { success: true, disconnected });
    }
    await Promise.all([victim.closed, stranger.closed]);
    for (const { operation, method, body } of OPERATIONS) {
      if (body !== undefined) assert.ok(schemas.requestBody(operation, method)(body), `the request schema accepts ${JSON.stringify(body)}`);
    }
    assert.ok(schemas.requestBody('/api/publish', 'post')(withRecipients));
  });

  void test('400s validate, and the request schema refuses each body the server refuses', async () => {
    const publish = (body: unknown): Call => ({ operation: '/api/publish', method: 'post', url: '/api/publish', body });
    const disconnect = (body: unknown): Call => ({ operation: '/api/disconnect', method: 'post', url: '/api/disconnect', body });
    const refusedObjects = [
      publish([]),
      publish('"a string"'),
      publish({ channel: CHANNEL }),
      publish({ message: 'no channel' }),
      publish({ channel: CHANNEL, message: null }),
      publish({ channel: 'bad channel', message: 'x' }),
      publish({ channel: CHANNEL, message: 'x', extra: 1 }),
      publish({ channel: CHANNEL, message: 'x', recipients: 'alice' }),
      publish({ channel: CHANNEL, message: 'x', recipients: [null] }),
      publish({ channel: CHANNEL, message: 'x', recipients: Array.from({ length: 1001 }, (_, index) => index) }),
      disconnect({}),
      disconnect(null),
      disconnect({ user_id: '' }),
      disconnect({ user_id: null }),
      disconnect({ user_id: true }),
      disconnect({ connection_id: 7 }),
      disconnect({ user_id: 'a', connection_id: 'b' }),
      disconnect({ name: 'a' }),
    ];
    for (const call of refusedObjects) {
      await check(server.httpUrl, call, 400);
      const body = typeof call.body === 'string' ? (JSON.parse(call.body) as unknown) : call.body;
      assert.equal(schemas.requestBody(call.operation, call.method)(body), false, `the request schema refuses ${JSON.stringify(body)}`);
    }
    // Bodies that are not JSON at all, or too large, have no schema to break.
    for (const body of ['{"channel":', '', ' ', JSON.stringify({ channel: CHANNEL, message: 'x'.repeat(MAX_PAYLOAD) })]) {
      await check(server.httpUrl, publish(body), 400);
      await check(server.httpUrl, disconnect(body), 400);
    }
    for (const name of ['bad%20name', 'a..b', '%E0%A4%A', 'a%2Fb', '']) {
      await check(server.httpUrl, { operation: '/api/channels/{name}', method: 'get', url: `/api/channels/${name}` }, 400);
    }
    const history = (path: string): Call => ({ operation: '/api/channels/{name}/history', method: 'get', url: `/api/channels/${path}` });
    for (const path of [`${KEPT_CHANNEL}/history?since=-1`, `${KEPT_CHANNEL}/history?since=x`, `${KEPT_CHANNEL}/history?limit=0`, `${KEPT_CHANNEL}/history?limit=1001`, 'a..b/history']) {
      await check(server.httpUrl, history(path), 400);
    }
    // A channel without history: 404, with the API on.
    await check(server.httpUrl, history(`${CHANNEL}/history`), 404);
  });

  void test('401s validate: no key, a wrong key, another scheme', async () => {
    for (const { operation, method, url, body } of OPERATIONS) {
      for (const key of [null, 'wrong-key']) await check(server.httpUrl, { operation, method, url, body, key }, 401);
      const answer = await request(`${server.httpUrl}${url}`, { method: method.toUpperCase(), headers: { Authorization: `Basic ${KEY}` } });
      assert.equal(answer.status, 401);
      validateAnswer(answer, schemas.response(operation, method, '401'), `${method} ${url} with Basic`, `${method.toUpperCase()} ${operation} 401`);
    }
  });

  void test('405s validate: each path with another method', async () => {
    for (const { operation, method, url } of OPERATIONS) {
      for (const send of method === 'get' ? ['POST', 'DELETE', 'PUT'] : ['GET', 'PUT', 'PATCH']) {
        // node:http sends no Content-Length for a DELETE body, so only PUT and PATCH carry one.
        await check(server.httpUrl, { operation, method, url, send, body: send === 'PUT' || send === 'PATCH' ? {} : undefined }, 405);
      }
    }
  });

  void test('404s validate: an unknown /api path, and every path while the API is off (no WS_API_KEY)', async (t) => {
    for (const url of ['/api', '/api/', '/api/nothing', '/api/openapi.yaml', '/api/stats/1']) {
      const answer = await apiRequest(`${server.httpUrl}${url}`, KEY, 'GET');
      assert.equal(answer.status, 404, url);
      validateAnswer(answer, follow(document, '/components/responses/NotFound'), `GET ${url}`, 'unknown path 404');
    }
    const off = await startServer({ auth: { secret: SECRET } });
    t.after(() => off.close());
    for (const operation of OPERATIONS) {
      for (const key of [KEY, null]) await check(off.httpUrl, { ...operation, key }, 404);
    }
  });

  void test('503s validate: every path while the server shuts down', async (t) => {
    const handler = new WebSocketHandler({ apiKey: KEY, shutdownTimeout: 1, logger: pino({ level: 'silent' }) });
    const listener = createRequestListener(handler);
    const closing: Server = createHttpServer((incoming, response) => listener(incoming, response));
    closing.listen(0, '127.0.0.1');
    await once(closing, 'listening');
    t.after(() => new Promise<void>((resolve) => closing.close(() => resolve())));
    await handler.close();
    const base = `http://127.0.0.1:${(closing.address() as AddressInfo).port}`;
    for (const operation of OPERATIONS) await check(base, operation, 503);
  });

  void test('every status the document lists was answered and validated (500 aside)', () => {
    const missing: string[] = [];
    for (const [path, item] of Object.entries(document.paths as Record<string, Json>)) {
      for (const method of METHODS.filter((candidate) => item[candidate] !== undefined)) {
        for (const status of Object.keys((item[method] as Json).responses as Json)) {
          const label = `${method.toUpperCase()} ${path} ${status}`;
          if (!UNPROVOKED.has(status) && !seen.has(label)) missing.push(label);
        }
      }
    }
    assert.deepEqual(missing, []);
    assert.ok(seen.has('unknown path 404'));
  });
});
