/**
 * A client process of the soak (forked by fleet.ts): holds its share of the subscriber
 * connections, opens them at a bounded rate, churns them when told, and hands back what
 * every connection received. Connection i of the run subscribes to channel i mod channels;
 * this process owns the indices ≡ processIndex (mod processes), and a churned connection's
 * replacement takes the same channel, so the channels stay evenly subscribed.
 */
import { SoakConnection } from './connection.js';
import { emptyCounters } from './counters.js';
import type { ClientProcessConfig, ClientToMain, MainToClient } from './ipc.js';
import { tokenSigner } from './tokens.js';
import { monotonicMs, type StreamRecord } from './tracker.js';

/** Connections being opened at once, at most, whatever the rate. */
const MAX_OPENING = 100;
/** How often every connection is checked for a silent server. */
const SILENCE_CHECK_MS = 1000;

const config = JSON.parse(process.env.SOAK_CLIENT_CONFIG ?? '') as ClientProcessConfig;
const sign = tokenSigner(config.secret, config.tokenTtlSeconds);
const counters = emptyCounters();
const records: StreamRecord[] = [];
/** Every connection not yet closed, and the channel of each. */
const live = new Map<SoakConnection, number>();
let opened = 0;
/** Connections whose token is being signed (not yet in `live`). */
let signing = 0;
let fatal = false;
/** Set by `finish`: a churned connection whose close ends after it is not replaced. */
let finishing = false;

function send(message: ClientToMain): void {
  process.send?.(message);
}

function onFatal(message: string): void {
  if (fatal) return;
  fatal = true;
  send({ type: 'fatal', message });
}

/** Opens one connection on `channel`; resolves true once it is subscribed. */
async function connect(channel: number): Promise<boolean> {
  const user = `soak-${config.processIndex}-${opened++}`;
  signing++;
  const token = await sign(user).finally(() => signing--);
  if (finishing) return false;
  const connection = new SoakConnection(user, config.url, token, [channel], { counters, onFatal });
  live.set(connection, channel);
  void connection.closed.then((own) => {
    live.delete(connection);
    records.push(...own);
  });
  return connection.ready.then(
    () => true,
    () => false,
  );
}

/** Opens `count` connections, starting one every 1/rate s, with at most MAX_OPENING under way. */
async function openMany(count: number, rate: number): Promise<void> {
  const started = monotonicMs();
  const opening = new Set<Promise<boolean>>();
  let ok = 0;
  for (let index = 0; index < count && !fatal; index++) {
    const due = started + (index * 1000) / rate - monotonicMs();
    if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
    while (opening.size >= MAX_OPENING) await Promise.race(opening);
    const channel = (config.processIndex + index * config.processes) % config.channels;
    const attempt = connect(channel).then((subscribed) => {
      opening.delete(attempt);
      if (subscribed) ok++;
      return subscribed;
    });
    opening.add(attempt);
  }
  await Promise.all(opening);
  send({ type: 'opened', opened: ok, failed: count - ok });
}

/** Closes `count` held connections picked at random and opens a new one on each one's channel. */
function churn(count: number): void {
  const held = [...live.keys()].filter((connection) => connection.isOpen);
  for (let picked = 0; picked < count && held.length > 0; picked++) {
    const [connection] = held.splice(Math.floor(Math.random() * held.length), 1);
    if (connection === undefined) break;
    const channel = live.get(connection) ?? 0;
    void connection.close().then(() => {
      counters.churned++;
      if (!fatal && !finishing) void connect(channel);
    });
  }
}

/** Counts the connections being opened or closed now, and the oldest of each, into the counters. */
function snapshotTransitions(): void {
  const now = monotonicMs();
  Object.assign(counters, { opening: signing, oldestOpeningMs: 0, closing: 0, oldestClosingMs: 0 });
  for (const connection of live.keys()) {
    const transition = connection.transition;
    if (transition === null) continue;
    const age = Math.round(now - transition.since);
    if (transition.kind === 'opening') {
      counters.opening++;
      counters.oldestOpeningMs = Math.max(counters.oldestOpeningMs, age);
    } else {
      counters.closing++;
      counters.oldestClosingMs = Math.max(counters.oldestClosingMs, age);
    }
  }
}

async function finish(): Promise<void> {
  finishing = true;
  clearInterval(silenceTimer);
  await Promise.all([...live.keys()].map((connection) => connection.close(false)));
  send({ type: 'finished', counters, records });
}

let expectedCheck = monotonicMs() + SILENCE_CHECK_MS;
const silenceTimer = setInterval(() => {
  const now = monotonicMs();
  // A check that ran late says this process stalled, not that the server went quiet.
  const late = now - expectedCheck > SILENCE_CHECK_MS;
  expectedCheck = now + SILENCE_CHECK_MS;
  if (late) return;
  for (const connection of live.keys()) connection.checkSilence(now, 2 * config.heartbeatMs);
}, SILENCE_CHECK_MS);

process.on('message', (message: MainToClient) => {
  switch (message.type) {
    case 'open':
      void openMany(message.count, message.rate);
      break;
    case 'churn':
      churn(message.count);
      break;
    case 'progress':
      snapshotTransitions();
      send({ type: 'progress', counters });
      break;
    case 'finish':
      void finish();
      break;
  }
});
// The main process is gone (killed, or it failed): nothing left to report to.
process.on('disconnect', () => process.exit(0));
