/**
 * Switchboard's demo chat: one node:http server that serves a small chat page, hands out
 * development tokens, and carries the chat over Switchboard mounted at /ws.
 *
 *   npm run build && node examples/chat/server.mjs     # then open http://127.0.0.1:3000
 *
 * PORT (default 3000) and HOST (default 127.0.0.1) say where the page listens. The rest goes
 * through loadConfig(), so the usual environment works unchanged (TOKEN_SECRET, WS_API_KEY…;
 * REDIS_ENABLED=true, set on each of several of these, makes them one chat over one Redis).
 * What makes it a chat is in code: the channel rules below and the `edit` action.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { loadConfig, WebSocketHandler, createRequestListener, ConfigError, SwitchboardError, ErrorCode } from '../../dist/index.js';

const WEBSOCKET_PATH = '/ws';
const ROOM_PREFIX = 'chat.room.';
/** What the page may call itself: it becomes the token's user_id, so it stays channel-safe and short. */
const NAME = /^[A-Za-z0-9_-]{1,24}$/;
const MAX_TEXT_LENGTH = 2000;
const TOKEN_TTL = '15m';
/** The /token body is one short JSON object; anything longer is not ours. */
const MAX_TOKEN_BODY = 1024;

/**
 * Chat rooms: signed-in users read and write, with presence and the last 200 messages kept
 * a day. The last rule denies everything else explicitly (no rule would deny too, but this
 * way the intent is written down).
 */
const CHANNEL_RULES = [
  { pattern: 'chat.room.*', subscribe: ['authenticated'], publish: ['authenticated'], presence: true, history: { size: 200, ttl: 86400 } },
  { pattern: '**', subscribe: [], publish: [] },
];

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));
const STATIC_FILES = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/room.js': { file: 'room.js', type: 'text/javascript; charset=utf-8' },
  '/dom.js': { file: 'dom.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};
/** No inline script or style anywhere, so the page runs under a strict policy. 'self' covers same-origin ws:. */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * Starts the chat. `overrides` are Switchboard options in code (the strongest layer over
 * defaults, .env and the environment); tests pass `apiKey` to use POST /api/disconnect.
 * The page listens on PORT and HOST (not WS_PORT and WS_HOST: those are Switchboard's own
 * listener's, which the demo does not use). Resolves once listening, with the page's URL and close().
 */
export async function startChat({ port, host, ...overrides } = {}) {
  // Before anything slow: the token endpoint signs a token for whatever name it is given,
  // fine on a laptop, an open door anywhere else.
  if (process.env.NODE_ENV === 'production') {
    throw new Error('refusing to start with NODE_ENV=production: POST /token hands a token to anyone who asks (development only)');
  }
  const listenPort = port === undefined ? portFrom('PORT', process.env.PORT ?? '3000') : portFrom('port', port);
  const listenHost = host === undefined ? hostFrom('HOST', process.env.HOST ?? '127.0.0.1') : hostFrom('host', host);
  const options = { allowAnonymous: false, channels: { rules: CHANNEL_RULES }, ...overrides };
  // Is a TOKEN_SECRET set anywhere (.env, environment, overrides)? Asked with anonymous
  // connections allowed, because without a key the real options do not resolve at all.
  const { auth } = loadConfig({ options: { ...options, allowAnonymous: true } });
  // None: a fresh one per run. Tokens from an earlier run stop working, which a demo can afford.
  const secret = auth.secret ?? randomBytes(32).toString('base64url');
  const config = loadConfig({ options: { ...options, auth: { ...overrides.auth, secret } } });
  const signingKey = new TextEncoder().encode(config.auth.secret);

  const handler = new WebSocketHandler(config);
  handler.onMessage(checkChatMessage);
  handler.onAction('edit', editMessage, { requireAuth: true });

  const switchboard = createRequestListener(handler, { websocketPath: WEBSOCKET_PATH });
  const server = createServer((request, response) => {
    // Switchboard first (its /api reads its own bodies); what it does not claim is the chat's.
    switchboard(request, response, () => {
      serveChat(request, response, config, signingKey).catch((error) => {
        handler.logger.error({ err: error }, 'chat request failed');
        if (!response.headersSent) sendJson(response, 500, { error: 'internal error' });
        else response.destroy();
      });
    });
  });
  try {
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenPort, listenHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await handler.close();
    throw listenError(error, listenHost, listenPort);
  }
  // Attached (which starts the handler, and its Redis if any) once the port is ours: a port
  // in use is then the one thing said.
  handler.attach(server, { path: WEBSOCKET_PATH });
  const address = server.address();
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    // Switchboard first (clients get 1001, the upgrade listener comes off), then the HTTP server.
    close: async () => {
      await handler.close();
      const closed = new Promise((resolve) => server.close(() => resolve()));
      // Browsers keep idle HTTP connections open; they would hold close() up for minutes.
      server.closeAllConnections();
      await closed;
    },
  };
}

// ---- Switchboard hooks ------------------------------------------------------------------

/**
 * Clients may send only the page's two kinds of message: text (kept) and typing (ephemeral).
 * Everything else is refused, so that nobody can publish an `edit` themselves: edits come
 * from the server (sender null), after the checks of editMessage.
 */
function checkChatMessage(_connection, { message }) {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return 'a chat message is an object';
  if (message.type === 'typing') return Object.keys(message).length === 1 || 'a typing message has no other fields';
  if (message.type === 'text') {
    if (Object.keys(message).length !== 2) return 'a text message is { type, text }';
    return isChatText(message.text) || `text must be 1 to ${MAX_TEXT_LENGTH} characters`;
  }
  return "type must be 'text' or 'typing'";
}

/** The custom action `edit` { channel, offset, text }: replaces the text of one's own message, for everyone. */
async function editMessage({ connection, handler }, data) {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new SwitchboardError(ErrorCode.INVALID_MESSAGE, 'data must be { channel, offset, text }');
  const { channel, offset, text } = data;
  if (Object.keys(data).some((key) => key !== 'channel' && key !== 'offset' && key !== 'text')) {
    throw new SwitchboardError(ErrorCode.INVALID_MESSAGE, 'data takes only channel, offset and text');
  }
  if (!isRoom(channel)) throw new SwitchboardError(ErrorCode.INVALID_CHANNEL, `channel must be a chat room (${ROOM_PREFIX}<name>)`);
  if (!Number.isSafeInteger(offset) || offset < 1) throw new SwitchboardError(ErrorCode.INVALID_MESSAGE, 'offset must be a positive integer');
  if (!isChatText(text)) throw new SwitchboardError(ErrorCode.INVALID_MESSAGE, `text must be 1 to ${MAX_TEXT_LENGTH} characters`);
  // Subscribed, as for sending: the room's rules were checked then, and the editor sees the result.
  if (!connection.channels.has(channel)) throw new SwitchboardError(ErrorCode.NOT_SUBSCRIBED, 'Not subscribed to channel');

  const page = await handler.history(channel, { since: offset - 1, limit: 1 });
  const stored = page.messages[0];
  // A missing offset yields the next message instead, hence the offset check.
  if (stored === undefined || stored.offset !== offset) throw new SwitchboardError(ErrorCode.INVALID_MESSAGE, `no message at offset ${offset} (or no longer in the history)`);
  const original = JSON.parse(stored.frame);
  // Ids are compared as strings, as `recipients` does: the token's user_id keeps its JSON type.
  if (original.user_id === null || String(original.user_id) !== String(connection.userId)) {
    throw new SwitchboardError(ErrorCode.FORBIDDEN, 'only your own messages can be edited');
  }
  if (original.message?.type !== 'text') throw new SwitchboardError(ErrorCode.INVALID_MESSAGE, 'only text messages can be edited');

  // Kept in the history like any message, so a page loading the room later sees the edit too.
  await handler.publish(channel, { type: 'edit', offset, text, user: connection.userId });
  return { edited: offset };
}

// ---- settings ----------------------------------------------------------------------------

/** Checks a port as Switchboard checks WS_PORT: an integer from 0 (any free one) to 65535. */
function portFrom(name, value) {
  const number = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 0 || number > 65535) {
    throw new ConfigError(`${name}: ${shown(value)} is not an integer between 0 and 65535`);
  }
  return number;
}

function hostFrom(name, value) {
  if (typeof value !== 'string' || value.trim() === '') throw new ConfigError(`${name}: ${shown(value)} is not a non-empty string`);
  return value.trim();
}

/** A value quoted for a one-line message, control characters escaped. */
function shown(value) {
  if (typeof value !== 'string') return JSON.stringify(value) ?? String(value);
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
  return `'${value.replace(/[\u0000-\u001f\u007f]/g, (char) => JSON.stringify(char).slice(1, -1))}'`;
}

/** Why the page cannot listen, in one line that says what to change. */
function listenError(error, host, port) {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const reasons = {
    EADDRINUSE: 'the port is already in use (set PORT to another one)',
    EACCES: 'permission denied (ports below 1024 need privileges; set PORT to another one)',
    EADDRNOTAVAIL: 'no such address on this machine (check HOST)',
    ENOTFOUND: 'no such address on this machine (check HOST)',
  };
  return Object.assign(new Error(`cannot listen on ${where}: ${reasons[error.code] ?? error.message}`, { cause: error }), { code: error.code });
}

function isRoom(channel) {
  return typeof channel === 'string' && channel.startsWith(ROOM_PREFIX) && /^[A-Za-z0-9_-]+$/.test(channel.slice(ROOM_PREFIX.length));
}

function isChatText(text) {
  return typeof text === 'string' && text.trim() !== '' && text.length <= MAX_TEXT_LENGTH;
}

// ---- the chat's own HTTP routes ---------------------------------------------------------

async function serveChat(request, response, config, signingKey) {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  const page = STATIC_FILES[path];
  if (page !== undefined && (request.method === 'GET' || request.method === 'HEAD')) {
    const body = await readFile(PUBLIC_DIR + page.file);
    response.writeHead(200, {
      'Content-Type': page.type,
      'Content-Length': body.length,
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': CONTENT_SECURITY_POLICY,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
    response.end(request.method === 'HEAD' ? undefined : body);
    return;
  }
  if (path === '/token') {
    if (request.method !== 'POST') {
      sendJson(response, 405, { error: 'POST a JSON body { "name": "..." }' }, { Allow: 'POST' });
      return;
    }
    await issueToken(request, response, config, signingKey);
    return;
  }
  sendJson(response, 404, { error: 'not found' });
}

/**
 * DEVELOPMENT ONLY: signs a token for any name it is asked for, with no password. A real
 * application issues tokens from its own login instead (see README "Authentication");
 * startChat() refuses to run with NODE_ENV=production because of this endpoint.
 */
async function issueToken(request, response, config, signingKey) {
  const body = await readBody(request, MAX_TOKEN_BODY);
  if (body === null) {
    sendJson(response, 413, { error: 'body too large' });
    return;
  }
  let name;
  try {
    name = JSON.parse(body).name;
  } catch {
    sendJson(response, 400, { error: 'the body must be JSON { "name": "..." }' });
    return;
  }
  if (typeof name !== 'string' || !NAME.test(name)) {
    sendJson(response, 400, { error: 'name: 1 to 24 characters of A-Z a-z 0-9 _ -' });
    return;
  }
  let jwt = new SignJWT({ user_id: name, role: 'user' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(TOKEN_TTL);
  // When the server requires an issuer or audience, tokens from here must carry them to be accepted.
  if (config.auth.issuer !== null) jwt = jwt.setIssuer(config.auth.issuer);
  if (config.auth.audience !== null) jwt = jwt.setAudience(config.auth.audience);
  sendJson(response, 200, { token: await jwt.sign(signingKey) }, { 'Cache-Control': 'no-store' });
}

/**
 * The request body as text, or null when it is longer than `limit` bytes. The rest of a
 * long body is read and dropped rather than cut off, so that the answer still reaches the client.
 */
async function readBody(request, limit) {
  const chunks = [];
  let size = 0;
  for await (const chunk of request) {
    size += chunk.length;
    if (size <= limit) chunks.push(chunk);
  }
  return size > limit ? null : Buffer.concat(chunks).toString('utf8');
}

function sendJson(response, status, body, headers = {}) {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

// ---- run directly -----------------------------------------------------------------------

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const chat = await startChat().catch((error) => {
    // One line, not a stack trace: the reason is the message (production, a port in use, a bad setting).
    process.stderr.write(`chat demo: ${String(error?.message ?? error).replace(/\s*\n\s*/g, ' ')}\n`);
    process.exit(error.name === 'ConfigError' ? 2 : 1);
  });
  // eslint-disable-next-line no-console -- the one line telling where the demo is
  console.log(`chat demo on ${chat.url}`);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      chat.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
