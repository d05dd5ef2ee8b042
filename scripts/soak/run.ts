/**
 * One soak run, phase by phase: start the server (and Redis with --redis), connect the
 * publishers, ramp the subscribers up at a bounded rate, then warm up and run steadily with
 * churn and publishing, stop the traffic and let it settle, read the server after forced
 * collections, close everything normally, stop the server, and judge (verdict.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { account } from './accounting.js';
import type { SoakOptions } from './args.js';
import { emptyCounters } from './counters.js';
import { Fleet } from './fleet.js';
import { Publishers } from './publishers.js';
import { startRedis, type SoakRedis } from './redis.js';
import { Sampler, type Sample } from './sampler.js';
import { logProblems, startServer, type RunningServer } from './server.js';
import { tokenSigner } from './tokens.js';
import { monotonicMs } from './tracker.js';
import { judge, type SoakResult } from './verdict.js';

const SAMPLE_MS = 5000;
/** After the traffic stops: time for the last deliveries and churned connections to land. */
const QUIET_SECONDS = 5;
/** How long the end waits for answers (acks, replacement connections, the server's count). */
const SETTLE_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function log(text: string): void {
  console.log(`[soak ${new Date().toISOString().slice(11, 19)}] ${text}`);
}

/** The warm-up: a fifth of the run, at least 10 s and at most a minute. */
export function warmupSeconds(minutes: number): number {
  return Math.round(Math.min(60, Math.max(10, minutes * 60 * 0.2)));
}

/** What must be torn down if the run is given up half-way. */
export interface Resources {
  /** The server's working directory, with its log. */
  workDir: string | null;
  server: RunningServer | null;
  redis: SoakRedis | null;
  fleet: Fleet | null;
  sampler: Sampler | null;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = monotonicMs() + timeoutMs;
  while (!(await condition()) && monotonicMs() < deadline) await sleep(200);
}

export async function runSoak(options: SoakOptions, resources: Resources, onFatal: (message: string) => void): Promise<SoakResult> {
  const started = monotonicMs();
  const workDir = mkdtempSync(join(tmpdir(), 'switchboard-soak-'));
  resources.workDir = workDir;
  const secret = randomBytes(32).toString('hex');
  const runSeconds = options.minutes * 60;
  const warmup = warmupSeconds(options.minutes);
  const steady = Math.max(0, Math.round(runSeconds - warmup));
  const tokenTtlSeconds = Math.ceil(runSeconds) + 3600;
  // Legitimate traffic is never limited: each publisher may send twice its share (the
  // subscribers send one subscribe each; their pongs answer pings and do not count).
  const perPublisherPerMinute = (options.publishRate / options.publishers) * 60;
  const maxMessagesPerMinute = Math.max(120, Math.ceil(perPublisherPerMinute * 2));

  if (options.redis) resources.redis = await startRedis();
  const server = await startServer(
    {
      heartbeatSeconds: options.heartbeat,
      maxMessagesPerMinute,
      maxChannelsPerConnection: Math.max(100, Math.ceil(options.channels / options.publishers)),
      secret,
      redisPort: resources.redis?.port ?? null,
    },
    workDir,
  );
  resources.server = server;
  void server.exited.then((exit) => {
    if (resources.server !== null) onFatal(`the server exited during the run (${exit.signal ?? `code ${exit.code}`}); its log: ${server.logPath}`);
  });
  const url = `ws://127.0.0.1:${server.port}/`;
  log(`server pid ${server.pid} on ${url} (${options.redis ? `Redis on port ${resources.redis?.port}` : 'embedded broker'}), log ${server.logPath}`);
  const sampler = new Sampler(server.port, server.inspectorPort, started);
  resources.sampler = sampler;
  sampler.start(SAMPLE_MS);

  const publishersCounters = emptyCounters();
  const publishers = await Publishers.connect(url, tokenSigner(secret, tokenTtlSeconds), options.channels, options.publishers, publishersCounters, onFatal);
  const fleet = new Fleet({ url, secret, channels: options.channels, heartbeatMs: options.heartbeat * 1000, tokenTtlSeconds }, options.processes, onFatal);
  resources.fleet = fleet;

  sampler.phase = 'ramp';
  log(`ramping up ${options.connections} connections at ≤ ${options.rampRate}/s over ${options.processes} client processes`);
  const rampStarted = monotonicMs();
  const ramp = await fleet.open(options.connections, options.rampRate);
  const rampSeconds = (monotonicMs() - rampStarted) / 1000;
  log(`${ramp.opened} connections subscribed in ${rampSeconds.toFixed(1)} s (${ramp.failed} failed)`);

  const progressEvery = Math.min(30, Math.max(10, runSeconds / 20)) * 1000;
  const progress = setInterval(() => void printProgress(fleet, sampler, publishers), progressEvery);
  sampler.phase = 'warm-up';
  publishers.start(options.publishRate);
  // --churn is a percentage per 10 s, spread over every second.
  const churnTimer = setInterval(() => fleet.churn((options.connections * options.churn) / 100 / 10), 1000);
  log(`traffic: ${options.publishRate} msg/s, churn ${options.churn}% per 10 s; warm-up ${warmup} s, then steady ${steady} s`);
  await sleep(warmup * 1000);
  const baseline = await sampler.measureAfterGc();
  const redisBaseline = (await resources.redis?.figures()) ?? null;
  log(`baseline after forced GC: heap ${(baseline.heapUsed / 2 ** 20).toFixed(1)} MB, RSS ${(baseline.rss / 2 ** 20).toFixed(1)} MB, ${baseline.connections} connections`);
  sampler.phase = 'steady';
  await sleep(steady * 1000);

  sampler.phase = 'quiet';
  clearInterval(churnTimer);
  publishers.stop();
  log('traffic stopped; letting it settle');
  await publishers.settle(SETTLE_MS);
  await sleep(QUIET_SECONDS * 1000);
  // Replacements of the last churned connections may still be opening.
  await waitFor(async () => (await fleet.progress()).held === options.connections, SETTLE_MS);
  const heldAtEnd = (await fleet.progress()).held;
  const final = await sampler.measureAfterGc();
  const redisFinal = (await resources.redis?.figures()) ?? null;
  clearInterval(progress);

  sampler.phase = 'closing';
  log('closing every connection normally');
  const finished = await fleet.finish();
  const publisherRecords = await publishers.close();
  let afterClose: Sample = final;
  await waitFor(async () => (afterClose = await sampler.sampleNow()).connections === 0, SETTLE_MS);
  const redisKeys = (await resources.redis?.figures())?.keys ?? 0;
  sampler.stop();
  resources.server = null;
  const exit = await server.stop();
  log(`server stopped (${exit.signal ?? `code ${exit.code}`})`);

  const accounting = account([...finished.records, ...publisherRecords], publishers.logs);
  return judge({
    options,
    phases: { rampSeconds, warmupSeconds: warmup, steadySeconds: steady, quietSeconds: QUIET_SECONDS },
    server: { settings: server.settings, exit, logPath: server.logPath, logProblems: logProblems(server.logPath) },
    subscribers: finished.counters,
    publishersCounters,
    publishes: { sent: publishers.sent, acked: publishers.acked, refused: publishers.refused, unanswered: publishers.outstanding },
    accounting,
    heldAtEnd,
    baseline,
    final,
    afterClose,
    samples: sampler.samples,
    scrapeFailures: sampler.failures,
    redis: redisBaseline === null || redisFinal === null ? null : { usedMemoryBaseline: redisBaseline.usedMemory, usedMemoryFinal: redisFinal.usedMemory, keysAfterClose: redisKeys },
  });
}

async function printProgress(fleet: Fleet, sampler: Sampler, publishers: Publishers): Promise<void> {
  const counters = await fleet.progress();
  const last = sampler.samples[sampler.samples.length - 1];
  const server = last === undefined ? '' : `; server ${last.connections} conns, heap ${(last.heapUsed / 2 ** 20).toFixed(0)} MB, RSS ${(last.rss / 2 ** 20).toFixed(0)} MB, loop delay max ${((last.lagMax ?? 0) * 1000).toFixed(0)} ms`;
  const transitions = `${counters.opening} opening${counters.opening > 0 ? ` (oldest ${(counters.oldestOpeningMs / 1000).toFixed(1)} s)` : ''}, ${counters.closing} closing${counters.closing > 0 ? ` (oldest ${(counters.oldestClosingMs / 1000).toFixed(1)} s)` : ''}`;
  log(
    `${sampler.phase}: ${counters.held} held, ${transitions}, ${counters.churned} churned, ${publishers.sent} published, ${counters.delivered} delivered, ` +
      `${counters.duplicates + counters.reordered} dup/reordered, ${counters.unexpectedCloses} unexpected closes${server}`,
  );
}
