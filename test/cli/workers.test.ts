/**
 * `switchboard start` with WS_WORKER_NUM > 1 (SPEC §1, §6; issue 5): a node:cluster
 * primary forks workers that share one port. Without Redis the primary relays messages
 * between the workers; with Redis every worker is an ordinary Redis node. The primary
 * restarts a crashed worker, stops them all on SIGTERM, and gives up with one clean line
 * when a worker cannot start.
 *
 * Everything here runs the built CLI (dist/cli/main.js) as real child processes. Each
 * test works in its own temp directory, and every switchboard process whose working
 * directory it is (the primary and its workers) is SIGKILLed after the test, even when
 * the test fails. A client's worker is told by the node id that prefixes its
 * connection id (`<nodeId>-<n>`); connections are spread round-robin, so tests open
 * clients until they have reached the workers they need rather than assume an exact
 * distribution.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { availableParallelism } from 'node:os';
import { test, type TestContext } from 'node:test';
import type { ClientOptions } from 'ws';
import { mintToken } from '../../src/auth/tokens.js';
import { DEFAULTS } from '../../src/config/options.js';
import { CloseCode } from '../../src/codes.js';
import { TestClient, eventually, isMessageOn, type Frame } from '../helpers/client.js';
import {
  occupyPort,
  GENEROUS_MS,
  cliEnv,
  cliProcessesIn,
  isAlive,
  killCliProcessesInAfter,
  linesOf,
  listeningUrlIn,
  parseLogLines,
  runCli,
  spawnCli,
  tempDir,
  waitUntil,
  within,
  type CliProcess,
  type LogLine,
} from '../helpers/cli.js';
import { startRedis } from '../helpers/redis.js';

const TEST_TIMEOUT_MS = 90_000;
/** The most clients a test opens while looking for a client on a particular worker. */
const MAX_CLIENTS_TO_REACH_WORKERS = 40;
/** How long a test waits for frames that must not come (duplicates) before checking. */
const QUIET_MS = 300;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/**
 * Primaries this file started. t.after kills them, but when the runner's per-file timeout
 * hits, it SIGTERMs this process and no after-hook runs: kill them (and their workers)
 * then too, so that a slow or failing run never leaves servers behind.
 */
const startedPrimaries = new Set<number>();
/** Their working directories, removed there too (t.after removes them otherwise). */
const workDirs = new Set<string>();

function killStartedProcesses(): void {
  for (const primary of startedPrimaries) {
    for (const pid of [...childrenOf(primary), primary]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

process.once('exit', killStartedProcesses);
process.once('SIGTERM', () => {
  killStartedProcesses();
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
  process.exit(143);
});

function track(cli: CliProcess): CliProcess {
  startedPrimaries.add(cli.pid);
  void cli.exited.then(() => startedPrimaries.delete(cli.pid));
  return cli;
}

/** Loopback, any free port, no rate limit (tests publish hundreds of frames) unless a test says otherwise. */
function serverEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return cliEnv({ WS_HOST: '127.0.0.1', WS_PORT: '0', WS_MAX_MESSAGES_PER_MINUTE: '0', ...overrides });
}

/** A server environment using the test's Redis, without any REDIS_* setting inherited from the runner. */
function redisEnv(redisPort: number, overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = serverEnv();
  for (const key of Object.keys(env)) if (key.startsWith('REDIS_')) delete env[key];
  return { ...env, REDIS_ENABLED: 'true', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redisPort), ...overrides };
}

interface Cluster {
  cli: CliProcess;
  /** The WebSocket URL every worker serves. */
  url: string;
  dir: string;
}

/** The primary's own log lines (its pid), not its workers'. */
function primaryLines(cli: CliProcess): LogLine[] {
  return cli.logLines().filter((line) => line.pid === cli.pid);
}

/**
 * Starts `switchboard start` in a fresh directory and waits until the primary logs
 * "listening on": every worker listens then. The primary and its workers are killed
 * after the test.
 */
async function startCluster(t: TestContext, env: NodeJS.ProcessEnv, args: readonly string[] = []): Promise<Cluster> {
  const dir = tempDir(t);
  workDirs.add(dir);
  killCliProcessesInAfter(t, dir);
  const cli = track(spawnCli(t, ['start', ...args], { cwd: dir, env }));
  await waitUntil(
    () => {
      if (listeningUrlIn(primaryLines(cli)) !== null) return true;
      if (!cli.running) throw new Error(`the server exited before listening; stderr: ${cli.stderr}`);
      return false;
    },
    GENEROUS_MS,
    `the primary's "listening on" line; stdout so far: ${cli.stdout}`,
  );
  const url = listeningUrlIn(primaryLines(cli));
  assert.ok(url !== null);
  return { cli, url, dir };
}

/** Pids of the live processes whose parent is `parent` (Linux /proc). */
function childrenOf(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so parse after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && Number(fields[1]) === parent) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids.sort((a, b) => a - b);
}

/** The worker a client landed on: the node id before the last '-' of its connection id. */
function nodeOf(client: TestClient): string {
  const id = client.welcome.connection_id;
  assert.equal(typeof id, 'string', `connection_id: ${JSON.stringify(client.welcome)}`);
  const text = id as string;
  const dash = text.lastIndexOf('-');
  assert.ok(dash > 0, `connection_id ${text} should be <nodeId>-<n>`);
  return text.slice(0, dash);
}

async function connect(t: TestContext, url: string, options: ClientOptions = {}): Promise<TestClient> {
  const client = await TestClient.connect(url, options);
  t.after(() => client.close());
  return client;
}

/**
 * Opens clients until they sit on at least `nodes` distinct workers (or `until` holds);
 * returns all of them. Fails after MAX_CLIENTS_TO_REACH_WORKERS clients.
 */
async function connectAcross(
  t: TestContext,
  url: string,
  nodes: number,
  options: ClientOptions = {},
  until: (clients: TestClient[]) => boolean = () => true,
): Promise<TestClient[]> {
  const clients: TestClient[] = [];
  while (new Set(clients.map(nodeOf)).size < nodes || !until(clients)) {
    if (clients.length >= MAX_CLIENTS_TO_REACH_WORKERS) {
      throw new Error(`${clients.length} clients reached only the workers ${[...new Set(clients.map(nodeOf))].join(', ')}; wanted ${nodes}`);
    }
    clients.push(await connect(t, url, options));
  }
  return clients;
}

async function subscribeAll(clients: readonly TestClient[], channel: string): Promise<void> {
  for (const client of clients) {
    const ack = await client.subscribe(channel);
    assert.equal(ack.success, true, `subscribe: ${JSON.stringify(ack)}`);
  }
}

/** Publishes and returns the ack, asserting it is one. */
async function publish(client: TestClient, channel: string, message: unknown, extra: Record<string, unknown> = {}): Promise<Frame> {
  const ack = await client.publish(channel, message, extra);
  assert.equal(ack.action, 'message_sent', `ack: ${JSON.stringify(ack)}`);
  return ack;
}

/** The `message` payloads a client has received on `channel`, in arrival order. */
function messagesOn(client: TestClient, channel: string): unknown[] {
  return client.received(isMessageOn(channel)).map((frame) => frame.message);
}

/**
 * Publishes a marker from `publisher` and waits until every client got it, then a little
 * longer: any copy of an earlier message from the same publisher arrives before its marker
 * (per-publisher order), and a late duplicate gets QUIET_MS more to show up.
 */
async function drain(publisher: TestClient, channel: string, clients: readonly TestClient[], marker: string): Promise<void> {
  await publish(publisher, channel, { marker });
  const isMarker = (frame: Frame): boolean => isMessageOn(channel)(frame) && JSON.stringify(frame.message) === JSON.stringify({ marker });
  // received(), not next(): the publisher may get its own message before its ack, which next() would have skipped.
  for (const client of clients) await eventually(() => client.received(isMarker).length > 0, GENEROUS_MS, `the marker ${marker} on ${String(client.welcome.connection_id)}`);
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
}

const isOpen = (client: TestClient): boolean => client.socket.readyState === client.socket.OPEN;

function httpBase(wsUrl: string): string {
  return wsUrl.replace(/^ws/, 'http');
}

/** GET on a fresh TCP connection each time (no keep-alive), so successive calls reach successive workers. */
function getStatus(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

// ---------------------------------------------------------------------------------------
// Several workers without Redis: the primary relays (SPEC §6)
// ---------------------------------------------------------------------------------------

test('with WS_WORKER_NUM=3 the primary runs three worker processes and clients land on more than one of them', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { cli, url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3' }));
  assert.equal(childrenOf(cli.pid).length, 3, 'three worker processes');
  const clients = await connectAcross(t, url, 2);
  assert.ok(new Set(clients.map(nodeOf)).size >= 2);
  const ids = clients.map((client) => client.welcome.connection_id);
  assert.equal(new Set(ids).size, ids.length, `connection ids are unique across workers: ${ids.join(', ')}`);
});

test('with 3 workers and no Redis, 200 messages published on one worker reach every subscriber on every worker exactly once and in order', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.relay';
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3' }));
  const clients = await connectAcross(t, url, 3);
  await subscribeAll(clients, channel);
  const publisher = clients[0] as TestClient;
  const count = 200;
  // Sent back to back, not one at a time, so that ordering is really put to the test.
  const acks = await Promise.all(Array.from({ length: count }, (_unused, seq) => publisher.publish(channel, { seq })));
  for (const ack of acks) assert.equal(ack.action, 'message_sent', `ack: ${JSON.stringify(ack)}`);
  await drain(publisher, channel, clients, 'end');
  const expected = [...Array.from({ length: count }, (_unused, seq) => ({ seq })), { marker: 'end' }];
  for (const client of clients) {
    assert.deepEqual(messagesOn(client, channel), expected, `client on worker ${nodeOf(client)}: every message once, in publish order`);
  }
});

test('with 3 workers and no Redis, recipients_count in the publisher\'s ack counts the subscribers on every worker', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.count';
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3' }));
  const clients = await connectAcross(t, url, 3);
  // One client that never subscribes: it must not count.
  const bystander = await connect(t, url);
  await subscribeAll(clients, channel);
  for (const publisher of clients) {
    const ack = await publish(publisher, channel, { from: publisher.welcome.connection_id });
    assert.equal(ack.recipients_count, clients.length, `published on worker ${nodeOf(publisher)}`);
  }
  await drain(clients[0] as TestClient, channel, clients, 'end');
  assert.deepEqual(bystander.received(isMessageOn(channel)), [], 'a client that did not subscribe receives nothing');
});

test('with 3 workers and no Redis, a subscriber that disconnects from another worker stops counting in recipients_count', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.leave';
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3' }));
  const clients = await connectAcross(t, url, 2);
  await subscribeAll(clients, channel);
  const publisher = clients[0] as TestClient;
  const leaver = clients.find((client) => nodeOf(client) !== nodeOf(publisher));
  assert.ok(leaver !== undefined);
  assert.equal((await publish(publisher, channel, 'before')).recipients_count, clients.length);
  leaver.close();
  await leaver.closed;
  // The leave reaches the primary asynchronously: poll.
  let last: unknown = null;
  await waitUntil(
    async () => {
      last = (await publish(publisher, channel, 'probe')).recipients_count;
      return last === clients.length - 1;
    },
    GENEROUS_MS,
    `recipients_count to drop to ${clients.length - 1} (last: ${String(last)})`,
  );
});

test('with 3 workers and no Redis, a message with recipients reaches only that user\'s connections on every worker, and recipients_count counts them all', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.private';
  const secret = 'workers-test-secret-of-at-least-32-bytes!';
  const auth = { ...DEFAULTS.auth, secret };
  const tokenFor = (userId: number): Promise<string> => mintToken(auth, { userId, role: 'user', ttlSeconds: 3600 });
  const authAs = async (userId: number): Promise<ClientOptions> => ({ headers: { Authorization: `Bearer ${await tokenFor(userId)}` } });
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3', TOKEN_SECRET: secret }));

  const publisher = await connect(t, url, await authAs(7));
  // Alice (42) on at least two workers, one of them not the publisher's.
  const alice = await connectAcross(t, url, 2, await authAs(42), (clients) => clients.some((client) => nodeOf(client) !== nodeOf(publisher)));
  const bob = await connectAcross(t, url, 2, await authAs(43));
  const anonymous = await connectAcross(t, url, 2);
  for (const client of alice) assert.equal(client.welcome.user_id, 42);
  for (const client of bob) assert.equal(client.welcome.user_id, 43);
  const everyone = [publisher, ...alice, ...bob, ...anonymous];
  await subscribeAll(everyone, channel);

  // User ids compare as strings: a number and its string both address user 42.
  for (const recipients of [[42], ['42']]) {
    const ack = await publish(publisher, channel, { for: recipients }, { recipients });
    assert.equal(ack.recipients_count, alice.length, `recipients ${JSON.stringify(recipients)}: alice's connections on every worker`);
  }
  await drain(publisher, channel, everyone, 'end');
  for (const client of alice) {
    assert.deepEqual(messagesOn(client, channel), [{ for: [42] }, { for: ['42'] }, { marker: 'end' }], `alice on worker ${nodeOf(client)}`);
  }
  for (const client of [publisher, ...bob, ...anonymous]) {
    assert.deepEqual(messagesOn(client, channel), [{ marker: 'end' }], `${String(client.welcome.user_id)} on worker ${nodeOf(client)} gets only the broadcast`);
  }
});

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
  let replacement: number | undefined;
  await waitUntil(
    () => {
      replacement = childrenOf(cli.pid).find((pid) => !workers.includes(pid));
      return replacement !== undefined && cli.logLines().some((line) => line.pid === replacement && typeof line.msg === 'string' && line.msg.startsWith('listening on'));
    },
    GENEROUS_MS,
    `a new worker process listening; stdout: ${cli.stdout}`,
  );
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
  const dir = tempDir(t);
  workDirs.add(dir);
  killCliProcessesInAfter(t, dir);
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

/** Waits until /readyz answers 200 `times` times in a row, each on a new connection (so on each worker in turn). */
async function waitReady(url: string, times: number): Promise<void> {
  let streak = 0;
  let last = '';
  await waitUntil(
    async () => {
      try {
        const answer = await getStatus(`${httpBase(url)}readyz`);
        last = `${answer.status} ${answer.body}`;
        streak = answer.status === 200 ? streak + 1 : 0;
      } catch (error) {
        last = String(error);
        streak = 0;
      }
      return streak >= times;
    },
    GENEROUS_MS,
    `/readyz to answer 200 ${times} times in a row at ${url} (last: ${last})`,
  );
}

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

test('with 3 workers and no Redis, the HTTP API answers for every worker: stats, channels, members, publish and disconnect', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const secret = 'workers-api-test-secret-of-at-least-32-bytes';
  const auth = { secret, publicKey: null, issuer: null, audience: null };
  const key = 'workers-api-key';
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3', TOKEN_SECRET: secret, WS_API_KEY: key }));
  const token = await mintToken(auth, { userId: 42, role: 'user', ttlSeconds: 3600 });
  // Clients of user 42 on at least two workers, and anonymous ones too.
  const users = await connectAcross(t, url, 2, { headers: { Authorization: `Bearer ${token}` } });
  const anonymous = await connectAcross(t, url, 2);
  await subscribeAll([...users, ...anonymous], 'chat.api');
  const api = async (path: string, body?: object): Promise<Record<string, unknown>> => {
    const response = await fetch(`${httpBase(url).replace(/\/$/, '')}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { Authorization: `Bearer ${key}` },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    assert.equal(response.status, 200, `${path}: ${response.status}`);
    return (await response.json()) as Record<string, unknown>;
  };
  const total = users.length + anonymous.length;

  // Asked several times: whichever worker takes the request answers for all three.
  for (let round = 0; round < 3; round++) {
    const stats = await api('/api/stats');
    assert.equal(stats.connections, total);
    assert.equal((stats.nodes as unknown[]).length, 3);
    assert.deepEqual(await api('/api/channels'), { channels: [{ channel: 'chat.api', subscribers: total }] });
  }
  const members = (await api('/api/channels/chat.api')).members as Array<{ connection_id: string; user_id: string | number | null; node: string }>;
  assert.deepEqual(members.map((member) => member.connection_id).sort(), [...users, ...anonymous].map((client) => String(client.welcome.connection_id)).sort());
  assert.equal(members.filter((member) => member.user_id === 42).length, users.length);

  assert.deepEqual(await api('/api/publish', { channel: 'chat.api', message: 'from the backend' }), { success: true, recipients_count: total });
  for (const client of [...users, ...anonymous]) await client.next((frame) => frame.action === 'message' && frame.message === 'from the backend');

  assert.deepEqual(await api('/api/disconnect', { user_id: 42 }), { success: true, disconnected: users.length });
  for (const client of users) {
    const close = await client.closed;
    assert.equal(close.code, 1000);
    assert.equal(close.reason, 'disconnected by server');
  }
  assert.ok(anonymous.every(isOpen), 'the other connections stay open');
});

test('with 2 workers and no Redis, a numeric user id and a string one of the same digits show as 42 and "42" in welcome and in /api/channels/NAME on every worker', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const secret = 'workers-user-id-secret-of-at-least-32-bytes';
  const auth = { secret, publicKey: null, issuer: null, audience: null };
  const key = 'workers-user-id-key';
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '2', TOKEN_SECRET: secret, WS_API_KEY: key }));
  const as = async (userId: string | number): Promise<ClientOptions> => ({ headers: { Authorization: `Bearer ${await mintToken(auth, { userId, role: 'user', ttlSeconds: 3600 })}` } });
  // Each user on both workers: whichever worker answers, the other's members come through the relay.
  const numeric = await connectAcross(t, url, 2, await as(42));
  const text = await connectAcross(t, url, 2, await as('42'));
  for (const client of numeric) assert.equal(client.welcome.user_id, 42);
  for (const client of text) assert.equal(client.welcome.user_id, '42');
  await subscribeAll([...numeric, ...text], 'chat.ids');

  const expected = [...numeric.map((client) => [client.welcome.connection_id, 42]), ...text.map((client) => [client.welcome.connection_id, '42'])].sort();
  for (let round = 0; round < 4; round++) {
    const response = await fetch(`${httpBase(url).replace(/\/$/, '')}/api/channels/chat.ids`, { headers: { Authorization: `Bearer ${key}` } });
    assert.equal(response.status, 200);
    const { members } = (await response.json()) as { members: Array<{ connection_id: string; user_id: unknown }> };
    assert.deepEqual(members.map((member) => [member.connection_id, member.user_id]).sort(), expected, `round ${round}`);
  }
  // Recipients still compare as strings: '42' addresses both users' connections on both workers.
  const ack = await publish(text[0]!, 'chat.ids', 'to 42', { recipients: ['42'] });
  assert.equal(ack.recipients_count, numeric.length + text.length);
});

test('with 3 workers, /metrics on the shared port answers for all workers on every scrape', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3' }));
  const clients = await connectAcross(t, url, 3);
  await subscribeAll(clients, 'chat.metrics');
  await publish(clients[0] as TestClient, 'chat.metrics', 'counted');
  await drain(clients[0] as TestClient, 'chat.metrics', clients, 'counted');
  const sample = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  // A fresh connection each time, so that successive scrapes reach successive workers.
  for (let scrape = 0; scrape < 4; scrape++) {
    const answer = await getStatus(`${httpBase(url).replace(/\/$/, '')}/metrics`);
    assert.equal(answer.status, 200);
    assert.equal(sample(answer.body, 'switchboard_connections'), clients.length, 'connections of every worker');
    // Two messages: 'counted' and drain()'s marker.
    assert.equal(sample(answer.body, 'switchboard_messages_published_total'), 2);
    assert.equal(sample(answer.body, 'switchboard_deliveries_total'), 2 * clients.length, 'one delivery per subscriber and message, on whichever worker');
    assert.equal(sample(answer.body, 'switchboard_ready'), 1);
  }
});
