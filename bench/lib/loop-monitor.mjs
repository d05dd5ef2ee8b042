// Preloaded into every server process the benchmark starts (`node --import <this file>`,
// see server-processes.mjs); Switchboard's cluster workers inherit it, since cluster.fork()
// passes process.execArgv on. It watches the event loop's delay with a 10 ms timer and, on
// SIGUSR2, writes the largest delay since the previous SIGUSR2 (or the start) to
// `${BENCH_LOOP_DIR}/${pid}.json` and starts over. A signal and a file, because the bench
// ignores the servers' stdout and cannot reach a cluster worker otherwise. Switchboard's src/
// does not use SIGUSR2 (checked with grep); Node reserves SIGUSR1 for its inspector.
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const directory = process.env.BENCH_LOOP_DIR;
if (directory) {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  // A signal listener does not keep the process alive: a server still exits as it would.
  process.on('SIGUSR2', () => {
    const report = { pid: process.pid, maxMs: histogram.max / 1e6, samples: histogram.count, at: Date.now() };
    histogram.reset();
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
