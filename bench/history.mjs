// The history scenario of `npm run bench` (run.mjs): Switchboard's fan-out with history
// off and on, interleaved `rounds` times each, on one node and on two nodes through Redis;
// the medians side by side, whether the sampled deliveries carried the offsets history
// promises, and the table that reports it.
import { format } from './lib/format.mjs';
import { median } from './lib/median.mjs';

/** History on every channel (no channels file): the last 100 messages, kept an hour. */
const HISTORY_ENV = { WS_HISTORY_SIZE: '100', WS_HISTORY_TTL: '3600' };
/** In the history scenario, 1 connection in this many decodes its deliveries to check their offsets. */
const HISTORY_SAMPLE_EVERY = 100;
/** The goal for deliveries/s with history ÷ without. */
const HISTORY_GOAL = 0.9;

/**
 * Whether the sampled connections saw what the mode promises: with history, an offset on
 * every delivery, each the previous one + 1; without, none. A string saying what is wrong, or null.
 */
function offsetProblem(history, sampled) {
  if (sampled === undefined || sampled === null || sampled.decoded === 0) return 'no delivery sampled';
  if (!history) return sampled.withOffset === 0 ? null : `${sampled.withOffset} deliveries carried an offset with history off`;
  if (sampled.withOffset !== sampled.decoded) return `${sampled.decoded - sampled.withOffset} of ${sampled.decoded} sampled deliveries had no offset`;
  if (sampled.outOfSequence > 0) return `${sampled.outOfSequence} offsets out of sequence`;
  return null;
}

/** The median of each figure over the runs of one mode (history off or on). */
function summarize(runs, history) {
  const pick = (get) => median(runs.map(get));
  const cpu = runs[0].cpuMicrosPerDelivery;
  const loop = runs[0].loopMaxMs;
  const worst = (get) => Math.max(...runs.map(get));
  const problems = runs.map((run) => offsetProblem(history, run.sampled)).filter((problem) => problem !== null);
  return {
    deliveriesPerSecond: pick((run) => run.deliveriesPerSecond),
    complete: runs.every((run) => run.complete),
    cpuMicrosPerDelivery: typeof cpu === 'number' ? pick((run) => run.cpuMicrosPerDelivery) : Object.fromEntries(Object.keys(cpu).map((key) => [key, pick((run) => run.cpuMicrosPerDelivery[key])])),
    // The worst run's largest event-loop delay, per node across two nodes.
    loopMaxMs: typeof loop === 'number' ? worst((run) => run.loopMaxMs) : Object.fromEntries(Object.keys(loop).map((key) => [key, worst((run) => run.loopMaxMs[key])])),
    offsetsChecked: problems.length === 0,
    ...(problems.length > 0 && { offsetProblems: problems }),
    runs,
  };
}

/**
 * Fan-out with history off and on, `rounds` runs of each, interleaved with the order
 * alternating so that neither mode always runs on a warmer machine. `measure(env)` does
 * one run (null: not possible here, e.g. no redis-server). A failed run ends the
 * scenario with its error instead of the bench.
 */
async function historyComparison(measure, { rounds }) {
  const runs = { off: [], on: [] };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of round % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
        const run = await measure(mode === 'on' ? HISTORY_ENV : {});
        if (run === null) return null;
        runs[mode].push(run);
        process.stderr.write('.');
      }
    }
  } catch (error) {
    return { error: String(error?.message ?? error) };
  }
  const off = summarize(runs.off, false);
  const on = summarize(runs.on, true);
  return { off, on, ratio: on.deliveriesPerSecond / off.deliveriesPerSecond };
}

/**
 * The scenario, on one node and on two nodes through Redis: `oneNode(plan, options)` and
 * `twoNodes(plan, options)` each measure one fan-out burst, `options` being the servers'
 * extra environment and how often to sample a connection (null: not possible here, e.g.
 * no redis-server). Progress goes to stderr; the result is what the JSON keeps and
 * historyTable() prints.
 */
export async function historyScenario(plan, { oneNode, twoNodes }) {
  const { subscribers, messages } = plan;
  const options = (env) => ({ env, sampleEvery: HISTORY_SAMPLE_EVERY });
  const outcome = (result) => (result === null ? 'skipped (no redis-server)' : result.error !== undefined ? `failed: ${result.error}` : 'done');
  const historyResult = { plan, env: HISTORY_ENV, goal: HISTORY_GOAL };
  process.stderr.write('switchboard, fan-out with history off / on, one node: ');
  historyResult.oneNode = await historyComparison((env) => oneNode({ subscribers, messages }, options(env)), plan);
  process.stderr.write(` ${outcome(historyResult.oneNode)}\n`);
  process.stderr.write('switchboard, fan-out with history off / on, two nodes through Redis: ');
  historyResult.twoNodes = await historyComparison((env) => twoNodes({ subscribers, messages }, options(env)), plan);
  process.stderr.write(` ${outcome(historyResult.twoNodes)}\n`);
  return historyResult;
}

/** The Markdown table of a historyScenario() result, with the blank line that separates it from the table before. */
export function historyTable(historyResult) {
  const { subscribers, rounds } = historyResult.plan;
  const env = Object.entries(HISTORY_ENV)
    .map(([name, value]) => `${name}=${value}`)
    .join(', ');
  const notes = (side) => `${side.complete ? '' : ' (incomplete)'}${side.offsetsChecked ? '' : ' (offsets wrong!)'}`;
  const ratioCell = (ratio) => `${format(ratio * 100, 1)}% (goal ≥ ${format(HISTORY_GOAL * 100)}%${Number.isFinite(ratio) ? (ratio >= HISTORY_GOAL ? ', met' : ', missed') : ''})`;
  const total = (cpu) => (typeof cpu === 'number' ? cpu : Object.values(cpu).reduce((sum, value) => sum + value, 0));
  const cpuRatio = (off, on) => `${format(on / off, 2)}×`;
  const setup = (label, result, cpuLabel, cpuCells, loopLabel, loopCells) => {
    if (result === null) return [`| ${label}: fan-out deliveries/s | skipped (no redis-server) | | |`];
    if (result.error !== undefined) return [`| ${label}: fan-out deliveries/s | failed: ${result.error} | | |`];
    const { off, on, ratio } = result;
    return [
      `| ${label}: fan-out deliveries/s | ${format(off.deliveriesPerSecond)}${notes(off)} | ${format(on.deliveriesPerSecond)}${notes(on)} | ${ratioCell(ratio)} |`,
      `| ${label}: ${cpuLabel} | ${cpuCells(off.cpuMicrosPerDelivery)} | ${cpuCells(on.cpuMicrosPerDelivery)} | ${cpuRatio(...[off, on].map((side) => total(side.cpuMicrosPerDelivery)))} |`,
      `| ${label}: ${loopLabel} | ${loopCells(off.loopMaxMs)} | ${loopCells(on.loopMaxMs)} | |`,
    ];
  };
  return (
    `\n\n| Switchboard fan-out with history (${env}), ${subscribers.toLocaleString('en-US')} subscribers, median of ${rounds} runs each | history off | history on | on ÷ off |\n|---|---|---|---|\n` +
    [
      ...setup('one node, in-memory broker', historyResult.oneNode, 'server CPU µs per delivery (lower is better)', (cpu) => format(cpu, 2), 'event loop max ms, worst run (target ≤ 50)', (loop) => format(loop, 1)),
      ...setup(
        'two nodes through Redis',
        historyResult.twoNodes,
        'CPU µs per delivery: publishing node / subscribing node / redis-server',
        (cpu) => [cpu.publishingNode, cpu.subscribingNode, cpu.redis].map((value) => format(value, 2)).join(' / '),
        'event loop max ms, worst run: publishing node / subscribing node',
        (loop) => [loop.publishingNode, loop.subscribingNode].map((value) => format(value, 1)).join(' / '),
      ),
    ].join('\n')
  );
}
