// The features scenario of `npm run bench` (run.mjs): Switchboard's 1,000-subscriber fan-out
// plain, and with every feature on at once: subscribers and publisher signed in with HS256
// tokens (anonymous connections refused), a channels file of 200 rules whose last one
// matches the bench channel and turns on presence and history there, and Prometheus'
// /metrics scraped every second. `rounds` runs of each, interleaved; the medians side by
// side, what the sampled connections saw (subscribe replies with a history position, offsets
// in sequence, presence events) and what the scrapes counted, and the table that reports it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { format } from './lib/format.mjs';
import { median } from './lib/median.mjs';
import { CHANNEL } from './lib/settings.mjs';

/** 1 connection in this many decodes its deliveries and keeps its subscribe reply, in both modes. */
const SAMPLE_EVERY = 100;
/** The goal for deliveries/s with every feature on ÷ plain. */
const FEATURES_GOAL = 0.9;
const RULE_COUNT = 200;
const HISTORY = { size: 100, ttl: 3600 };
const SCRAPE_EVERY_MS = 1000;

/**
 * 199 rules for other channels, in the shapes a real file has (none matches the one-segment
 * bench channel), then the bench channel's: the last, so that every check walks them all.
 */
export function channelRules(channel = CHANNEL) {
  const shapes = [
    (i) => ({ pattern: `team${i}.*`, subscribe: ['authenticated'], publish: ['admin'] }),
    (i) => ({ pattern: `user.{user_id}.inbox${i}`, subscribe: ['authenticated'], publish: ['authenticated'] }),
    (i) => ({ pattern: `room${i}.**`, subscribe: ['*'], publish: ['user', 'admin'], presence: true }),
    (i) => ({ pattern: `feed.${i}.*`, subscribe: ['*'], publish: ['admin'], history: { size: 10, ttl: 60 } }),
    (i) => ({ pattern: `admin${i}.**`, subscribe: ['admin'], publish: ['admin'] }),
  ];
  const others = Array.from({ length: RULE_COUNT - 1 }, (_, index) => shapes[index % shapes.length](index));
  return { rules: [...others, { pattern: channel, subscribe: ['authenticated'], publish: ['user'], presence: true, history: HISTORY }] };
}

/** GET /metrics once, on a connection of its own: the text, or null when it failed. */
function scrapeOnce(port) {
  return new Promise((resolve) => {
    const request = get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (text += chunk));
      response.on('end', () => resolve(response.statusCode === 200 ? text : null));
      response.on('error', () => resolve(null));
    });
    request.on('error', () => resolve(null));
  });
}

/**
 * Scrapes /metrics at once and then every second until stop(); each scrape must carry
 * switchboard_deliveries_total. (That counter also counts presence events, join and leave
 * alike, so with presence on it ends well above the clients' count of messages.)
 */
function scrapeEverySecond(port) {
  const tally = { scrapes: 0, failures: 0, deliveriesTotal: NaN };
  const scrape = async () => {
    const text = await scrapeOnce(port);
    const match = text === null ? null : /^switchboard_deliveries_total (\S+)$/m.exec(text);
    if (match === null) tally.failures++;
    else {
      tally.scrapes++;
      tally.deliveriesTotal = Number(match[1]);
    }
  };
  const pending = [scrape()];
  const timer = setInterval(() => pending.push(scrape()), SCRAPE_EVERY_MS);
  let stopped = null;
  return {
    /** The first scrape: prom-client's registry (and its own loop monitor) is made then, before the burst. */
    first: pending[0],
    /** Stops, scrapes a last time and resolves with the tally (the same on every call). */
    stop() {
      if (stopped === null) {
        clearInterval(timer);
        pending.push(scrape());
        stopped = Promise.all(pending).then(() => tally);
      }
      return stopped;
    },
  };
}

/** The server's environment with every feature on. */
const featureEnv = (rulesFile) => ({ WS_CHANNELS_FILE: rulesFile, WS_ALLOW_ANONYMOUS: 'false' });

/** One burst on a fresh Switchboard, plain or with every feature on. */
async function oneRun(on, { subscribers, messages }, { startServer, burst }, rulesFile) {
  const server = await startServer('switchboard', on ? featureEnv(rulesFile) : {});
  const scraper = on ? scrapeEverySecond(server.port) : null;
  try {
    await scraper?.first;
    const run = await burst({ publishTo: server, subscribeTo: server, pids: [server.pid], servers: [server], subscribers, messages, sampleEvery: SAMPLE_EVERY, authenticated: on });
    return {
      deliveriesPerSecond: run.deliveries / run.seconds,
      complete: run.deliveries >= run.expected,
      cpuMicrosPerDelivery: (run.cpu[0] * 1e6) / Math.max(1, run.deliveries),
      loopMaxMs: run.loopMaxMs[0],
      deliveries: run.deliveries,
      sampled: run.sampled,
      ...(scraper !== null && { metrics: await scraper.stop() }),
    };
  } finally {
    await scraper?.stop();
    await server.stop();
  }
}

/** What is wrong with what one run's sampled connections and scrapes saw (none: []). */
function problems(on, run, { subscribers, messages }) {
  const found = [];
  const { decoded, withOffset, outOfSequence, subscribeReplies, repliesWithPosition, presenceEvents } = run.sampled;
  const expected = Math.ceil(subscribers / SAMPLE_EVERY) * messages;
  if (subscribeReplies === 0) found.push('no subscribe reply sampled');
  if (run.complete && decoded !== expected) found.push(`${decoded} of ${expected} sampled deliveries decoded`);
  if (on) {
    if (repliesWithPosition !== subscribeReplies) found.push(`${subscribeReplies - repliesWithPosition} of ${subscribeReplies} subscribe replies without epoch and offset`);
    if (withOffset !== decoded) found.push(`${decoded - withOffset} of ${decoded} sampled deliveries without an offset`);
    if (outOfSequence > 0) found.push(`${outOfSequence} offsets out of sequence`);
    if (presenceEvents === 0) found.push('no presence event heard');
    if (run.metrics.failures > 0) found.push(`${run.metrics.failures} failed scrapes`);
    if (!(run.metrics.deliveriesTotal >= run.deliveries)) found.push(`/metrics counted ${run.metrics.deliveriesTotal} deliveries, the clients ${run.deliveries}`);
  } else if (repliesWithPosition + withOffset + presenceEvents > 0) found.push('history or presence on in the plain run');
  return found;
}

function summarize(on, runs, plan) {
  const found = runs.flatMap((run) => problems(on, run, plan));
  const sum = (key) => runs.reduce((total, run) => total + run.sampled[key], 0);
  return {
    deliveriesPerSecond: median(runs.map((run) => run.deliveriesPerSecond)),
    complete: runs.every((run) => run.complete),
    cpuMicrosPerDelivery: median(runs.map((run) => run.cpuMicrosPerDelivery)),
    loopMaxMs: Math.max(...runs.map((run) => run.loopMaxMs)),
    checked: { subscribeReplies: sum('subscribeReplies'), repliesWithPosition: sum('repliesWithPosition'), decoded: sum('decoded'), withOffset: sum('withOffset'), presenceEvents: sum('presenceEvents'), scrapes: runs.reduce((total, run) => total + (run.metrics?.scrapes ?? 0), 0) },
    checksPassed: found.length === 0,
    ...(found.length > 0 && { problems: found }),
    runs,
  };
}

/**
 * The scenario: `startServer` and `burst` as in lib/server-processes.mjs and lib/fanout-runs.mjs.
 * Plain and features-on runs alternate, the order swapped each round. A failed run ends the
 * scenario with its error instead of the bench. Progress goes to stderr; the result is what
 * the JSON keeps and featuresTable() prints.
 */
export async function featuresScenario(plan, { startServer, burst }) {
  const directory = mkdtempSync(join(tmpdir(), 'bench-features-'));
  const rulesFile = join(directory, 'channels.json');
  writeFileSync(rulesFile, `${JSON.stringify(channelRules(), null, 1)}\n`);
  const result = { plan, rules: RULE_COUNT, env: Object.keys(featureEnv(rulesFile)), goal: FEATURES_GOAL };
  const runs = { off: [], on: [] };
  process.stderr.write('switchboard, fan-out plain / with every feature on: ');
  try {
    for (let round = 0; round < plan.rounds; round++) {
      for (const mode of round % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
        runs[mode].push(await oneRun(mode === 'on', plan, { startServer, burst }, rulesFile));
        process.stderr.write('.');
      }
    }
  } catch (error) {
    result.error = String(error?.message ?? error);
    process.stderr.write(` failed: ${result.error}\n`);
    return result;
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  result.off = summarize(false, runs.off, plan);
  result.on = summarize(true, runs.on, plan);
  result.ratio = result.on.deliveriesPerSecond / result.off.deliveriesPerSecond;
  process.stderr.write(' done\n');
  return result;
}

/** The Markdown table of a featuresScenario() result. */
export function featuresTable(result) {
  const { subscribers, rounds } = result.plan;
  const title =
    `| Switchboard fan-out with every feature on (JWT, ${RULE_COUNT} channel rules, presence, history, /metrics scraped every second), ` +
    `${subscribers.toLocaleString('en-US')} subscribers, median of ${rounds} runs each | plain | every feature on | on ÷ off |\n|---|---|---|---|\n`;
  if (result.error !== undefined) return `${title}| fan-out deliveries/s | failed: ${result.error} | | |`;
  const { off, on, ratio } = result;
  const notes = (side) => `${side.complete ? '' : ' (incomplete)'}${side.checksPassed ? '' : ' (checks failed!)'}`;
  const met = Number.isFinite(ratio) ? (ratio >= FEATURES_GOAL ? ', met' : ', missed') : '';
  const seen = ({ checked: c }) => `${c.repliesWithPosition}/${c.subscribeReplies} replies with a position, ${c.withOffset}/${c.decoded} deliveries with an offset, ${c.presenceEvents} presence events, ${c.scrapes} scrapes`;
  return (
    title +
    `| fan-out deliveries/s (higher is better) | ${format(off.deliveriesPerSecond)}${notes(off)} | ${format(on.deliveriesPerSecond)}${notes(on)} | ${format(ratio * 100, 1)}% (goal ≥ ${format(FEATURES_GOAL * 100)}%${met}) |\n` +
    `| server CPU µs per delivery (lower is better) | ${format(off.cpuMicrosPerDelivery, 2)} | ${format(on.cpuMicrosPerDelivery, 2)} | ${format(on.cpuMicrosPerDelivery / off.cpuMicrosPerDelivery, 2)}× |\n` +
    `| event loop max ms, worst run (target ≤ 50) | ${format(off.loopMaxMs, 1)} | ${format(on.loopMaxMs, 1)} | ${format(on.loopMaxMs / off.loopMaxMs, 2)}× |\n` +
    `| sampled connections saw | ${seen(off)} | ${seen(on)} | |`
  );
}
