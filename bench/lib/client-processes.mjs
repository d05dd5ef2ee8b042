// The client processes of the benchmark (bench/clients/*.mjs), forked with an IPC channel:
// forking one and talking to it, the subscriber processes of a fan-out, and counting what
// they have received.
import { fork } from 'node:child_process';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { sleep } from './processes.mjs';
import { BENCH_DIR } from './settings.mjs';

/**
 * The clients' nice value. They share this machine's cores with the server they load: at
 * the same priority, a server process that has work waits for a core while a dozen client
 * processes take their turns, and that wait shows as event-loop delay and latency of the
 * server's. Clients on other machines do not take the server's cores; a lower priority is
 * the nearest to that on one machine (every server kind is measured so, ratios stay fair).
 * BENCH_CLIENT_NICE=0 measures with equal priority.
 */
const CLIENT_NICE = Number(process.env.BENCH_CLIENT_NICE ?? 19);

/**
 * Forks bench/clients/<script> with `args`, at CLIENT_NICE (`{ nice: 0 }`: at the bench's
 * own priority, for a probe that measures how fast the server answers). next(): its next message (rejects if it exits
 * first or reports an error); ask(command): sends a command and resolves with the reply.
 */
export function forkClient(script, args, { nice = CLIENT_NICE } = {}) {
  const child = fork(join(BENCH_DIR, 'clients', script), args.map(String), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  if (nice !== 0 && child.pid !== undefined) setPriority(child.pid, nice);
  const next = () =>
    new Promise((resolve, reject) => {
      const onExit = (code) => reject(new Error(`${script} exited with code ${code}`));
      child.once('exit', onExit);
      child.once('message', (message) => {
        child.off('exit', onExit);
        if (message.error) reject(new Error(message.error));
        else resolve(message);
      });
    });
  return {
    child,
    next,
    /** Ends the process even when it no longer answers (a failed run). */
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    async ask(command) {
      const reply = next();
      child.send(command);
      return reply;
    },
    exit() {
      if (child.connected) child.send({ cmd: 'exit' });
    },
  };
}

/**
 * `total` subscribers of `channel` ('-': none, idle connections) on `server`, in one process
 * (two from 5,000 on, each from its own source address); every `sampleEvery`-th decodes its
 * deliveries. `authenticated`: each connects with its own token (user_id and role `user`).
 */
export async function subscriberProcesses(server, total, channel, sampleEvery, { authenticated = false } = {}) {
  const processes = total >= 5000 ? 2 : 1;
  const groups = Array.from({ length: processes }, (_, index) =>
    forkClient('subscribers.mjs', [server.kind, server.port, Math.round(total / processes), channel, sampleEvery, `127.0.1.${index + 1}`, authenticated ? 'authenticated' : 'anonymous']),
  );
  try {
    await Promise.all(groups.map((group) => group.next()));
  } catch (error) {
    for (const group of groups) group.kill();
    throw error;
  }
  return groups;
}

/** What the sampled connections report, summed over the subscriber processes. */
const SAMPLED_FIELDS = ['decoded', 'withOffset', 'outOfSequence', 'subscribeReplies', 'repliesWithPosition', 'presenceEvents'];

async function countDeliveries(groups) {
  const replies = await Promise.all(groups.map((group) => group.ask({ cmd: 'count' })));
  const sampled = Object.fromEntries(SAMPLED_FIELDS.map((key) => [key, 0]));
  for (const reply of replies) for (const key of SAMPLED_FIELDS) sampled[key] += reply.sampled?.[key] ?? 0;
  return { deliveries: replies.reduce((sum, reply) => sum + reply.deliveries, 0), latencies: replies.flatMap((reply) => reply.latencies), sampled };
}

/** Polls the subscriber processes until they have `expected` deliveries in all, or `timeoutMs` has passed. */
export async function waitForDeliveries(groups, expected, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let counted = { deliveries: 0, latencies: [], sampled: null };
  const latencies = [];
  while (Date.now() < deadline) {
    counted = await countDeliveries(groups);
    latencies.push(...counted.latencies);
    if (counted.deliveries >= expected) break;
    await sleep(20);
  }
  return { deliveries: counted.deliveries, latencies, sampled: counted.sampled };
}
