// Takes the README's picture of GET /dashboard (docs/dashboard.png): starts the built server
// (dist/) with two workers and an API key, connects a few dozen clients to some channels,
// publishes at a varying rate while a headless Chromium watches the dashboard, opens one
// channel's members and saves the page as a PNG.
//
//   npm run build && node scripts/screenshot-dashboard.mjs [--seconds 300] [--out docs/dashboard.png]
//
// --seconds is how long the page watches before the picture (the chart spans 5 minutes).
// Needs Debian's chromium (apt-get install chromium), or CHROMIUM_PATH.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { chromium } from 'playwright-core';
import { WebSocket } from 'ws';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    out: { type: 'string', default: 'docs/dashboard.png' },
  },
});
const seconds = Number(args.seconds);
if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, not ${args.seconds}`);

const API_KEY = randomBytes(16).toString('hex');
const TOKEN_SECRET = randomBytes(32).toString('hex');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Channel → subscribers: anonymous ones, and users with a token. */
const AUDIENCE = {
  'chat.room.1': { users: ['alice', 'bob', 'carol', 'dave', '42'], anonymous: 3 },
  'chat.room.2': { users: ['erin', 'frank'], anonymous: 2 },
  'news.europe': { users: [], anonymous: 18 },
  'orders.eu-west': { users: ['backoffice'], anonymous: 0 },
  'presence.lobby': { users: ['alice', 'bob'], anonymous: 6 },
  'user@42.notifications': { users: ['42'], anonymous: 0 },
};

/** Messages per second published to a channel, `t` seconds into the run: a busy chat, a bursty news feed. */
const RATES = {
  'chat.room.1': (t) => 25 + 18 * Math.sin((2 * Math.PI * t) / 90),
  'news.europe': (t) => (Math.floor(t / 40) % 2 === 0 ? 2 : 9),
  'orders.eu-west': (t) => 4 + 3 * Math.sin((2 * Math.PI * t) / 37),
};

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function waitForHealth(url, child) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`the server did not answer ${url}/healthz`);
    await sleep(100);
  }
}

function sign(userId) {
  return new SignJWT({ user_id: userId }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('2h').sign(new TextEncoder().encode(TOKEN_SECRET));
}

/** A client subscribed to `channels`; resolves once every subscribe is acknowledged. */
async function connect(url, channels, userId) {
  const headers = userId === undefined ? {} : { Authorization: `Bearer ${await sign(userId)}` };
  const socket = new WebSocket(url, { headers });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  let acks = 0;
  const subscribed = new Promise((resolve) => {
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.action === 'subscribe' && ++acks === channels.length) resolve();
    });
  });
  for (const channel of channels) socket.send(JSON.stringify({ action: 'subscribe', data: { channel } }));
  await subscribed;
  return socket;
}

const port = await freePort();
const httpUrl = `http://127.0.0.1:${port}`;
const server = spawn(process.execPath, ['--', 'dist/cli/main.js', 'start', '--workers', '2'], {
  env: {
    ...process.env,
    WS_HOST: '127.0.0.1',
    WS_PORT: String(port),
    WS_API_KEY: API_KEY,
    TOKEN_SECRET,
    WS_MAX_MESSAGES_PER_MINUTE: '0',
    WS_LOG_LEVEL: 'warn',
    REDIS_ENABLED: 'false',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const stopped = new Promise((resolve) => server.once('exit', resolve));
let browser = null;
const sockets = [];
let publisher = null;

try {
  await waitForHealth(httpUrl, server);
  const wsUrl = `ws://127.0.0.1:${port}/`;

  // Users join every channel listed for them, on one connection each.
  const channelsOfUser = new Map();
  for (const [channel, { users }] of Object.entries(AUDIENCE)) {
    for (const user of users) channelsOfUser.set(user, [...(channelsOfUser.get(user) ?? []), channel]);
  }
  for (const [user, channels] of channelsOfUser) sockets.push(await connect(wsUrl, channels, user));
  for (const [channel, { anonymous }] of Object.entries(AUDIENCE)) {
    for (let index = 0; index < anonymous; index++) sockets.push(await connect(wsUrl, [channel]));
  }
  // One publishing connection per busy channel (a publisher must be subscribed).
  const publishers = new Map();
  for (const channel of Object.keys(RATES)) publishers.set(channel, await connect(wsUrl, [channel]));
  sockets.push(...publishers.values());

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
  await page.goto(`${httpUrl}/dashboard`);
  await page.fill('#api-key', API_KEY);
  await page.click('#key-form button[type="submit"]');
  await page.waitForSelector('#dashboard', { state: 'visible' });

  const started = Date.now();
  const owed = new Map(Object.keys(RATES).map((channel) => [channel, 0]));
  let sent = 0;
  publisher = setInterval(() => {
    const t = (Date.now() - started) / 1000;
    for (const [channel, rate] of Object.entries(RATES)) {
      let due = (owed.get(channel) ?? 0) + rate(t) / 10;
      for (; due >= 1; due--) {
        publishers.get(channel).send(JSON.stringify({ action: 'message', data: { channel, message: { text: `update ${++sent}` } } }));
      }
      owed.set(channel, due);
    }
  }, 100);

  console.log(`${sockets.length} connections; watching the dashboard for ${seconds} s…`);
  await sleep(seconds * 1000);
  await page.click('#channels-table tr[data-channel="chat.room.1"] button');
  await page.waitForSelector('#members-table tbody tr');
  await sleep(2500);
  mkdirSync(dirname(args.out), { recursive: true });
  await page.screenshot({ path: args.out, fullPage: true });
  console.log(`saved ${args.out} (${sent} messages published)`);
} finally {
  if (publisher !== null) clearInterval(publisher);
  for (const socket of sockets) socket.close();
  await browser?.close();
  server.kill('SIGTERM');
  await stopped;
}
