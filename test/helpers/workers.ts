/**
 * Helpers for tests that run `switchboard start` with WS_WORKER_NUM > 1 (the built CLI,
 * dist/cli/main.js, as real child processes): start a primary and its workers in a fresh
 * directory, tell which worker a client landed on, open clients until they cover the
 * workers a test needs, and publish and wait for deliveries across workers.
 *
 * Importing this module installs an 'exit' and a 'SIGTERM' handler on the test process:
 * when the runner's per-file timeout SIGTERMs it, no after-hook runs, so every primary
 * started here (and its workers) is SIGKILLed then, and the work directories removed.
 *
 * A client's worker is told by the node id that prefixes its connection id
 * (`<nodeId>-<n>`); connections are spread round-robin, so tests open clients until they
 * have reached the workers they need rather than assume an exact distribution.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { TestContext } from 'node:test';
import type { ClientOptions } from 'ws';
import { TestClient, eventually, isMessageOn, type Frame } from './client.js';
import {
  GENEROUS_MS,
  cliEnv,
  killCliProcessesInAfter,
  listeningUrlIn,
  spawnCli,
  tempDir,
  waitUntil,
  type CliProcess,
  type LogLine,
} from './cli.js';

/** The timeout of one test that starts a cluster. */
export const TEST_TIMEOUT_MS = 90_000;
/** The most clients a test opens while looking for a client on a particular worker. */
export const MAX_CLIENTS_TO_REACH_WORKERS = 40;
/** How long a test waits for frames that must not come (duplicates) before checking. */
export const QUIET_MS = 300;

// ---------------------------------------------------------------------------------------
// Processes: every primary started here is killed, even when the runner times out
// ---------------------------------------------------------------------------------------

/** Primaries started through track(); t.after kills them, the handlers below too when no after-hook runs. */
const startedPrimaries = new Set<number>();
/** Their working directories, removed by the SIGTERM handler too (t.after removes them otherwise). */
const workDirs = new Set<string>();

/** SIGKILLs every tracked primary that still runs, and its workers. */
export function killStartedProcesses(): void {
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

/** Records a primary so that it is killed (with its workers) even if the runner SIGTERMs this process; returns it. */
export function track(cli: CliProcess): CliProcess {
  startedPrimaries.add(cli.pid);
  void cli.exited.then(() => startedPrimaries.delete(cli.pid));
  return cli;
}

/** A fresh working directory for a primary: removed after the test, and every switchboard process in it killed. */
export function clusterDir(t: TestContext): string {
  const dir = tempDir(t);
  workDirs.add(dir);
  killCliProcessesInAfter(t, dir);
  return dir;
}

/** Pids of the live processes whose parent is `parent` (Linux /proc): a primary's workers. */
export function childrenOf(parent: number): number[] {
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

// ---------------------------------------------------------------------------------------
// Environments and starting a cluster
// ---------------------------------------------------------------------------------------

/** Loopback, any free port, no rate limit (tests publish hundreds of frames) unless a test says otherwise. */
export function serverEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return cliEnv({ WS_HOST: '127.0.0.1', WS_PORT: '0', WS_MAX_MESSAGES_PER_MINUTE: '0', ...overrides });
}

/** A server environment using the test's Redis, without any REDIS_* setting inherited from the runner. */
export function redisEnv(redisPort: number, overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = serverEnv();
  for (const key of Object.keys(env)) if (key.startsWith('REDIS_')) delete env[key];
  return { ...env, REDIS_ENABLED: 'true', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redisPort), ...overrides };
}

/** A running primary and its workers. */
export interface Cluster {
  cli: CliProcess;
  /** The WebSocket URL every worker serves. */
  url: string;
  dir: string;
}

/** The primary's own log lines (its pid), not its workers'. */
export function primaryLines(cli: CliProcess): LogLine[] {
  return cli.logLines().filter((line) => line.pid === cli.pid);
}

/**
 * Starts `switchboard start` in a fresh directory and waits until the primary logs
 * "listening on": every worker listens then. The primary and its workers are killed
 * after the test.
 */
export async function startCluster(t: TestContext, env: NodeJS.ProcessEnv, args: readonly string[] = []): Promise<Cluster> {
  const dir = clusterDir(t);
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

/**
 * Waits until the primary runs a worker that is not among `before` and that worker has
 * logged "listening on" (the replacement of a worker that died); returns its pid.
 */
export async function waitForNewWorker(cli: CliProcess, before: readonly number[]): Promise<number> {
  let replacement: number | undefined;
  await waitUntil(
    () => {
      replacement = childrenOf(cli.pid).find((pid) => !before.includes(pid));
      return replacement !== undefined && cli.logLines().some((line) => line.pid === replacement && typeof line.msg === 'string' && line.msg.startsWith('listening on'));
    },
    GENEROUS_MS,
    `a new worker process listening; stdout: ${cli.stdout}`,
  );
  assert.ok(replacement !== undefined);
  return replacement;
}

// ---------------------------------------------------------------------------------------
// Clients across workers
// ---------------------------------------------------------------------------------------

/** The worker a client landed on: the node id before the last '-' of its connection id. */
export function nodeOf(client: TestClient): string {
  const id = client.welcome.connection_id;
  assert.equal(typeof id, 'string', `connection_id: ${JSON.stringify(client.welcome)}`);
  const text = id as string;
  const dash = text.lastIndexOf('-');
  assert.ok(dash > 0, `connection_id ${text} should be <nodeId>-<n>`);
  return text.slice(0, dash);
}

/** Connects (waiting for the welcome); the client is closed after the test. */
export async function connect(t: TestContext, url: string, options: ClientOptions = {}): Promise<TestClient> {
  const client = await TestClient.connect(url, options);
  t.after(() => client.close());
  return client;
}

/**
 * Opens clients until they sit on at least `nodes` distinct workers (or `until` holds);
 * returns all of them. Fails after MAX_CLIENTS_TO_REACH_WORKERS clients.
 */
export async function connectAcross(
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

/**
 * Opens clients until one lands on a worker for which `wanted(node)` holds; returns that
 * one and closes the others. Fails after MAX_CLIENTS_TO_REACH_WORKERS clients.
 */
export async function connectTo(t: TestContext, url: string, wanted: (node: string) => boolean, options: ClientOptions = {}): Promise<TestClient> {
  const opened = await connectAcross(t, url, 1, options, (clients) => clients.some((client) => wanted(nodeOf(client))));
  const found = opened.find((client) => wanted(nodeOf(client)));
  assert.ok(found !== undefined);
  for (const other of opened) if (other !== found) other.close();
  return found;
}

/** Subscribes every client to `channel`, one after the other, asserting each ack. */
export async function subscribeAll(clients: readonly TestClient[], channel: string): Promise<void> {
  for (const client of clients) {
    const ack = await client.subscribe(channel);
    assert.equal(ack.success, true, `subscribe: ${JSON.stringify(ack)}`);
  }
}

/** Publishes and returns the ack, asserting it is one. */
export async function publish(client: TestClient, channel: string, message: unknown, extra: Record<string, unknown> = {}): Promise<Frame> {
  const ack = await client.publish(channel, message, extra);
  assert.equal(ack.action, 'message_sent', `ack: ${JSON.stringify(ack)}`);
  return ack;
}

/** The `message` payloads a client has received on `channel`, in arrival order. */
export function messagesOn(client: TestClient, channel: string): unknown[] {
  return client.received(isMessageOn(channel)).map((frame) => frame.message);
}

/**
 * Publishes a marker from `publisher` and waits until every client got it, then a little
 * longer: any copy of an earlier message from the same publisher arrives before its marker
 * (per-publisher order), and a late duplicate gets QUIET_MS more to show up.
 */
export async function drain(publisher: TestClient, channel: string, clients: readonly TestClient[], marker: string): Promise<void> {
  await publish(publisher, channel, { marker });
  const isMarker = (frame: Frame): boolean => isMessageOn(channel)(frame) && JSON.stringify(frame.message) === JSON.stringify({ marker });
  // received(), not next(): the publisher may get its own message before its ack, which next() would have skipped.
  for (const client of clients) await eventually(() => client.received(isMarker).length > 0, GENEROUS_MS, `the marker ${marker} on ${String(client.welcome.connection_id)}`);
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
}

/** True while the client's socket is open. */
export const isOpen = (client: TestClient): boolean => client.socket.readyState === client.socket.OPEN;

// ---------------------------------------------------------------------------------------
// HTTP on the shared port
// ---------------------------------------------------------------------------------------

/** The HTTP base URL (with its trailing slash) of a WebSocket URL. */
export function httpBase(wsUrl: string): string {
  return wsUrl.replace(/^ws/, 'http');
}

/** GET on a fresh TCP connection each time (no keep-alive), so successive calls reach successive workers. */
export function getStatus(url: string): Promise<{ status: number; body: string }> {
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

/** Waits until /readyz answers 200 `times` times in a row, each on a new connection (so on each worker in turn). */
export async function waitReady(url: string, times: number): Promise<void> {
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

/** The pid of every worker by its node id, from GET /api/stats (the server needs WS_API_KEY=`apiKey`). */
export async function workerPids(url: string, apiKey: string): Promise<Map<string, number>> {
  const response = await fetch(`${httpBase(url).replace(/\/$/, '')}/api/stats`, { headers: { Authorization: `Bearer ${apiKey}` } });
  assert.equal(response.status, 200, `/api/stats: ${response.status}`);
  const { nodes } = (await response.json()) as { nodes: Array<{ id: string; pid: number }> };
  return new Map(nodes.map((node) => [node.id, node.pid]));
}
