// The built client (client/dist) with the runtime's own
// global WebSocket, no `ws`, in Bun, Deno and Node 22+ (or Node 20 with --experimental-websocket).
// A manual check for Bun and Deno; test/client/global-websocket.test.ts runs it in `npm test` under
// Node with --experimental-websocket (undici: the WebSocket of Node 22 and later).
//
// 1. Build (`npm run build`) and start a server with history, presence, the HTTP API and tokens:
//      WS_PORT=9601 WS_HISTORY_SIZE=100 WS_PRESENCE=true WS_API_KEY=<32+ chars> \
//      TOKEN_SECRET=<32+ chars> node dist/cli/main.js start
// 2. Run this file with the same key, in each runtime:
//      export SWITCHBOARD_URL=ws://127.0.0.1:9601/ SWITCHBOARD_API_KEY=<the WS_API_KEY>
//      bun test/runtimes/client-runtimes.mjs
//      deno run --allow-net --allow-read --allow-env test/runtimes/client-runtimes.mjs
//      node --experimental-websocket test/runtimes/client-runtimes.mjs   (Node 20.10+; plain `node` on 22+)
//    SWITCHBOARD_CLIENT picks the client module: a path or URL; `served` = the server's /client.js
//    (Deno: add --allow-import=127.0.0.1:9601); default client/dist/switchboard-client.min.js.
//    Also: SWITCHBOARD_CHANNEL (default chat.room.1).
// It prints one line per check and exits 1 if any failed. Anonymous connections must be allowed.
/* eslint-disable no-console */
/* global Deno, Bun */
function env(name) {
  try {
    return typeof Deno !== 'undefined' ? Deno.env.get(name) : globalThis.process.env[name];
  } catch {
    return undefined; // Deno without --allow-env
  }
}
const exit = (code) => (typeof Deno !== 'undefined' ? Deno.exit(code) : globalThis.process.exit(code));
const runtime =
  typeof Deno !== 'undefined' ? `deno ${Deno.version.deno}` : typeof Bun !== 'undefined' ? `bun ${Bun.version}` : `node ${globalThis.process.version}`;
const url = env('SWITCHBOARD_URL') ?? 'ws://127.0.0.1:9601/';
const httpUrl = url.replace(/^ws/, 'http');
const apiKey = env('SWITCHBOARD_API_KEY');
const channel = env('SWITCHBOARD_CHANNEL') ?? 'chat.room.1';
const which = env('SWITCHBOARD_CLIENT') ?? new URL('../../client/dist/switchboard-client.min.js', import.meta.url).href;
const source = which === 'served' ? new URL('client.js', httpUrl).href : /^[a-z]+:/.test(which) ? which : new URL(which, `file://${cwd()}/`).href;
function cwd() {
  return typeof Deno !== 'undefined' ? Deno.cwd() : globalThis.process.cwd();
}

let failures = 0;
function check(name, ok, detail = '') {
  if (!ok) failures++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` -- ${detail}` : ''}`);
}
const show = (value) => JSON.stringify(value);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** Resolves when `test()` holds (polled), rejects after `ms`. */
async function until(what, test, ms = 5000) {
  for (const end = Date.now() + ms; !test(); await sleep(20)) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

console.log(`${runtime}; WebSocket: ${typeof globalThis.WebSocket}; client: ${source}; server: ${url}`);
if (typeof globalThis.WebSocket !== 'function') {
  check('global WebSocket', false, 'none in this runtime (Node 20: run with --experimental-websocket)');
  exit(1);
}
/** Bun and Node do not import from http URLs: then the served file's text is imported as a data: URL. */
async function load(from) {
  try {
    return await import(from);
  } catch (error) {
    if (!/^https?:/.test(from)) throw error;
    console.log(`info import(${from}) failed (${String(error.message).split('\n')[0]}): importing its text as a data: URL`);
    const bytes = new Uint8Array(await (await fetch(from)).arrayBuffer()); // base64: Bun misreads a %-encoded one
    return import(`data:text/javascript;base64,${btoa(String.fromCharCode(...bytes))}`);
  }
}
const { Client } = await load(source);
check('import Client', typeof Client === 'function');

// The raw WebSocket's report of a refused handshake: what the client has to work with.
const fakeToken = [{ alg: 'HS256', typ: 'JWT' }, { sub: 'nobody', exp: Math.floor(Date.now() / 1000) + 3600 }]
  .map((part) => btoa(JSON.stringify(part)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'))
  .concat(btoa(String(Math.random())).replace(/=+$/, ''))
  .join('.');
await new Promise((resolve) => {
  const raw = new WebSocket(url, ['bearer', fakeToken]);
  const seen = [];
  raw.onerror = (event) => seen.push(`error ${show({ type: event.type, message: event.message, error: event.error?.message ?? event.error })}`);
  const done = (last) => {
    console.log(`info raw handshake with a bad token: ${[...seen, last].join('; ')}`);
    resolve();
  };
  raw.onclose = (event) => done(`close ${show({ code: event.code, reason: event.reason, wasClean: event.wasClean })}`);
  setTimeout(() => done(`no close event within 3 s (readyState ${raw.readyState})`), 3000);
});

const sockets = [];
function watch(client) {
  const log = { states: [], times: [], errors: [], disconnects: [] };
  const t0 = Date.now();
  client.on('state', (state) => (log.states.push(state), log.times.push(`${state}@${Date.now() - t0}ms`)));
  client.on('error', (error) => log.errors.push(error));
  client.on('disconnected', (event) => log.disconnects.push(event));
  sockets.push(client);
  return log;
}

try {
  // Connect, subscribe, publish and receive, presence, history.
  const a = new Client(url, { autoConnect: false });
  const aLog = watch(a);
  const room = a.subscribe(channel);
  a.connect();
  const received = [];
  const subscribed = [];
  room.on('message', (m) => received.push(m));
  room.on('subscribed', (ack) => subscribed.push(ack));
  const ready = await room.ready;
  check('ready', typeof ready.recovered === 'boolean' && ready.epoch !== undefined && typeof ready.offset === 'number', show(ready));
  check('connected', a.state === 'connected' && typeof a.connectionId === 'string', `${a.state} ${a.connectionId}`);
  const nonce = `${runtime} ${Math.random()}`;
  const published = await room.publish({ text: 'hello', nonce });
  check('publish result', typeof published.offset === 'number', show(published));
  await until('own message', () => received.some((m) => m.message?.nonce === nonce));
  const own = received.find((m) => m.message?.nonce === nonce);
  check('own message received with its offset', own.offset === published.offset && own.channel === channel, show(own));
  const presence = await room.presence();
  check('presence lists this connection', presence.members.some((m) => m.connection_id === a.connectionId), show(presence));
  const history = await room.history({ limit: 5 });
  const last = history.messages.at(-1);
  check('history ends with own message', last?.message?.nonce === nonce && last.offset === published.offset, show({ ...history, messages: history.messages.length, last }));

  // Cut a's connection while another client publishes: a reconnects and recovers them in order.
  const b = new Client(url);
  const bLog = watch(b);
  const bRoom = b.subscribe(channel);
  await bRoom.ready;
  if (!apiKey) throw new Error('SWITCHBOARD_API_KEY (the server\'s WS_API_KEY) is not set, or not readable (Deno: --allow-env)');
  const before = received.length;
  const cut = await fetch(new URL('api/disconnect', httpUrl), {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ connection_id: a.connectionId }),
  });
  check('POST /api/disconnect', cut.ok, `${cut.status} ${await cut.text()}`);
  await until('a disconnected', () => a.state !== 'connected');
  const missed = [1, 2, 3].map((i) => `${nonce} missed ${i}`);
  await Promise.all(missed.map((text) => bRoom.publish({ text }))); // one socket: sent, and so stored, in order
  const stateThen = a.state;
  await until('a reconnected and recovered', () => subscribed.length >= 2 && received.length >= before + 3);
  check('published while a was away', stateThen !== 'connected', `a was ${stateThen} after the 3 publishes`);
  check('states', show(aLog.states) === show(['connecting', 'connected', 'disconnected', 'connecting', 'connected']), aLog.times.join(' '));
  check('disconnected event', aLog.disconnects.length === 1, show(aLog.disconnects));
  check('subscribed again with recovered: true', subscribed[1]?.recovered === true, show(subscribed));
  const after = received.slice(before);
  const offsets = after.map((m) => m.offset);
  check(
    'missed messages recovered in order, once',
    show(after.map((m) => m.message.text)) === show(missed) && offsets.every((o, i) => i === 0 || o === offsets[i - 1] + 1),
    show(after.map((m) => [m.message.text, m.offset])),
  );
  check('no error events on a or b', aLog.errors.length + bLog.errors.length === 0, [...aLog.errors, ...bLog.errors].map(String).join('; '));

  // A refused token: asked twice, then closed with UNAUTHORIZED.
  let calls = 0;
  const c = new Client(url, { autoConnect: false, token: () => (calls++, fakeToken) });
  const cLog = watch(c);
  c.connect();
  await until('c closed', () => c.state === 'closed', 15_000).catch((error) => check('bad token closes', false, error.message));
  const codes = cLog.errors.map((e) => e.code);
  check('bad token: states connecting, closed', show(cLog.states) === show(['connecting', 'closed']), cLog.times.join(' '));
  check('bad token: one UNAUTHORIZED error', show(codes) === show(['UNAUTHORIZED']), cLog.errors.map((e) => `${e.code}: ${e.message}`).join('; '));
  check('bad token: token function called twice', calls === 2, `${calls} calls`);
  console.log(`info bad token: disconnected events ${show(cLog.disconnects)}`);

  // A server that is down: the failed connect is noticed at once and retried with backoff.
  const d = new Client(env('SWITCHBOARD_DEAD_URL') ?? 'ws://127.0.0.1:1/', { autoConnect: false, reconnect: { minDelay: 400, maxDelay: 400 } });
  const dLog = watch(d);
  d.connect();
  await sleep(1500);
  const retries = dLog.states.filter((state) => state === 'disconnected').length;
  check('server down: failed connects noticed and retried', retries >= 2, `${retries} in 1.5 s: ${dLog.times.join(' ')}`);
  console.log(`info server down: disconnected events ${show(dLog.disconnects.slice(0, 2))}; errors ${show(dLog.errors.map(String))}`);
} catch (error) {
  check('run', false, error?.stack ?? String(error));
} finally {
  for (const client of sockets) client.close();
}
console.log(failures === 0 ? `all checks passed (${runtime})` : `${failures} check(s) FAILED (${runtime})`);
await sleep(100);
exit(failures === 0 ? 0 : 1);
