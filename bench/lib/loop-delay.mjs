// The bench's side of loop-monitor.mjs: which processes make up a server (the process and
// its children, e.g. Switchboard's cluster workers), and the largest event-loop delay each
// has seen since it was last asked, collected by SIGUSR2 and the JSON file it answers with.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './processes.mjs';

/** `node --import` this in every server process: the preload that answers SIGUSR2. */
export const LOOP_MONITOR = fileURLToPath(new URL('./loop-monitor.mjs', import.meta.url));

/** How long a process may take to answer: its loop would have to be blocked that long. */
const ANSWER_TIMEOUT_MS = 10_000;

/** The bound on any event-loop delay, ms: the delays above it are kept with what they were made of. */
export const LOOP_TARGET_MS = 50;

let label = '';
/** Each delay above LOOP_TARGET_MS any server reported: { scenario, pid, maxMs, stall }. */
export const overTarget = [];

/** Names the scenario that the following reports belong to (overTarget's `scenario`). */
export function setScenarioLabel(text) {
  label = text;
}

let directory = null;
/** The directory the servers write their answers to (BENCH_LOOP_DIR), made on first use and removed at exit. */
export function loopDirectory() {
  if (directory === null) {
    directory = mkdtempSync(join(tmpdir(), 'bench-loop-'));
    const made = directory;
    process.once('exit', () => rmSync(made, { recursive: true, force: true }));
  }
  return directory;
}

/** `pid` and its child processes, read from /proc (none once it has exited). */
export function processTree(pid) {
  let children = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return [pid, ...children];
}

/**
 * Asks every process of `pids` for the largest event-loop delay since it was last asked,
 * and resolves with the largest of them in ms, `perProcess` ({pid: ms}), `stalls` ({pid: the longest stall's make-up}) and `missing` (the
 * processes that did not answer within 10 s: NaN when none answered). `record: false` (the
 * start of a measured part: what came before it is not measured) keeps it out of overTarget.
 */
export async function askLoopMax(pids, { record = true } = {}) {
  const dir = loopDirectory();
  const files = new Map(pids.map((pid) => [pid, join(dir, `${pid}.json`)]));
  const asked = [];
  for (const [pid, file] of files) {
    rmSync(file, { force: true });
    try {
      process.kill(pid, 'SIGUSR2');
      asked.push(pid);
    } catch {
      // Already gone.
    }
  }
  const perProcess = {};
  const stalls = {};
  const deadline = Date.now() + ANSWER_TIMEOUT_MS;
  let waiting = asked;
  while (waiting.length > 0 && Date.now() < deadline) {
    waiting = waiting.filter((pid) => {
      const file = files.get(pid);
      if (!existsSync(file)) return true;
      const report = JSON.parse(readFileSync(file, 'utf8'));
      perProcess[pid] = report.maxMs;
      stalls[pid] = report.stall;
      if (record && report.maxMs > LOOP_TARGET_MS) overTarget.push({ scenario: label, pid, maxMs: report.maxMs, stall: report.stall });
      rmSync(file, { force: true });
      return false;
    });
    if (waiting.length > 0) await sleep(10);
  }
  const missing = pids.filter((pid) => !(pid in perProcess));
  if (missing.length > 0) process.stderr.write(`\n(event-loop delay: no answer from pid ${missing.join(', ')})\n`);
  const values = Object.values(perProcess);
  return { maxMs: values.length === 0 ? NaN : Math.max(...values), perProcess, stalls, missing };
}
