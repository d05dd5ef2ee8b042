/**
 * `npm run soak -- --connections 10000 --minutes 10`: holds many connections through
 * heartbeats for a long time, churns a share of them, publishes, and reports the server's
 * memory and event-loop delay and any lost, duplicated or reordered message or unexpected
 * close; exits 1 when the run failed (verdict.ts says when), 2 on a usage error. The run
 * itself is run.ts; args.ts lists the flags.
 */
import { rmSync } from 'node:fs';
import { parseSoakArgs, USAGE, UsageError, type SoakOptions } from './args.js';
import { openFileProblem } from './limits.js';
import { formatReport, writeJson } from './report.js';
import { log, runSoak, type Resources } from './run.js';

const resources: Resources = { workDir: null, server: null, redis: null, fleet: null, sampler: null };
let ending = false;

/** Stops whatever was started, in reverse order; never throws. */
async function tearDown(): Promise<void> {
  resources.sampler?.stop();
  resources.fleet?.stop();
  const server = resources.server;
  resources.server = null;
  await server?.stop().catch(() => undefined);
  await resources.redis?.stop().catch(() => undefined);
}

/** Gives the run up: one line saying why, everything stopped, exit 1. */
function giveUp(message: string): void {
  if (ending) return;
  ending = true;
  console.error(`soak: ${message}`);
  void tearDown().finally(() => process.exit(1));
}

function parse(): SoakOptions {
  try {
    const options = parseSoakArgs(process.argv.slice(2));
    if (options === null) {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    return options;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`soak: ${error.message}`);
    process.exit(2);
  }
}

const options = parse();
const limitProblem = openFileProblem(options.connections, options.publishers);
if (limitProblem !== null) {
  console.error(`soak: ${limitProblem}`);
  process.exit(2);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => giveUp(`interrupted (${signal})`));

try {
  const result = await runSoak(options, resources, giveUp);
  if (ending) await new Promise(() => undefined);
  ending = true;
  await tearDown();
  console.log(`\n${formatReport(result)}`);
  if (options.json !== null) {
    writeJson(options.json, result);
    log(`JSON written to ${options.json}`);
  }
  // The server's log is kept when the run failed (the report names it).
  if (result.passed && resources.workDir !== null) rmSync(resources.workDir, { recursive: true, force: true });
  process.exit(result.passed ? 0 : 1);
} catch (error) {
  giveUp(error instanceof Error ? error.message : String(error));
}
