/**
 * The life of a `switchboard start` with WS_WORKER_NUM > 1 (SPEC §1, §3, §6; issue 5):
 * the primary restarts a crashed worker, stops them all on SIGTERM, and gives up with one
 * clean line when a worker cannot start; WS_WORKER_NUM and --workers; and workers with
 * Redis, where every worker is an ordinary Redis node. The relay between workers without
 * Redis is in workers.test.ts.
 *
 * Everything here runs the built CLI (dist/cli/main.js) as real child processes, through
 * test/helpers/workers.ts: each test works in its own temp directory, and every
 * switchboard process whose working directory it is (the primary and its workers) is
 * SIGKILLed after the test, even when the test fails.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { test, type TestContext } from 'node:test';
import { CloseCode } from '../../src/codes.js';
import { eventually, type TestClient } from '../helpers/client.js';
import {
  occupyPort,
  GENEROUS_MS,
  cliEnv,
  cliProcessesIn,
  isAlive,
  linesOf,
  listeningUrlIn,
  parseLogLines,
  runCli,
  spawnCli,
  tempDir,
  waitUntil,
  within,
} from '../helpers/cli.js';
import { startRedis } from '../helpers/redis.js';
import {
  TEST_TIMEOUT_MS,
  childrenOf,
  clusterDir,
  connect,
  connectAcross,
  drain,
  getStatus,
  httpBase,
  isOpen,
  messagesOn,
  nodeOf,
  primaryLines,
  publish,
  redisEnv,
  serverEnv,
  startCluster,
  subscribeAll,
  track,
  waitForNewWorker,
  waitReady,
} from '../helpers/workers.js';

// ---------------------------------------------------------------------------------------
// A crashing worker (issue 5)
// ---------------------------------------------------------------------------------------

test('a worker killed with SIGKILL is restarted; the others serve meanwhile, its subscribers stop counting, and the new worker joins the relay', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.crash';
  const { cli, url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3' }));
  const workers = childrenOf(cli.pid);
  assert.equal(workers.length, 3, `worker pids: ${workers.join(', ')}`);
  // Clients on every worker, so that whichever dies had some.
  const clients = await connectAcross(t, url, 3);
  const nodesBefore = new Set(clients.map(nodeOf));
  await subscribeAll(clients, channel);

  const victim = workers[0] as number;
  process.kill(victim, 'SIGKILL');
  const restartLine = new RegExp(`^worker ${victim} exited \\(SIGKILL\\); starting a new one in \\d+(\\.\\d+)?s$`);
  await waitUntil(
    () => primaryLines(cli).some((line) => typeof line.msg === 'string' && restartLine.test(line.msg)),
    GENEROUS_MS,
    `the primary to log "worker ${victim} exited (SIGKILL); starting a new one in Ns"; stdout: ${cli.stdout}`,
  );
  assert.ok(cli.running, 'the primary keeps running');
  assert.equal(isAlive(victim), false, 'the killed worker is gone');

  // Exactly the clients of one worker were cut off.
  await eventually(() => [...nodesBefore].some((node) => clients.filter((client) => nodeOf(client) === node).every((client) => !isOpen(client))), GENEROUS_MS, 'the dead worker\'s clients to be closed');
  const deadNodes = [...nodesBefore].filter((node) => clients.filter((client) => nodeOf(client) === node).every((client) => !isOpen(client)));
  assert.equal(deadNodes.length, 1, `one worker's clients were closed: ${deadNodes.join(', ')}`);
  const survivors = clients.filter(isOpen);
  assert.equal(
    survivors.every((client) => nodeOf(client) !== deadNodes[0]),
    true,
    'every client of the other workers stays connected',
  );

  // Meanwhile (the restart waits a while) the others serve: a new client connects and gets messages from another worker.
  const meanwhile = await connect(t, url);
  await subscribeAll([meanwhile], channel);
  const publisher = survivors.find((client) => nodeOf(client) !== nodeOf(meanwhile));
  assert.ok(publisher !== undefined, 'a surviving client on another worker than the new one');
  const ackMeanwhile = await publish(publisher, channel, 'meanwhile');
  // The exit line is logged after the primary dropped the dead worker's memberships.
  assert.equal(ackMeanwhile.recipients_count, survivors.length + 1, 'the dead worker\'s subscribers no longer count');
  await eventually(() => messagesOn(meanwhile, channel).includes('meanwhile'), GENEROUS_MS, 'the new client to get a message from another worker');

  // A new worker replaces it ...
  await waitForNewWorker(cli, workers);
  assert.equal(childrenOf(cli.pid).length, 3, 'three workers again');

  // ... new clients land on it ...
  const newcomers = await connectAcross(t, url, 1, {}, (opened) => opened.some((client) => !nodesBefore.has(nodeOf(client))));
  const onNewWorker = newcomers.find((client) => !nodesBefore.has(nodeOf(client)));
  assert.ok(onNewWorker !== undefined);
  await subscribeAll([onNewWorker], channel);

  // ... and it takes part in cross-worker delivery, both ways.
  const receivers = [...survivors, meanwhile, onNewWorker];
  const ackToNew = await publish(publisher, channel, 'to the new worker');
  assert.equal(ackToNew.recipients_count, receivers.length);
  const ackFromNew = await publish(onNewWorker, channel, 'from the new worker');
  assert.equal(ackFromNew.recipients_count, receivers.length);
  await drain(publisher, channel, receivers, 'end');
  assert.deepEqual(
    messagesOn(onNewWorker, channel).filter((message) => typeof message === 'string'),
    ['to the new worker', 'from the new worker'],
  );
  for (const client of receivers.filter((client) => nodeOf(client) !== nodeOf(onNewWorker))) {
    assert.deepEqual(
      messagesOn(client, channel).filter((message) => message === 'from the new worker'),
      ['from the new worker'],
      `client on worker ${nodeOf(client)} gets the new worker's message once`,
    );
  }
});

test('a replacement worker that cannot start (its channels file broke since) exits; the primary logs the reason and keeps serving with the others', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const rulesFile = join(tempDir(t), 'channels.json');
  writeFileSync(rulesFile, JSON.stringify({ rules: [{ pattern: 'chat.room.1', subscribe: ['*'], publish: ['*'] }] }));
  const { cli, url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '2', WS_CHANNELS_FILE: rulesFile }));
  const workers = childrenOf(cli.pid);
  assert.equal(workers.length, 2);
  writeFileSync(rulesFile, '{ not json');
  process.kill(workers[0] as number, 'SIGKILL');
  await waitUntil(
    () => primaryLines(cli).some((line) => typeof line.msg === 'string' && line.msg.includes('is not valid JSON')),
    GENEROUS_MS,
    `the primary to log why the new worker could not start; stdout: ${cli.stdout}`,
  );
  // The failed worker is gone (not left idling on its IPC channel), the other one serves.
  await waitUntil(() => childrenOf(cli.pid).every((pid) => pid === workers[1] || !isAlive(pid)) && cli.running, GENEROUS_MS, 'no worker but the healthy one');
  const client = await connect(t, url);
  assert.equal((await client.subscribe('chat.room.1')).success, true);
});

// ---------------------------------------------------------------------------------------
// Stopping (SPEC §3), and failing to start
// ---------------------------------------------------------------------------------------

test('SIGTERM to the primary closes the clients of every worker with 1001, exits 0 and leaves no worker running', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { cli, url, dir } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3' }));
  const workers = childrenOf(cli.pid);
  assert.equal(workers.length, 3);
  const clients = await connectAcross(t, url, 3);
  cli.child.kill('SIGTERM');
  const closes = await within(Promise.all(clients.map((client) => client.closed)), GENEROUS_MS, 'every client to be closed');
  for (const [index, close] of closes.entries()) assert.equal(close.code, CloseCode.GOING_AWAY, `client on worker ${nodeOf(clients[index] as TestClient)}`);
  const result = await cli.waitForExit();
  assert.equal(result.signal, null, `the primary ended by ${String(result.signal)} instead of exiting`);
  assert.equal(result.code, 0, `exit code (stderr: ${result.stderr})`);
  assert.deepEqual(
    workers.filter((pid) => isAlive(pid)),
    [],
    'no worker outlives the primary',
  );
  assert.deepEqual(cliProcessesIn(dir), [], 'no switchboard process left');
});

test('with 2 workers, a port already in use makes start exit non-zero with one "switchboard:" line naming the port, no stack trace and no process left', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const port = await occupyPort(t);
  const dir = clusterDir(t);
  const cli = track(spawnCli(t, ['start'], { cwd: dir, env: serverEnv({ WS_WORKER_NUM: '2', WS_PORT: String(port) }) }));
  const result = await cli.waitForExit().catch((error: unknown) => {
    throw new Error(`${(error as Error).message}; still running: ${cliProcessesIn(dir).join(', ')}; stderr so far:\n${cli.stderr}`);
  });
  assert.notEqual(result.code, null, `the primary must exit, not die by ${String(result.signal)}`);
  assert.notEqual(result.code, 0);
  const lines = linesOf(result.stderr);
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0] as string, /^switchboard: /);
  assert.ok((lines[0] as string).includes(String(port)), `the line names the port: ${result.stderr}`);
  assert.match(result.stderr, /in use/i);
  assert.doesNotMatch(result.stderr, /^\s+at\s/m, 'no stack trace');
  assert.equal(listeningUrlIn(parseLogLines(result.stdout)), null, 'nothing ever listened');
  await waitUntil(() => cliProcessesIn(dir).length === 0, GENEROUS_MS, `no switchboard process left (found ${cliProcessesIn(dir).join(', ')})`);
});

// ---------------------------------------------------------------------------------------
// Configuring the number of workers (SPEC §1)
// ---------------------------------------------------------------------------------------

/** check-config's value for one variable. */
async function checkConfigValue(t: TestContext, name: string, env: Record<string, string>, args: string[] = []): Promise<string | undefined> {
  const result = await runCli(t, ['check-config', ...args], { cwd: tempDir(t), env: cliEnv(env) });
  assert.equal(result.code, 0, `check-config exit code (stderr: ${result.stderr})`);
  const line = result.stdout.split('\n').find((candidate) => candidate.trim().startsWith(`${name} `));
  return line === undefined ? undefined : /^\s*\S+\s+(.*?)\s+\([\w.]+\)$/.exec(line)?.[1];
}

test('WS_WORKER_NUM=auto is accepted and check-config shows the CPU count', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  assert.equal(await checkConfigValue(t, 'WS_WORKER_NUM', { WS_WORKER_NUM: 'auto' }), String(availableParallelism()));
});

test('--workers 2 overrides WS_WORKER_NUM: check-config shows 2 and start runs two workers that both serve clients', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  assert.equal(await checkConfigValue(t, 'WS_WORKER_NUM', { WS_WORKER_NUM: '3' }, ['--workers', '2']), '2');
  const { cli, url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3' }), ['--workers', '2']);
  assert.equal(childrenOf(cli.pid).length, 2, 'two worker processes');
  const listening = primaryLines(cli).find((line) => typeof line.msg === 'string' && line.msg.startsWith('listening on'));
  assert.equal(listening?.workers, 2, `the primary's listening line: ${JSON.stringify(listening)}`);
  const clients = await connectAcross(t, url, 2);
  assert.equal(new Set(clients.map(nodeOf)).size, 2);
});

// ---------------------------------------------------------------------------------------
// Several workers with Redis: each worker is an ordinary node (SPEC §6)
// ---------------------------------------------------------------------------------------

test('with Redis and 2 workers, /readyz on the shared port answers 200 from the workers', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const { url } = await startCluster(t, redisEnv(redis.port, { WS_WORKER_NUM: '2' }));
  await waitReady(url, 4);
  const answer = await getStatus(`${httpBase(url)}readyz`);
  assert.equal(answer.status, 200, answer.body);
  assert.deepEqual(JSON.parse(answer.body), { status: 'ready' });
});

test('with Redis, a message published on a single-process node reaches the subscribers on both workers of a 2-worker node exactly once, and recipients_count counts all three processes', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const channel = 'chat.redis';
  const multi = await startCluster(t, redisEnv(redis.port, { WS_WORKER_NUM: '2' }));
  const single = await startCluster(t, redisEnv(redis.port));
  assert.equal(childrenOf(multi.cli.pid).length, 2);
  assert.notEqual(new URL(multi.url).port, new URL(single.url).port);
  await waitReady(multi.url, 4);
  await waitReady(single.url, 1);

  const onWorkers = await connectAcross(t, multi.url, 2);
  const onSingle = [await connect(t, single.url), await connect(t, single.url)];
  const everyone = [...onWorkers, ...onSingle];
  assert.equal(new Set(everyone.map(nodeOf)).size, 3, 'three distinct nodes');
  await subscribeAll(everyone, channel);
  const publisher = onSingle[0] as TestClient;

  const count = 50;
  const acks = await Promise.all(Array.from({ length: count }, (_unused, seq) => publisher.publish(channel, { seq })));
  for (const ack of acks) {
    assert.equal(ack.action, 'message_sent', `ack: ${JSON.stringify(ack)}`);
    assert.equal(ack.recipients_count, everyone.length, 'subscribers of both workers and of the single node');
  }
  await drain(publisher, channel, everyone, 'end');
  const expected = [...Array.from({ length: count }, (_unused, seq) => ({ seq })), { marker: 'end' }];
  for (const client of everyone) assert.deepEqual(messagesOn(client, channel), expected, `client on node ${nodeOf(client)}: each message once, in order`);
});

test('with Redis and 2 workers, a message published on one worker reaches the other worker and another node exactly once', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const channel = 'chat.redis.workers';
  const multi = await startCluster(t, redisEnv(redis.port, { WS_WORKER_NUM: '2' }));
  const single = await startCluster(t, redisEnv(redis.port));
  await waitReady(multi.url, 4);
  await waitReady(single.url, 1);
  const onWorkers = await connectAcross(t, multi.url, 2);
  const onSingle = await connect(t, single.url);
  const everyone = [...onWorkers, onSingle];
  await subscribeAll(everyone, channel);
  const publisher = onWorkers[0] as TestClient;
  const ack = await publish(publisher, channel, 'from a worker');
  assert.equal(ack.recipients_count, everyone.length);
  await drain(publisher, channel, everyone, 'end');
  for (const client of everyone) assert.deepEqual(messagesOn(client, channel), ['from a worker', { marker: 'end' }], `client on node ${nodeOf(client)}`);
});
