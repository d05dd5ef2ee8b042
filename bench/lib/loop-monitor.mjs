// Preloaded into every server process the benchmark starts (`node --import <this file>`,
// see server-processes.mjs); Switchboard's cluster workers inherit it, since cluster.fork()
// passes process.execArgv on. It watches the event loop's delay with a 10 ms timer and, on
// SIGUSR2, writes the largest delay since the previous SIGUSR2 (or the start) to
// `${BENCH_LOOP_DIR}/${pid}.json` and starts over. A signal and a file, because the bench
// ignores the servers' stdout and cannot reach a cluster worker otherwise. Switchboard's src/
// does not use SIGUSR2 (checked with grep); Node reserves SIGUSR1 for its inspector.
//
// It also says what the longest stall was made of: a second 10 ms timer reads, at each
// tick, the main thread's time on a core and time runnable but waiting for one (Linux's
// /proc/thread-self/schedstat, in ns), and a PerformanceObserver sums garbage-collection
// pauses. For the longest gap between two ticks: `stall` = { ms (the gap less the 10 ms
// interval), cpuMs (the loop's own work, GC included), waitMs (waiting for a core: the
// machine, not the server), gcMs }. Without schedstat (not Linux) cpuMs and waitMs are null.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';

const directory = process.env.BENCH_LOOP_DIR;
const TICK_MS = 10;

/** [ns on a core, ns runnable and waiting] of the calling (main) thread, or null. */
function schedstat() {
  try {
    const [onCpu, waiting] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ');
    return [Number(onCpu), Number(waiting)];
  } catch {
    return null;
  }
}

if (directory) {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();

  let gcMs = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  }).observe({ entryTypes: ['gc'] });
  let stall = null;
  let last = { at: performance.now(), sched: schedstat(), gcMs };
  setInterval(() => {
    const now = { at: performance.now(), sched: schedstat(), gcMs };
    const ms = now.at - last.at - TICK_MS;
    if (stall === null || ms > stall.ms) {
      const cpu = now.sched === null || last.sched === null ? null : (now.sched[0] - last.sched[0]) / 1e6;
      const wait = now.sched === null || last.sched === null ? null : (now.sched[1] - last.sched[1]) / 1e6;
      // endUs: when it ended, on the clock of a --cpu-prof profile's timestamps (CLOCK_MONOTONIC, µs), to find it there.
      stall = { ms, cpuMs: cpu, waitMs: wait, gcMs: now.gcMs - last.gcMs, endUs: Number(process.hrtime.bigint() / 1000n) };
    }
    last = now;
  }, TICK_MS).unref();

  // A signal listener does not keep the process alive: a server still exits as it would.
  process.on('SIGUSR2', () => {
    const report = { pid: process.pid, maxMs: histogram.max / 1e6, samples: histogram.count, stall, at: Date.now() };
    histogram.reset();
    stall = null;
    // Written whole, then renamed: the bench never reads half a file.
    const file = join(directory, `${process.pid}.json`);
    try {
      writeFileSync(`${file}.tmp`, JSON.stringify(report));
      renameSync(`${file}.tmp`, file);
    } catch {
      // The bench has gone and taken the directory with it: nothing to report to.
    }
  });
}
