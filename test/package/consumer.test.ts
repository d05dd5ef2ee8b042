/**
 * The package as a new user gets it: `npm pack`, the tarball installed into a fresh app,
 * whose strict TypeScript (NodeNext, skipLibCheck off) must compile against the shipped
 * declarations, and whose ESM code must run. The repository's own tests import src/ and
 * would never see a declaration that names a type the package does not ship (`ws`'s did).
 *
 * The app imports and uses every export that src/index.ts lists, so an export added there
 * is checked too. Installing needs the npm registry (or npm's cache): CI reaches it, so
 * this test never skips.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cliEnv } from '../helpers/cli.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  devDependencies: Record<string, string>;
};

/** Building, packing and installing: a cold npm cache downloads every dependency. */
const INSTALL_TIMEOUT_MS = 300_000;
const TEST_TIMEOUT_MS = 120_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The environment of a user's shell: npm's own configuration files, cache and registry,
 * but nothing of the `npm test` (or `npm run`) this may run under, which would point npm
 * at this repository (npm_config_local_prefix) instead of the app, nor a developer's own
 * configuration variables (REDIS_ENABLED would send the server to Redis).
 */
function userEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig', 'npm_config_registry']);
  return Object.fromEntries(Object.entries(cliEnv()).filter(([name]) => !name.startsWith('npm_') || keep.has(name)));
}

function run(command: string, args: string[], cwd: string, timeout = TEST_TIMEOUT_MS): Promise<Run> {
  return new Promise((resolvePromise) => {
    execFile(command, args, { cwd, env: userEnv(), timeout, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolvePromise({ code, stdout, stderr: error !== null && typeof error.code !== 'number' ? `${error.message}\n${stderr}` : stderr });
    });
  });
}

function assertSucceeded(result: Run, what: string): void {
  assert.equal(result.code, 0, `${what} failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
}

/** The names src/index.ts exports, values and types apart. */
function publicExports(): { values: string[]; types: string[] } {
  const source = readFileSync(join(root, 'src/index.ts'), 'utf8');
  assert.doesNotMatch(source, /export\s+\*/, 'src/index.ts names its exports (export * is not enumerated here)');
  const values: string[] = [];
  const types: string[] = [];
  for (const match of source.matchAll(/export\s+(type\s+)?\{([^}]*)\}\s*from/g)) {
    for (const item of (match[2] ?? '').split(',').map((part) => part.trim())) {
      if (item === '') continue;
      const name = item.replace(/^type\s+/, '').split(/\s+as\s+/).pop()?.trim() ?? '';
      (match[1] !== undefined || item.startsWith('type ') ? types : values).push(name);
    }
  }
  assert.ok(values.length > 0 && types.length > 0, 'src/index.ts exports values and types');
  return { values, types };
}

/** The app's tsconfig: what a strict Node application has, declarations of libraries checked too. */
const APP_TSCONFIG = {
  compilerOptions: {
    strict: true,
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    target: 'ES2022',
    skipLibCheck: false,
    types: ['node'],
    noEmit: true,
  },
  include: ['consumer.ts'],
};

/** Uses the API as the README does; the generated part below names every export. */
const CONSUMER_USAGE = `
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

export async function main(): Promise<void> {
  const logger = createLogger('silent');
  const handler = new WebSocketHandler({ logger, broker: new MemoryBroker(), maxMessagesPerMinute: 600 });
  handler
    .onConnect((connection: ConnectionInfo) => {
      const agent: string | undefined = connection.request.headers['user-agent'];
      connection.data.agent = agent;
      const channels: ReadonlySet<ChannelName> = connection.channels;
      const id: ConnectionId = connection.id;
      const user: UserId | null = connection.userId;
      connection.send({ action: 'hello', id, user, roles: [...connection.roles], channels: channels.size });
    })
    .onDisconnect((connection: ConnectionInfo, close: { code: number; reason: string }) => {
      if (close.code === CloseCode.GOING_AWAY) logger.info({ id: connection.id }, close.reason);
    })
    .onSubscribe((connection, channel): SubscribeVerdict => connection.authenticated || !channel.startsWith('private-') || 'private channels need a token')
    .onMessage((_connection, outgoing: OutgoingMessage): MessageVerdict => ({ message: { checked: true, original: outgoing.message } }))
    .onAction(
      'whoami',
      (context: ActionContext, data: unknown) => {
        if (context.connection.userId === null) throw new SwitchboardError(ErrorCode.FORBIDDEN, 'sign in first');
        const request: RequestId | null = context.id;
        return { user: context.connection.userId, request, data, nodeId: context.handler.nodeId };
      },
      { requireAuth: true } satisfies ActionOptions,
    );
  const http = createHttpServer();
  const detach: () => void = handler.attach(http, { path: '/ws' } satisfies AttachOptions);
  detach();
  http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => handler.handleUpgrade(request, socket, head));
  const delivered: number = await handler.publish('news', { text: 'hi' }, { recipients: ['42', 7] });
  logger.info({ delivered, refusal: HandshakeRefusal.UNAUTHORIZED.status });
  await handler.close();

  const server: SwitchboardServer = createServer({ port: 0, host: '127.0.0.1', logger } satisfies HandlerOptions);
  const address: ListenAddress = await server.listen();
  logger.info(address.url);
  await server.close();

  const config: SwitchboardConfig = { port: 0, logLevel: 'warn' satisfies LogLevelName, redis: { host: '127.0.0.1' } };
  const options: SwitchboardOptions = loadConfig({ env: {}, options: config } satisfies LoadConfigInput);
  const resolved: SwitchboardOptions = resolveOptions({ port: DEFAULTS.port });
  const ssl: SslOptions = options.ssl;
  const auth: AuthOptions = resolved.auth;
  const redis: RedisOptions = options.redis;
  logger.info({ ssl: ssl.enabled, issuer: auth.issuer, redis: redis.prefix });

  const context: BrokerContext = { logger, nodeId: 'node-1', inWorker: false, tuning: { nodeTtlMs: 5000 } satisfies RedisBrokerTuning };
  const brokers: BrokerWithView[] = [
    createBroker(options, context),
    new MemoryBroker(),
    new RedisBroker(redis, { logger, commandTimeoutMs: 1000 } satisfies RedisBrokerOptions),
    new ClusterBroker({ requestTimeoutMs: 1000 } satisfies ClusterBrokerOptions),
  ];
  const relay = new ClusterRelay((worker: number, message: unknown) => worker >= 0 && message !== undefined);
  relay.close();
  for (const broker of brokers) {
    const asBroker: Broker = broker;
    const view: ClusterView = broker;
    const nodes: NodeReport[] = await view.nodes().catch((error: unknown) => {
      if (error instanceof RequestTimeoutError || error instanceof ClusterUnavailableError) return [];
      throw error;
    });
    const counts: ChannelCount[] = await view.channels();
    const members: MemberInfo[] = await view.members('news');
    const target: DisconnectTarget = { userId: '42' } as DisconnectTarget;
    const result: DisconnectResult = await view.disconnect(target);
    logger.info({ nodes: nodes.length, counts: counts.length, members: members.length, result, ready: asBroker.notReadyReason() });
    await asBroker.close();
  }
  try {
    resolveOptions({ port: -1 });
  } catch (error) {
    if (error instanceof ConfigError) logger.warn(error.message);
    if (error instanceof ClusterUnavailableError && error.code === ClusterErrorCode.REQUEST_TIMEOUT) logger.warn('timeout');
  }
}
`;

/** Imports every export of src/index.ts and names each once, so none can be missing or broken. */
function consumerSource(names: { values: string[]; types: string[] }): string {
  const imports = [...names.values, ...names.types.map((name) => `type ${name}`)].join(',\n  ');
  return [
    `import {\n  ${imports},\n} from '${packageJson.name}';`,
    CONSUMER_USAGE,
    `/** Every value export. */\nexport const everyValue = [${names.values.join(', ')}] as const;`,
    `/** Every type export. */\nexport type EveryType = [${names.types.join(', ')}];`,
    '',
  ].join('\n');
}

/** Starts and stops a server through the installed package, and reports what it exported. */
const ESM_SCRIPT = `
import * as switchboard from '${packageJson.name}';
import { createServer } from '${packageJson.name}';

const server = createServer({ port: 0, host: '127.0.0.1', logLevel: 'silent' });
const address = await server.listen();
await server.close();
console.log('RESULT ' + JSON.stringify({ address, exports: Object.keys(switchboard).sort() }));
`;

/** What require() makes of the package: it is ESM only. */
const REQUIRE_SCRIPT = `
try {
  require('${packageJson.name}');
  console.log('RESULT loaded');
} catch (error) {
  console.log('RESULT ' + error.code);
}
`;

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path).map((file) => join(entry.name, file)) : [entry.name];
  });
}

void describe('the packed package in a fresh app', { timeout: INSTALL_TIMEOUT_MS * 2 + TEST_TIMEOUT_MS * 4 }, () => {
  const names = publicExports();
  let work = '';
  let app = '';
  let installed = '';
  let install: Run = { code: 0, stdout: '', stderr: '' };

  before(
    async () => {
      work = realpathSync(mkdtempSync(join(tmpdir(), 'switchboard-package-')));
      // npm pack runs `prepare` (the build), which would rewrite dist/ under the other
      // tests that use it: pack a copy of the working tree instead, with the same node_modules.
      const staging = join(work, 'staging');
      const skip = new Set(['node_modules', 'dist', '.git', 'coverage']);
      cpSync(root, staging, { recursive: true, filter: (source) => !skip.has(relative(root, source).split(/[\\/]/)[0] ?? '') });
      symlinkSync(join(root, 'node_modules'), join(staging, 'node_modules'), 'dir');
      const tarballs = join(work, 'tarballs');
      mkdirSync(tarballs);
      assertSucceeded(await run('npm', ['pack', '--pack-destination', tarballs], staging, INSTALL_TIMEOUT_MS), 'npm pack');
      const [tarball] = readdirSync(tarballs).filter((file) => file.endsWith('.tgz'));
      assert.ok(tarball !== undefined, 'npm pack wrote a tarball');

      app = join(work, 'app');
      mkdirSync(app);
      writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'switchboard-consumer', private: true, type: 'module' }, null, 2)}\n`);
      const typesNode = `@types/node@${packageJson.devDependencies['@types/node'] ?? '*'}`;
      install = await run(
        'npm',
        ['install', join(tarballs, tarball), typesNode, '--no-audit', '--no-fund', '--prefer-offline'],
        app,
        INSTALL_TIMEOUT_MS,
      );
      assertSucceeded(install, 'npm install of the tarball');
      installed = join(app, 'node_modules', packageJson.name);
    },
    { timeout: INSTALL_TIMEOUT_MS * 2 },
  );
  after(() => {
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  void test('installing it asks the app to approve no install script (npm 11 warns of none)', () => {
    // Not of a dependency (bufferutil's build was one), nor of the package itself: npm lists
    // `prepare` for a tarball or git dependency, so the package builds in `preprepare` instead.
    assert.doesNotMatch(install.stderr, /install-scripts|allowScripts/, install.stderr);
  });

  void test('a strict NodeNext app that uses every export type-checks, declarations included', { timeout: TEST_TIMEOUT_MS }, async () => {
    writeFileSync(join(app, 'tsconfig.json'), `${JSON.stringify(APP_TSCONFIG, null, 2)}\n`);
    writeFileSync(join(app, 'consumer.ts'), consumerSource(names));
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', join(app, 'tsconfig.json')], app);
    assertSucceeded(result, 'tsc in the app');
  });

  void test('an ESM script imports it, starts a server on port 0 and closes it', { timeout: TEST_TIMEOUT_MS }, async () => {
    writeFileSync(join(app, 'start.mjs'), ESM_SCRIPT);
    const result = await run(process.execPath, ['start.mjs'], app);
    assertSucceeded(result, 'the ESM script');
    const line = result.stdout.split('\n').find((text) => text.startsWith('RESULT '));
    assert.ok(line !== undefined, result.stdout);
    const { address, exports } = JSON.parse(line.slice('RESULT '.length)) as { address: { host: string; port: number; url: string }; exports: string[] };
    assert.equal(address.host, '127.0.0.1');
    assert.ok(address.port > 0, `a real port: ${address.port}`);
    assert.deepEqual(exports, [...names.values].sort(), 'the module exports exactly the values src/index.ts lists');
  });

  void test('require() refuses it: the package is ESM only', { timeout: TEST_TIMEOUT_MS }, async () => {
    writeFileSync(join(app, 'require.cjs'), REQUIRE_SCRIPT);
    const result = await run(process.execPath, ['require.cjs'], app);
    assertSucceeded(result, 'the require script');
    assert.match(result.stdout, /^RESULT (ERR_PACKAGE_PATH_NOT_EXPORTED|ERR_REQUIRE_ESM)$/m);
  });

  void test('it ships what a user needs, and every source map resolves inside it', () => {
    for (const file of ['README.md', 'CHANGELOG.md', 'LICENSE', 'dashboard/index.html', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'src/index.ts']) {
      assert.ok(existsSync(join(installed, file)), `the package ships ${file}`);
    }
    assert.ok(!existsSync(join(installed, 'test')), 'the tests are not shipped');
    const files = filesUnder(join(installed, 'dist'));
    for (const file of files.filter((name) => name.endsWith('.js'))) {
      assert.ok(existsSync(join(installed, 'src', file.replace(/\.js$/, '.ts'))), `dist/${file} was built from a source that still exists`);
    }
    const maps = files.filter((name) => name.endsWith('.map'));
    assert.ok(maps.some((name) => name.endsWith('.js.map')) && maps.some((name) => name.endsWith('.d.ts.map')), 'source and declaration maps are shipped');
    for (const map of maps) {
      const path = join(installed, 'dist', map);
      const { sources, sourceRoot } = JSON.parse(readFileSync(path, 'utf8')) as { sources: string[]; sourceRoot?: string };
      for (const source of sources) {
        const target = resolve(dirname(path), sourceRoot ?? '', source);
        assert.ok(!relative(installed, target).startsWith('..'), `${map} points outside the package: ${source}`);
        assert.ok(existsSync(target), `${map} points at ${source}, which is not shipped`);
      }
    }
  });
});
