/**
 * The `switchboard` command as users run it: the built dist/cli/main.js in a child
 * process, each test in its own temp working directory with a controlled environment
 * (SPEC §1 running it and configuration, §3 graceful shutdown).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ClientOptions } from 'ws';
import { CloseCode } from '../../src/codes.js';
import { TestClient, isMessageOn } from '../helpers/client.js';
import {
  occupyPort,
  GENEROUS_MS,
  PACKAGE_JSON_PATH,
  cliEnv,
  cliProcessesIn,
  daemonPidFromOutput,
  freePort,
  isAlive,
  killCliProcessesInAfter,
  killDaemonAfter,
  linesOf,
  listeningUrlIn,
  parseLogLines,
  readPidFile,
  runCli,
  spawnCli,
  tempDir,
  waitUntil,
  within,
  type CliResult,
} from '../helpers/cli.js';

const TEST_TIMEOUT_MS = 90_000;
const EXIT_BAD_CONFIG = 2;

/** Listen on loopback only and on any free port unless a test says otherwise. */
function serverEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return cliEnv({ WS_HOST: '127.0.0.1', WS_PORT: '0', ...overrides });
}

/** Exactly one line on stderr, mentioning `mention`, and no stack trace. */
function assertOneCleanLine(stderr: string, mention: string | RegExp): void {
  const lines = linesOf(stderr);
  assert.equal(lines.length, 1, `expected exactly one line on stderr, got:\n${stderr}`);
  if (typeof mention === 'string') assert.ok(stderr.includes(mention), `stderr should mention ${mention}: ${stderr}`);
  else assert.match(stderr, mention);
  assert.doesNotMatch(stderr, /^\s+at\s/m, 'no stack trace on stderr');
}

/** `start` with this configuration must refuse: exit 2, one line naming `mention`, never listening. */
async function assertStartRefused(t: TestContext, options: { env?: Record<string, string>; args?: string[]; cwd?: string }, mention: string | RegExp): Promise<CliResult> {
  const cwd = options.cwd ?? tempDir(t);
  const result = await runCli(t, ['start', ...(options.args ?? [])], { cwd, env: serverEnv(options.env) });
  assert.equal(result.code, EXIT_BAD_CONFIG, `exit code (stderr: ${result.stderr})`);
  assertOneCleanLine(result.stderr, mention);
  assert.equal(listeningUrlIn(parseLogLines(result.stdout)), null, 'the server must not have started');
  return result;
}

/** `check-config` output as a map from environment variable to shown value. */
function effectiveValues(stdout: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const match = /^\s+([A-Z][A-Z0-9_]*)\s+(.*?)\s+\(([\w.]+)\)$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) values.set(match[1], match[2]);
  }
  return values;
}

async function checkConfig(t: TestContext, cwd: string, env: Record<string, string> = {}, args: string[] = []): Promise<Map<string, string>> {
  const result = await runCli(t, ['check-config', ...args], { cwd, env: cliEnv(env) });
  assert.equal(result.code, 0, `check-config exit code (stderr: ${result.stderr})`);
  return effectiveValues(result.stdout);
}

async function connect(t: TestContext, url: string, options: ClientOptions = {}): Promise<TestClient> {
  const client = await TestClient.connect(url, options);
  t.after(() => client.close());
  return client;
}

const httpBase = (wsUrl: string): string => wsUrl.replace(/^ws/, 'http');

/** A self-signed certificate for CN=localhost, made by openssl in `dir`. */
function makeCertificate(dir: string): { cert: string; key: string } {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost'], {
    cwd: dir,
    stdio: 'pipe',
  });
  return { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
}

/** TLS options that trust the test certificate and check it against the name localhost. */
function trusting(cert: string): ClientOptions {
  const options: ClientOptions & { servername: string } = { ca: readFileSync(cert), servername: 'localhost' };
  return options;
}

// ---------------------------------------------------------------------------------------
// Bad configuration: exit 2, one line naming the variable, no stack trace (SPEC §1)
// ---------------------------------------------------------------------------------------

test('WS_PORT=abc stops start-up with exit 2 and one line naming WS_PORT', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await assertStartRefused(t, { env: { WS_PORT: 'abc' } }, 'WS_PORT');
});

test('WS_HEARTBEAT_INTERVAL=-1 stops start-up with exit 2 and one line naming WS_HEARTBEAT_INTERVAL', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await assertStartRefused(t, { env: { WS_HEARTBEAT_INTERVAL: '-1' } }, 'WS_HEARTBEAT_INTERVAL');
});

test('WS_LOG_LEVEL=loud stops start-up with exit 2 and one line naming WS_LOG_LEVEL', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await assertStartRefused(t, { env: { WS_LOG_LEVEL: 'loud' } }, 'WS_LOG_LEVEL');
});

test('WS_SSL_ENABLED=true without WS_SSL_CERT stops start-up with exit 2 and one line naming WS_SSL_CERT', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await assertStartRefused(t, { env: { WS_SSL_ENABLED: 'true' } }, 'WS_SSL_CERT');
});

test('WS_SSL_ENABLED=true with a missing WS_SSL_CERT file stops start-up with exit 2 and one line naming WS_SSL_CERT', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { key } = makeCertificate(dir);
  await assertStartRefused(t, { cwd: dir, env: { WS_SSL_ENABLED: 'true', WS_SSL_CERT: join(dir, 'no-such-cert.pem'), WS_SSL_KEY: key } }, 'WS_SSL_CERT');
});

test('WS_SSL_ENABLED=true with a missing WS_SSL_KEY file stops start-up with exit 2 and one line naming WS_SSL_KEY', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { cert } = makeCertificate(dir);
  await assertStartRefused(t, { cwd: dir, env: { WS_SSL_ENABLED: 'true', WS_SSL_CERT: cert, WS_SSL_KEY: join(dir, 'no-such-key.pem') } }, 'WS_SSL_KEY');
});

test('WS_SSL_CERT naming a directory (not a readable file) stops start-up with exit 2 and one line naming WS_SSL_CERT', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { key } = makeCertificate(dir);
  const notAFile = join(dir, 'certs');
  mkdirSync(notAFile);
  await assertStartRefused(t, { cwd: dir, env: { WS_SSL_ENABLED: 'true', WS_SSL_CERT: notAFile, WS_SSL_KEY: key } }, 'WS_SSL_CERT');
});

test('WS_SSL_CERT naming a file that is not a PEM certificate stops start-up with exit 2 and one line naming WS_SSL_CERT', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { cert, key } = makeCertificate(dir);
  writeFileSync(cert, 'this is not a certificate\n');
  await assertStartRefused(t, { cwd: dir, env: { WS_SSL_ENABLED: 'true', WS_SSL_CERT: cert, WS_SSL_KEY: key } }, 'WS_SSL_CERT');
});

test('an unknown flag stops start-up with exit 2 and one line naming the flag', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await assertStartRefused(t, { args: ['--no-such-flag'] }, '--no-such-flag');
});

test('a misspelt flag with a value after it (start --prot 9000) is one plain usage line, quotes balanced, exit 2', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const result = await assertStartRefused(t, { args: ['--prot', '9000'] }, '--prot');
  assert.equal(result.stderr, "switchboard: unknown option '--prot' (try: switchboard --help)\n");
  assert.equal(result.stdout, '');
});

test('an argument too many is one usage line; under npm (npm start --port 9000) it says where flags go', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const plain = await assertStartRefused(t, { args: ['9000'] }, "unexpected argument '9000'");
  assert.equal(plain.stderr, "switchboard: unexpected argument '9000'\n");
  const underNpm = await assertStartRefused(t, { args: ['9000'], env: { npm_lifecycle_event: 'start' } }, "unexpected argument '9000'");
  assert.equal(underNpm.stderr, "switchboard: unexpected argument '9000' (with npm, options go after --: npm start -- --port 9000)\n");
});

test('a flag that needs a value given none stops start-up with exit 2 and one line naming the flag', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  for (const args of [['--port'], ['--port', '--host', '127.0.0.1']]) {
    const result = await assertStartRefused(t, { args }, '--port');
    assert.equal(result.stderr, "switchboard: option '--port' needs a value (--port N)\n", `for ${args.join(' ')}`);
  }
  const token = await runCli(t, ['token', '--user'], { cwd: tempDir(t), env: cliEnv({ TOKEN_SECRET: 'a-token-secret-of-at-least-32-bytes-long' }) });
  assert.equal(token.code, EXIT_BAD_CONFIG);
  assertOneCleanLine(token.stderr, "'--user' needs a value");
  assert.equal(token.stdout, '');
});

test('a value given to a flag that takes none (--daemon=yes) stops start-up with exit 2 and one line', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const result = await assertStartRefused(t, { args: ['--daemon=yes'] }, "'--daemon' takes no value");
  assert.match(result.stderr, /^switchboard: /);
});

test('a bad boolean stops start-up with exit 2 and one line naming the variable and every accepted word', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const result = await assertStartRefused(t, { env: { WS_ALLOW_ANONYMOUS: 'maybe' } }, 'WS_ALLOW_ANONYMOUS');
  assert.match(result.stderr, /^switchboard: /);
  for (const word of ['true', 'false', 'yes', 'no', 'on', 'off', '1', '0']) assert.match(result.stderr, new RegExp(`\\b${word}\\b`), `names '${word}': ${result.stderr}`);
  assert.doesNotMatch(result.stderr, /\(true or false\)/);
});

test('a bad --port flag value stops start-up with exit 2 and one line naming the port', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await assertStartRefused(t, { args: ['--port', 'abc'] }, /port/);
});

test('a bad value in the .env file stops start-up with exit 2 and one line naming the variable', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, '.env'), 'WS_MAX_PAYLOAD=lots\n');
  await assertStartRefused(t, { cwd: dir }, 'WS_MAX_PAYLOAD');
});

test('--env-file pointing at a missing file stops start-up with exit 2 and one line naming the file', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  await assertStartRefused(t, { cwd: dir, args: ['--env-file', join(dir, 'missing.env')] }, 'missing.env');
});

// ---------------------------------------------------------------------------------------
// check-config and precedence: defaults < .env < environment < CLI flags (SPEC §1)
// ---------------------------------------------------------------------------------------

test('check-config exits 0 and prints the built-in defaults when nothing is configured', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const values = await checkConfig(t, tempDir(t));
  assert.equal(values.get('WS_HOST'), '0.0.0.0');
  assert.equal(values.get('WS_PORT'), '9501');
  assert.equal(values.get('WS_PATH'), '/');
  assert.equal(values.get('WS_SSL_ENABLED'), 'false');
  assert.equal(values.get('WS_LOG_LEVEL'), 'info');
  assert.equal(values.get('WS_HEARTBEAT_INTERVAL'), '30');
  assert.equal(values.get('WS_CONNECTION_TIMEOUT'), '300');
  assert.equal(values.get('WS_MAX_MESSAGES_PER_MINUTE'), '60');
  assert.equal(values.get('WS_MAX_PAYLOAD'), '65536');
  assert.equal(values.get('WS_SHUTDOWN_TIMEOUT'), '10');
});

test('check-config shows a value from the .env file in the working directory over the default', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, '.env'), 'WS_PORT=1111\nWS_HEARTBEAT_INTERVAL=11\n');
  const values = await checkConfig(t, dir);
  assert.equal(values.get('WS_PORT'), '1111');
  assert.equal(values.get('WS_HEARTBEAT_INTERVAL'), '11');
});

test('check-config shows the environment overriding the .env file', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, '.env'), 'WS_PORT=1111\nWS_HEARTBEAT_INTERVAL=11\n');
  const values = await checkConfig(t, dir, { WS_PORT: '2222' });
  assert.equal(values.get('WS_PORT'), '2222');
  assert.equal(values.get('WS_HEARTBEAT_INTERVAL'), '11', 'a .env value the environment does not set still applies');
});

test('check-config shows the --port flag overriding both the environment and the .env file', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, '.env'), 'WS_PORT=1111\nWS_HOST=10.1.1.1\n');
  const values = await checkConfig(t, dir, { WS_PORT: '2222', WS_HOST: '10.2.2.2' }, ['--port', '3333']);
  assert.equal(values.get('WS_PORT'), '3333');
  assert.equal(values.get('WS_HOST'), '10.2.2.2', 'the flag overrides only what it names');
});

test('check-config reads --env-file instead of the .env file in the working directory', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, '.env'), 'WS_PORT=1111\nWS_HEARTBEAT_INTERVAL=11\n');
  writeFileSync(join(dir, 'other.env'), 'WS_PORT=4444\n');
  const values = await checkConfig(t, dir, {}, ['--env-file', join(dir, 'other.env')]);
  assert.equal(values.get('WS_PORT'), '4444');
  assert.equal(values.get('WS_HEARTBEAT_INTERVAL'), '30', 'the working directory .env is not read when --env-file is given');
});

test('check-config maps Swoole log level numbers 0-6 to level names', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const expected = ['debug', 'trace', 'info', 'info', 'warn', 'error', 'silent'];
  for (const [number, name] of expected.entries()) {
    const values = await checkConfig(t, dir, { WS_LOG_LEVEL: String(number) });
    assert.equal(values.get('WS_LOG_LEVEL'), name, `WS_LOG_LEVEL=${number}`);
  }
});

test('check-config never prints the TOKEN_SECRET value', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const secret = 'sw1tchb0ard-very-secret-value';
  const result = await runCli(t, ['check-config'], { cwd: tempDir(t), env: cliEnv({ TOKEN_SECRET: secret }) });
  assert.equal(result.code, 0);
  assert.ok(!result.stdout.includes(secret) && !result.stderr.includes(secret), 'the secret must be masked');
});

// ---------------------------------------------------------------------------------------
// start: serving clients
// ---------------------------------------------------------------------------------------

test('start serves WebSocket clients: two clients exchange a channel message', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const cli = spawnCli(t, ['start'], { cwd: tempDir(t), env: serverEnv() });
  const url = await cli.listeningUrl();
  const alice = await connect(t, url);
  const bob = await connect(t, url);
  assert.equal((await alice.subscribe('chat.room.1')).success, true);
  assert.equal((await bob.subscribe('chat.room.1')).success, true);
  const ack = await alice.publish('chat.room.1', { text: 'hello through the CLI' });
  assert.equal(ack.action, 'message_sent');
  assert.equal(ack.recipients_count, 2);
  const received = await bob.next(isMessageOn('chat.room.1'));
  assert.deepEqual(received.message, { text: 'hello through the CLI' });
  assert.equal(received.sender, alice.welcome.connection_id);
});

test('start answers GET /healthz with 200', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const cli = spawnCli(t, ['start'], { cwd: tempDir(t), env: serverEnv() });
  const url = await cli.listeningUrl();
  const response = await fetch(`${httpBase(url)}healthz`);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { status: 'ok' });
});

test('start with WS_PORT=0 logs the port it chose in the "listening on" line', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const cli = spawnCli(t, ['start'], { cwd: tempDir(t), env: serverEnv() });
  const url = new URL(await cli.listeningUrl());
  assert.notEqual(Number(url.port), 0);
  const response = await fetch(`http://127.0.0.1:${url.port}/healthz`);
  assert.equal(response.status, 200);
});

test('start listens on the port from the .env file in the working directory', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  writeFileSync(join(dir, '.env'), `WS_PORT=${port}\nWS_HOST=127.0.0.1\n`);
  const cli = spawnCli(t, ['start'], { cwd: dir, env: cliEnv() });
  assert.equal(new URL(await cli.listeningUrl()).port, String(port));
});

test('start --port listens on the flag port over WS_PORT', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const port = await freePort();
  const cli = spawnCli(t, ['start', '--port', String(port)], { cwd: tempDir(t), env: serverEnv({ WS_PORT: '1' }) });
  assert.equal(new URL(await cli.listeningUrl()).port, String(port));
});

// ---------------------------------------------------------------------------------------
// Graceful shutdown (SPEC §3)
// ---------------------------------------------------------------------------------------

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} closes every connected client with 1001 and the process exits 0`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const cli = spawnCli(t, ['start'], { cwd: tempDir(t), env: serverEnv() });
    const url = await cli.listeningUrl();
    const clients = [await connect(t, url), await connect(t, url), await connect(t, url)];
    cli.child.kill(signal);
    const closes = await within(Promise.all(clients.map((client) => client.closed)), GENEROUS_MS, 'every client to be closed');
    for (const close of closes) assert.equal(close.code, CloseCode.GOING_AWAY);
    const result = await cli.waitForExit();
    assert.equal(result.signal, null, `the process ended by ${String(result.signal)} instead of exiting`);
    assert.equal(result.code, 0, `exit code (stderr: ${result.stderr})`);
  });
}

test('a second SIGTERM during shutdown does not kill the process: it still exits 0', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const cli = spawnCli(t, ['start'], { cwd: tempDir(t), env: serverEnv({ WS_SHUTDOWN_TIMEOUT: '2' }) });
  const url = await cli.listeningUrl();
  // A client that never answers the close frame keeps the server draining for a while.
  const client = await connect(t, url);
  client.socket.pause();
  cli.child.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 100));
  cli.child.kill('SIGTERM');
  const result = await cli.waitForExit();
  assert.equal(result.signal, null, `the process ended by ${String(result.signal)} instead of exiting`);
  assert.equal(result.code, 0, `exit code (stderr: ${result.stderr})`);
});

// ---------------------------------------------------------------------------------------
// Port in use
// ---------------------------------------------------------------------------------------

test('a port already in use exits 1 with exactly one plain line on stderr saying the port is in use, and nothing on stdout', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const port = await occupyPort(t);
  const result = await runCli(t, ['start'], { cwd: tempDir(t), env: serverEnv({ WS_PORT: String(port) }) });
  assert.equal(result.code, 1, `exit code (stderr: ${result.stderr})`);
  assertOneCleanLine(result.stderr, /in use/i);
  assert.match(result.stderr, new RegExp(`^switchboard: cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use `));
  assert.equal(result.stdout, '', 'no log line repeats it on stdout');
});

// ---------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------

test('with WS_SSL_ENABLED, WS_SSL_CERT and WS_SSL_KEY a wss:// client connects and gets the welcome frame', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { cert, key } = makeCertificate(dir);
  const cli = spawnCli(t, ['start'], { cwd: dir, env: serverEnv({ WS_SSL_ENABLED: 'true', WS_SSL_CERT: cert, WS_SSL_KEY: key }) });
  const url = await cli.listeningUrl();
  assert.match(url, /^wss:\/\//);
  const client = await connect(t, url, trusting(cert));
  assert.equal(client.welcome.action, 'welcome');
  assert.equal(typeof client.welcome.connection_id, 'string');
});

test('with TLS enabled GET /healthz over https answers 200', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { cert, key } = makeCertificate(dir);
  const cli = spawnCli(t, ['start'], { cwd: dir, env: serverEnv({ WS_SSL_ENABLED: 'true', WS_SSL_CERT: cert, WS_SSL_KEY: key }) });
  const { port } = new URL(await cli.listeningUrl());
  const status = await within(
    new Promise<number | undefined>((resolve, reject) => {
      const request = httpsRequest({ host: '127.0.0.1', port, path: '/healthz', ca: readFileSync(cert), servername: 'localhost', agent: false }, (response) => {
        response.resume();
        resolve(response.statusCode);
      });
      request.once('error', reject);
      request.end();
    }),
    GENEROUS_MS,
    'an https answer',
  );
  assert.equal(status, 200);
});

// ---------------------------------------------------------------------------------------
// Daemon: start --daemon, the pid file, the log file, stop (SPEC §1)
// ---------------------------------------------------------------------------------------

interface Daemon {
  result: CliResult;
  pid: number;
  url: string;
}

/**
 * Runs `start --daemon` and returns once the parent has exited. The daemon is killed
 * after the test if it still runs, whatever the test did.
 */
/** Waits until the daemon's log file holds its "listening on" line. */
async function waitForListeningLine(logFile: string, url: string): Promise<void> {
  await waitUntil(
    () => {
      try {
        return listeningUrlIn(parseLogLines(readFileSync(logFile, 'utf8'))) === url;
      } catch {
        return false;
      }
    },
    GENEROUS_MS,
    `a "listening on" line in ${logFile}`,
  );
}

async function startDaemon(t: TestContext, cwd: string, env: NodeJS.ProcessEnv, pidFile: string): Promise<Daemon> {
  killCliProcessesInAfter(t, cwd);
  let pid: number | null = null;
  killDaemonAfter(t, () => pid ?? readPidFile(pidFile));
  const result = await runCli(t, ['start', '--daemon'], { cwd, env });
  pid = daemonPidFromOutput(result.stdout) ?? readPidFile(pidFile);
  assert.equal(result.code, 0, `start --daemon exit code (stderr: ${result.stderr})`);
  assert.notEqual(pid, null, `start --daemon should name the daemon's pid: ${result.stdout}`);
  const url = /\bon (wss?:\/\/[^\s;]+)/.exec(result.stdout)?.[1];
  assert.ok(url !== undefined, `start --daemon should print the URL: ${result.stdout}`);
  return { result, pid: pid as number, url };
}

function daemonFiles(dir: string): { pidFile: string; logFile: string; env: NodeJS.ProcessEnv } {
  const pidFile = join(dir, 'run', 'server.pid');
  const logFile = join(dir, 'logs', 'server.log');
  mkdirSync(join(dir, 'run'));
  mkdirSync(join(dir, 'logs'));
  return { pidFile, logFile, env: serverEnv({ WS_PID_FILE: pidFile, WS_LOG_FILE: logFile }) };
}

test('start --daemon exits 0 while the detached server keeps running and accepts clients', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { env, pidFile } = daemonFiles(dir);
  const daemon = await startDaemon(t, dir, env, pidFile);
  assert.equal(daemon.result.code, 0);
  assert.ok(isAlive(daemon.pid), 'the daemon outlives the command that started it');
  const client = await connect(t, daemon.url);
  assert.equal(client.welcome.action, 'welcome');
});

test('start --daemon writes the live daemon pid to WS_PID_FILE', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { env, pidFile } = daemonFiles(dir);
  const daemon = await startDaemon(t, dir, env, pidFile);
  const pid = readPidFile(pidFile);
  assert.equal(pid, daemon.pid);
  assert.ok(pid !== null && isAlive(pid), 'the pid file names a live process');
});

test('start --daemon writes its JSON log lines to WS_LOG_FILE', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { env, pidFile, logFile } = daemonFiles(dir);
  const daemon = await startDaemon(t, dir, env, pidFile);
  let lines: ReturnType<typeof parseLogLines> = [];
  await waitUntil(
    () => {
      try {
        lines = parseLogLines(readFileSync(logFile, 'utf8'));
      } catch {
        return false;
      }
      return listeningUrlIn(lines) !== null;
    },
    GENEROUS_MS,
    `a "listening on" line in ${logFile}`,
  );
  assert.equal(listeningUrlIn(lines), daemon.url);
  const listening = lines.find((line) => typeof line.msg === 'string' && line.msg.startsWith('listening on'));
  assert.equal(listening?.pid, daemon.pid, 'the log line comes from the daemon');
  assert.equal(typeof listening?.level, 'number');
});

test('start --daemon without WS_PID_FILE and WS_LOG_FILE uses switchboard.pid and switchboard.log in the working directory', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const pidFile = join(dir, 'switchboard.pid');
  const logFile = join(dir, 'switchboard.log');
  const daemon = await startDaemon(t, dir, serverEnv(), pidFile);
  assert.equal(readPidFile(pidFile), daemon.pid);
  await waitForListeningLine(logFile, daemon.url);
});

test('start --daemon creates a missing WS_LOG_FILE directory, as the foreground logger does', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const pidFile = join(dir, 'server.pid');
  const logFile = join(dir, 'not', 'yet', 'server.log');
  const daemon = await startDaemon(t, dir, serverEnv({ WS_PID_FILE: pidFile, WS_LOG_FILE: logFile }), pidFile);
  await waitForListeningLine(logFile, daemon.url);
});

test('start --daemon whose WS_PID_FILE cannot be written fails with one line and leaves no server running', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  killCliProcessesInAfter(t, dir);
  writeFileSync(join(dir, 'a-file'), '');
  const pidFile = join(dir, 'a-file', 'server.pid');
  const result = await runCli(t, ['start', '--daemon'], { cwd: dir, env: serverEnv({ WS_PID_FILE: pidFile, WS_LOG_FILE: join(dir, 'server.log') }) });
  assert.notEqual(result.code, 0);
  assert.notEqual(result.code, null);
  assertOneCleanLine(result.stderr, pidFile);
  // The daemon child cannot be found through the pid file, so look for any server process in this directory.
  await waitUntil(() => cliProcessesIn(dir).length === 0, GENEROUS_MS, `no switchboard process left running in ${dir} (found ${cliProcessesIn(dir).join(', ')})`);
});

test('stop --pid-file closes the daemon clients with 1001, waits until the daemon is gone and exits 0', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { env, pidFile } = daemonFiles(dir);
  const daemon = await startDaemon(t, dir, env, pidFile);
  const client = await connect(t, daemon.url);
  const stop = await runCli(t, ['stop', '--pid-file', pidFile], { cwd: dir, env: cliEnv() });
  assert.equal(stop.code, 0, `stop exit code (stderr: ${stop.stderr})`);
  assert.equal(isAlive(daemon.pid), false, 'stop returns only after the daemon has exited');
  assert.equal((await within(client.closed, GENEROUS_MS, 'the client to be closed')).code, CloseCode.GOING_AWAY);
});

test('stop works even when the configuration has gone bad since the daemon started', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { env, pidFile } = daemonFiles(dir);
  const daemon = await startDaemon(t, dir, env, pidFile);
  writeFileSync(join(dir, '.env'), 'WS_PORT=abc\n');
  const stop = await runCli(t, ['stop', '--pid-file', pidFile], { cwd: dir, env: cliEnv() });
  assert.equal(stop.code, 0, `stop exit code (stderr: ${stop.stderr})`);
  assert.equal(isAlive(daemon.pid), false);
});

test('stop finds the daemon through WS_PID_FILE in the environment', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { env, pidFile } = daemonFiles(dir);
  const daemon = await startDaemon(t, dir, env, pidFile);
  const stop = await runCli(t, ['stop'], { cwd: dir, env });
  assert.equal(stop.code, 0, `stop exit code (stderr: ${stop.stderr})`);
  assert.equal(isAlive(daemon.pid), false);
});

test('stop in the working directory stops a daemon started there with the default pid file', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const daemon = await startDaemon(t, dir, serverEnv(), join(dir, 'switchboard.pid'));
  const stop = await runCli(t, ['stop'], { cwd: dir, env: cliEnv() });
  assert.equal(stop.code, 0, `stop exit code (stderr: ${stop.stderr})`);
  assert.equal(isAlive(daemon.pid), false);
});

test('the daemon removes its pid file when stopped', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { env, pidFile } = daemonFiles(dir);
  const daemon = await startDaemon(t, dir, env, pidFile);
  const stop = await runCli(t, ['stop', '--pid-file', pidFile], { cwd: dir, env: cliEnv() });
  assert.equal(stop.code, 0, `stop exit code (stderr: ${stop.stderr})`);
  assert.equal(isAlive(daemon.pid), false);
  assert.equal(readPidFile(pidFile), null, `the pid file ${pidFile} should be gone once the daemon has exited`);
});

test('stop without a running daemon exits non-zero with one line', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const result = await runCli(t, ['stop', '--pid-file', join(dir, 'none.pid')], { cwd: dir, env: cliEnv() });
  assert.notEqual(result.code, 0);
  assert.notEqual(result.code, null);
  assertOneCleanLine(result.stderr, 'none.pid');
});

test('stop with a pid file naming a dead process exits non-zero with one line and removes the stale file', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  // A pid that certainly belonged to a process that has exited: a child we spawned and awaited.
  const deadPid = Number(execFileSync(process.execPath, ['-p', 'process.pid'], { encoding: 'utf8' }).trim());
  assert.equal(isAlive(deadPid), false);
  const pidFile = join(dir, 'stale.pid');
  writeFileSync(pidFile, `${deadPid}\n`);
  const result = await runCli(t, ['stop', '--pid-file', pidFile], { cwd: dir, env: cliEnv() });
  assert.notEqual(result.code, 0);
  assert.notEqual(result.code, null);
  assertOneCleanLine(result.stderr, String(deadPid));
  assert.equal(readPidFile(pidFile), null, 'the stale pid file is removed');
});

test('a second start --daemon while one runs refuses with one line and leaves the first running', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const { env, pidFile } = daemonFiles(dir);
  const first = await startDaemon(t, dir, env, pidFile);
  let secondPid: number | null = null;
  killDaemonAfter(t, () => secondPid);
  const second = await runCli(t, ['start', '--daemon'], { cwd: dir, env });
  secondPid = daemonPidFromOutput(second.stdout);
  assert.notEqual(second.code, 0);
  assert.notEqual(second.code, null);
  assertOneCleanLine(second.stderr, /already running/i);
  assert.equal(secondPid, null, 'no second daemon was started');
  assert.ok(isAlive(first.pid), 'the first daemon keeps running');
  assert.equal(readPidFile(pidFile), first.pid, 'the pid file still names the first daemon');
});

// ---------------------------------------------------------------------------------------
// Usage
// ---------------------------------------------------------------------------------------

test('--help exits 0 and prints the usage with every command', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const result = await runCli(t, ['--help'], { cwd: tempDir(t), env: cliEnv() });
  assert.equal(result.code, 0);
  assert.match(result.stdout, /^Usage: switchboard/m);
  for (const command of ['start', 'stop', 'check-config']) assert.match(result.stdout, new RegExp(`^\\s+${command}\\b`, 'm'));
  assert.equal(result.stderr, '');
});

test('--version prints the package.json version', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { version } = JSON.parse(readFileSync(PACKAGE_JSON_PATH, 'utf8')) as { version: string };
  const result = await runCli(t, ['--version'], { cwd: tempDir(t), env: cliEnv() });
  assert.equal(result.code, 0);
  assert.equal(result.stdout.trim(), version);
});

test('an unknown command exits 2 with one line naming it', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const result = await runCli(t, ['frobnicate'], { cwd: tempDir(t), env: cliEnv() });
  assert.equal(result.code, EXIT_BAD_CONFIG);
  assertOneCleanLine(result.stderr, 'frobnicate');
});

// ---------------------------------------------------------------------------------------
// Log level: Swoole numbers
// ---------------------------------------------------------------------------------------

/** Starts on a known port, waits until /healthz answers, SIGTERMs, and returns the output. */
async function runUntilHealthyThenStop(t: TestContext, env: Record<string, string>): Promise<CliResult> {
  const port = await freePort();
  const cli = spawnCli(t, ['start'], { cwd: tempDir(t), env: serverEnv({ WS_PORT: String(port), ...env }) });
  await waitUntil(
    async () => {
      if (!cli.running) throw new Error(`the server exited: ${cli.stderr}`);
      try {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200;
      } catch {
        return false;
      }
    },
    GENEROUS_MS,
    '/healthz to answer',
  );
  cli.child.kill('SIGTERM');
  const result = await cli.waitForExit();
  assert.equal(result.code, 0, `exit code (stderr: ${result.stderr})`);
  return result;
}

test('WS_LOG_LEVEL=4 (Swoole WARNING) logs nothing below warn: no "listening on" line while the server serves', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const result = await runUntilHealthyThenStop(t, { WS_LOG_LEVEL: '4' });
  const lines = parseLogLines(result.stdout);
  assert.equal(listeningUrlIn(lines), null);
  assert.deepEqual(
    lines.filter((line) => typeof line.level === 'number' && line.level < 40),
    [],
  );
});

test('WS_LOG_LEVEL=2 (Swoole INFO) logs the "listening on" line', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const result = await runUntilHealthyThenStop(t, { WS_LOG_LEVEL: '2' });
  assert.notEqual(listeningUrlIn(parseLogLines(result.stdout)), null);
});

// ---------------------------------------------------------------------------------------
// Tokens and permissions (SPEC §1 `switchboard token`, §4, §5)
// ---------------------------------------------------------------------------------------

test('token mints a token that a server with the same TOKEN_SECRET accepts, with its user and role', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const env = { TOKEN_SECRET: 'cli-test-secret' };
  const minted = await runCli(t, ['token', '--user', '42', '--role', 'admin', '--ttl', '15m'], { cwd: dir, env: cliEnv(env) });
  assert.equal(minted.code, 0, `exit code (stderr: ${minted.stderr})`);
  const token = minted.stdout.trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const cli = spawnCli(t, ['start'], { cwd: dir, env: serverEnv({ ...env, WS_ALLOW_ANONYMOUS: 'false' }) });
  const url = await cli.listeningUrl();
  const client = await connect(t, url, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(client.welcome.authenticated, true);
  assert.equal(client.welcome.user_id, 42);
  assert.equal(client.welcome.role, 'admin');
});

test('token without TOKEN_SECRET exits 2 with one line naming TOKEN_SECRET', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const result = await runCli(t, ['token', '--user', '1'], { cwd: tempDir(t), env: cliEnv() });
  assert.equal(result.code, EXIT_BAD_CONFIG);
  assertOneCleanLine(result.stderr, 'TOKEN_SECRET');
  assert.equal(result.stdout, '');
});

test('token without --user, or with a bad --ttl, exits 2 with one line', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  for (const args of [['token'], ['token', '--user', '1', '--ttl', 'soon']]) {
    const result = await runCli(t, args, { cwd: tempDir(t), env: cliEnv({ TOKEN_SECRET: 'x' }) });
    assert.equal(result.code, EXIT_BAD_CONFIG, `${args.join(' ')}: exit code`);
    assertOneCleanLine(result.stderr, args.length === 1 ? '--user' : '--ttl');
  }
});

test('an invalid channels file stops start-up with exit 2 and one line naming the file and the rule', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'channels.json');
  writeFileSync(file, JSON.stringify({ rules: [{ pattern: 'chat.*', subscribe: ['*'], publish: [] }, { pattern: 'a.**.b', subscribe: ['*'], publish: [] }] }));
  const result = await assertStartRefused(t, { cwd: dir, env: { WS_CHANNELS_FILE: file } }, 'WS_CHANNELS_FILE');
  assert.match(result.stderr, /channels\.json/);
  assert.match(result.stderr, /rules\[1\]/);
});

test('check-config never prints TOKEN_SECRET and shows the channels file with its rule count', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'channels.json');
  writeFileSync(file, JSON.stringify({ rules: [{ pattern: '**', subscribe: ['*'], publish: ['authenticated'] }] }));
  const result = await runCli(t, ['check-config'], { cwd: dir, env: cliEnv({ TOKEN_SECRET: 'very-secret-value', WS_CHANNELS_FILE: file }) });
  assert.equal(result.code, 0, result.stderr);
  assert.ok(!result.stdout.includes('very-secret-value'), 'the secret must not be printed');
  const values = effectiveValues(result.stdout);
  assert.equal(values.get('TOKEN_SECRET'), '(set, hidden)');
  assert.equal(values.get('WS_CHANNELS_FILE'), `${file} (1 rule)`);
});
