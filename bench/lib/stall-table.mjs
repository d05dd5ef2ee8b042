// The table of every event-loop delay above the target (50 ms) that a server reported during
// the run, one row per scenario (its worst process), with what the longest stall of that
// process was made of (loop-monitor.mjs): the loop's own work on a core, the time it was
// runnable but waiting for a core (the machine, shared with the client processes and the
// node's other workers, not the server's work), and garbage-collection pauses (wall time,
// partly on V8's helper threads, so it can exceed the main thread's own time).
import { format } from './format.mjs';
import { LOOP_TARGET_MS } from './loop-delay.mjs';

const ms = (value) => (value === null || value === undefined ? 'n/a' : format(value, 1));

/** Markdown for `reports` ({ scenario, pid, maxMs, stall }[]); '' when there are none. */
export function stallTable(reports) {
  if (reports.length === 0) return `Every server process's event-loop delay stayed at or below ${LOOP_TARGET_MS} ms in every scenario.`;
  const worst = new Map();
  const processes = new Map();
  for (const report of reports) {
    processes.set(report.scenario, (processes.get(report.scenario) ?? 0) + 1);
    if (!worst.has(report.scenario) || worst.get(report.scenario).maxMs < report.maxMs) worst.set(report.scenario, report);
  }
  const rows = [...worst.values()].map(({ scenario, maxMs, stall }) => {
    const made = stall === null ? ['n/a', 'n/a', 'n/a', 'n/a'] : [ms(stall.ms), ms(stall.cpuMs), ms(stall.waitMs), ms(stall.gcMs)];
    return `| ${scenario} | ${processes.get(scenario)} | ${ms(maxMs)} | ${made.join(' | ')} |`;
  });
  return [
    `| event-loop delays over ${LOOP_TARGET_MS} ms (scenario) | processes over | delay max, ms | that process's longest stall, ms | of it on a core (own work) | waiting for a core | GC pauses in it |`,
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}
