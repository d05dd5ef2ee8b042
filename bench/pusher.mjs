// The Pusher scenario of `npm run bench` (run.mjs): Switchboard's 1,000-subscriber fan-out
// with its Pusher endpoint on (PUSHER_APP_ID, _KEY, _SECRET), once to native subscribers and
// once to Pusher-protocol subscribers (raw clients at /app/{key}?protocol=7 that subscribe with
// `pusher:subscribe` and count `message` events), the same native publisher, messages and
// server settings both times; `rounds` runs of each, interleaved, the medians side by side,
// whether the sampled connections decoded every message, and the table that reports it.
import { format } from './lib/format.mjs';
import { median } from './lib/median.mjs';
import { PUSHER_BENCH_APP } from './lib/raw-client.mjs';

/** The server's environment in both modes: the Pusher endpoint on, so that only the subscribers differ. */
const PUSHER_ENV = PUSHER_BENCH_APP;
/** 1 connection in this many decodes each of its deliveries (the Pusher ones: the event's JSON, then its data's). */
const SAMPLE_EVERY = 100;
/** The goal for deliveries/s to Pusher subscribers ÷ to native ones. */
const PUSHER_GOAL = 0.9;

/** The raw-client kind of the subscribers in each mode. */
const SUBSCRIBERS = { native: 'switchboard', pusher: 'pusher' };

/**
 * Whether the sampled connections decoded every message of a complete run: a string saying
 * what is wrong, or null. (A frame that does not decode ends the subscriber process, and the run.)
 */
function decodeProblem(run, { subscribers, messages }) {
  const expected = Math.ceil(subscribers / SAMPLE_EVERY) * messages;
  if (run.sampled === undefined || run.sampled.decoded === 0) return 'no delivery decoded';
  if (run.complete && run.sampled.decoded !== expected) return `${run.sampled.decoded} of ${expected} sampled deliveries decoded`;
  return null;
}

/** The median of each figure over the runs of one mode. */
function summarize(runs, plan) {
  const problems = runs.map((run) => decodeProblem(run, plan)).filter((problem) => problem !== null);
  return {
    deliveriesPerSecond: median(runs.map((run) => run.deliveriesPerSecond)),
    complete: runs.every((run) => run.complete),
    cpuMicrosPerDelivery: median(runs.map((run) => run.cpuMicrosPerDelivery)),
    /** The worst run's largest event-loop delay. */
    loopMaxMs: Math.max(...runs.map((run) => run.loopMaxMs)),
    deliveriesChecked: problems.length === 0,
    ...(problems.length > 0 && { decodeProblems: problems }),
    runs,
  };
}

/**
 * The scenario: `oneNode(plan, options)` measures one fan-out burst on a fresh Switchboard,
 * `options` being the server's extra environment, how often to sample a connection and the
 * subscribers' raw-client kind. Native and Pusher runs alternate, the order swapped each
 * round, so that neither mode always runs on a warmer machine. A failed run ends the scenario
 * with its error instead of the bench. Progress goes to stderr; the result is what the JSON
 * keeps and pusherTable() prints.
 */
export async function pusherScenario(plan, { oneNode }) {
  const { subscribers, messages, rounds } = plan;
  const result = { plan, env: Object.keys(PUSHER_ENV), goal: PUSHER_GOAL };
  const runs = { native: [], pusher: [] };
  process.stderr.write('switchboard, fan-out to native / Pusher subscribers: ');
  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of round % 2 === 0 ? ['native', 'pusher'] : ['pusher', 'native']) {
        runs[mode].push(await oneNode({ subscribers, messages }, { env: PUSHER_ENV, sampleEvery: SAMPLE_EVERY, subscriberKind: SUBSCRIBERS[mode] }));
        process.stderr.write('.');
      }
    }
  } catch (error) {
    result.error = String(error?.message ?? error);
    process.stderr.write(` failed: ${result.error}\n`);
    return result;
  }
  result.native = summarize(runs.native, plan);
  result.pusher = summarize(runs.pusher, plan);
  result.ratio = result.pusher.deliveriesPerSecond / result.native.deliveriesPerSecond;
  process.stderr.write(' done\n');
  return result;
}

/** The Markdown table of a pusherScenario() result. */
export function pusherTable(result) {
  const { subscribers, rounds } = result.plan;
  const title = `| Switchboard fan-out through the Pusher endpoint, ${subscribers.toLocaleString('en-US')} subscribers, median of ${rounds} runs each | native subscribers | Pusher subscribers | Pusher ÷ native |\n|---|---|---|---|\n`;
  if (result.error !== undefined) return `${title}| fan-out deliveries/s | failed: ${result.error} | | |`;
  const { native, pusher, ratio } = result;
  const notes = (side) => `${side.complete ? '' : ' (incomplete)'}${side.deliveriesChecked ? '' : ' (deliveries wrong!)'}`;
  const met = Number.isFinite(ratio) ? (ratio >= PUSHER_GOAL ? ', met' : ', missed') : '';
  return (
    title +
    `| fan-out deliveries/s (higher is better) | ${format(native.deliveriesPerSecond)}${notes(native)} | ${format(pusher.deliveriesPerSecond)}${notes(pusher)} | ${format(ratio * 100, 1)}% (goal ≥ ${format(PUSHER_GOAL * 100)}%${met}) |\n` +
    `| server CPU µs per delivery (lower is better) | ${format(native.cpuMicrosPerDelivery, 2)} | ${format(pusher.cpuMicrosPerDelivery, 2)} | ${format(pusher.cpuMicrosPerDelivery / native.cpuMicrosPerDelivery, 2)}× |\n` +
    `| event loop max ms, worst run (target ≤ 50) | ${format(native.loopMaxMs, 1)} | ${format(pusher.loopMaxMs, 1)} | ${format(pusher.loopMaxMs / native.loopMaxMs, 2)}× |`
  );
}
