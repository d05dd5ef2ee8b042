#!/usr/bin/env -S node --
/**
 * The `switchboard` command (SPEC §1). Errors a user can cause (bad configuration, a
 * port in use) print one line and exit non-zero; never a stack trace.
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { mintToken, parseDuration } from '../auth/tokens.js';
import { createBroker } from '../broker/factory.js';
import { loadConfig } from '../config/load.js';
import { DEFAULTS, type SwitchboardOptions } from '../config/options.js';
import { describeOptions } from '../config/resolve.js';
import { ConfigError } from '../errors.js';
import { WebSocketHandler } from '../handler.js';
import { SwitchboardServer } from '../http/server.js';
import { newNodeId } from '../ids.js';
import { createLogger } from '../logger.js';
import { packageVersion } from '../version.js';
import { DAEMON_CHILD_ENV, DEFAULT_DAEMON_LOG, daemonize, removePidFile, reportToParent, stopDaemon, writePidFile } from './daemon.js';
import { serveWorkerMetrics } from './worker-metrics.js';
import { runPrimary, type StartFailure } from './workers.js';
import { openFileLimit, openFileWarning } from './open-file-limit.js';

const EXIT_CONFIG = 2;
const MAX_TOKEN_TTL_SECONDS = 365 * 86400;

const USAGE = `Usage: switchboard <command> [options]

Commands:
  start          start the server
                   --port N  --host H  --env-file F  --workers N  --daemon
  stop           stop a server started with --daemon
                   --pid-file F  --env-file F
  check-config   validate the configuration and print the effective values
                   (takes the same options as start)
  token          print an HS256 token signed with TOKEN_SECRET (development, tests)
                   --user ID  [--role R]  [--ttl 1h]  --env-file F

Configuration comes from defaults < .env < environment < flags; see the README.
`;

class UsageError extends Error {}


const OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  'env-file': { type: 'string' },
  workers: { type: 'string' },
  daemon: { type: 'boolean' },
  'pid-file': { type: 'string' },
  user: { type: 'string' },
  role: { type: 'string' },
  ttl: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** What each option's value looks like, for the line that says one is missing. */
const VALUE_HINTS: Readonly<Record<string, string>> = {
  port: 'N',
  host: 'H',
  'env-file': 'F',
  workers: 'N',
  'pid-file': 'F',
  user: 'ID',
  role: 'R',
  ttl: '1h',
};

/**
 * The command and its options. parseArgs runs lenient and the tokens are checked here:
 * its own errors are several lines long and quote unevenly, and a usage error is one line.
 */
function parse(argv: string[]): { command: string | undefined; values: Record<string, string | boolean | undefined> } {
  const { values, positionals, tokens } = parseArgs({ args: argv, allowPositionals: true, strict: false, tokens: true, options: OPTIONS });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    if (!Object.hasOwn(OPTIONS, token.name)) throw new UsageError(`unknown option '${token.rawName}' (try: switchboard --help)`);
    const option = OPTIONS[token.name as keyof typeof OPTIONS];
    if (option.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`option '${token.rawName}' takes no value`);
      continue;
    }
    // Lenient parsing takes the next argument as the value even when it is another option
    // (`--port --host x`); strict parsing refuses that too.
    if (token.value === undefined || (token.inlineValue === false && token.value.startsWith('-'))) {
      throw new UsageError(`option '${token.rawName}' needs a value (${token.rawName} ${VALUE_HINTS[token.name] ?? 'VALUE'})`);
    }
  }
  if (positionals.length > 1) {
    // `npm start --port 9000` hands npm the flag and us its value: say where flags go.
    const npmHint = process.env.npm_lifecycle_event !== undefined ? ' (with npm, options go after --: npm start -- --port 9000)' : '';
    throw new UsageError(`unexpected argument '${positionals[1]}'${npmHint}`);
  }
  return { command: positionals[0], values };
}

function configFrom(values: Record<string, string | boolean | undefined>): SwitchboardOptions {
  const flags: Record<string, unknown> = {};
  if (values.port !== undefined) flags.port = values.port;
  if (values.host !== undefined) flags.host = values.host;
  if (values.workers !== undefined) flags.workers = values.workers;
  if (values.daemon === true) flags.daemonize = true;
  if (values['pid-file'] !== undefined) flags.pidFile = values['pid-file'];
  const envFile = values['env-file'];
  return loadConfig({ flags, ...(typeof envFile === 'string' && { envFile }) });
}

function listenProblem(error: NodeJS.ErrnoException, options: SwitchboardOptions): string {
  const where = `${options.host}:${options.port}`;
  switch (error.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${where}: the port is already in use (choose another with WS_PORT or --port)`;
    case 'EACCES':
      return `cannot listen on ${where}: permission denied (ports below 1024 need privileges)`;
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return `cannot listen on ${where}: no such address on this machine (check WS_HOST or --host)`;
    default:
      return `cannot listen on ${where}: ${error.message}`;
  }
}

async function start(args: string[], options: SwitchboardOptions): Promise<number> {
  // A worker runs this same command; the daemon and the pid file belong to its primary.
  const isWorker = cluster.isWorker;
  const isDaemonChild = !isWorker && process.env[DAEMON_CHILD_ENV] === '1';
  const logFile = options.logFile ?? (options.daemonize ? DEFAULT_DAEMON_LOG : null);
  if (options.daemonize && !isDaemonChild && !isWorker) return daemonize(args, logFile ?? DEFAULT_DAEMON_LOG, options.pidFile);

  const logger = createLogger(options.logLevel, logFile);
  if (options.workers > 1 && !isWorker) return startPrimary(options, logger, isDaemonChild);
  // Workers without Redis reach each other through the primary's relay.
  const broker = createBroker(options, { logger, nodeId: newNodeId(), inWorker: isWorker });
  const handler = new WebSocketHandler({ ...options, logger, broker });
  const server = new SwitchboardServer(options, handler);
  // Workers share the port: a scrape reaching any of them answers for all.
  if (isWorker) serveWorkerMetrics(server);
  // The pid file is written before listening so that a daemon that cannot record its pid
  // never runs unreachable by `switchboard stop`.
  if (isDaemonChild) writePidFile(options.pidFile);
  try {
    const address = await server.listen();
    // Once serving (a server that cannot start says only why), and once per server: the
    // primary of workers says it for all.
    warnOfOpenFileLimit(options, logger, isWorker);
    if (isDaemonChild) reportToParent({ type: 'ready', url: address.url });
  } catch (error) {
    if (isDaemonChild) removePidFile(options.pidFile);
    const message = listenProblem(error as NodeJS.ErrnoException, options);
    if (isWorker) {
      // The primary prints the reason once for all workers, and stops them.
      await tellPrimary({ sb: 'start-failed', exitCode: 1, reason: message });
      await handler.close();
      process.exit(1);
    }
    if (isDaemonChild) {
      logger.error(message);
      logger.flush();
      reportToParent({ type: 'failed', message, exitCode: 1 });
    } else {
      // In the foreground the plain line on stderr is the one report: a log line too would
      // say it twice (on stdout, unless the log goes to a file).
      if (logFile !== null) {
        logger.error(message);
        logger.flush();
      }
      process.stderr.write(`switchboard: ${message}\n`);
    }
    return 1;
  }

  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.info({ signal }, 'already shutting down');
        return;
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      // A last resort if draining hangs past its budget.
      setTimeout(() => {
        logger.error('shutdown did not finish in time; exiting');
        resolveExit(1);
      }, Math.min((options.shutdownTimeout + 5) * 1000, 2 ** 31 - 1)).unref();
      server
        .close()
        .then(() => {
          logger.info('stopped');
          resolveExit(0);
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          resolveExit(1);
        });
    };
    // `on`, not `once`: a second signal must not fall back to Node's default (death by signal).
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    // (A worker whose primary is gone exits at once: node:cluster does that on 'disconnect'.)
  }).then(async (code) => {
    if (isDaemonChild) removePidFile(options.pidFile);
    await new Promise<void>((flushed) => logger.flush(() => flushed()));
    // Exit now rather than wait for idle keep-alive sockets or a broker's reconnect timers.
    process.exit(code);
  });
}

/** Sends a message to this worker's primary; resolves once it is written (or cannot be). */
function tellPrimary(message: StartFailure): Promise<void> {
  return new Promise((resolve) => {
    if (typeof process.send !== 'function' || !process.connected) resolve();
    else process.send(message, undefined, undefined, () => resolve());
  });
}

/** Warns once per server (the primary of workers speaks for all) when the open-file limit is too low. */
function warnOfOpenFileLimit(options: SwitchboardOptions, logger: ReturnType<typeof createLogger>, isWorker: boolean): void {
  const warning = isWorker ? null : openFileWarning(openFileLimit(), options.maxConnections);
  if (warning !== null) logger.warn(warning);
}

/** The primary of WS_WORKER_NUM > 1 workers: forks them and waits for them to finish. */
async function startPrimary(options: SwitchboardOptions, logger: ReturnType<typeof createLogger>, isDaemonChild: boolean): Promise<number> {
  if (isDaemonChild) writePidFile(options.pidFile);
  const code = await runPrimary(options, logger, {
    ready: (url) => {
      warnOfOpenFileLimit(options, logger, false);
      if (isDaemonChild) reportToParent({ type: 'ready', url });
    },
    failed: (exitCode, reason) => {
      const message = reason ?? 'a worker process could not start; see the log';
      logger.error(message);
      if (isDaemonChild) reportToParent({ type: 'failed', message, exitCode });
      else process.stderr.write(`switchboard: ${message}\n`);
    },
  });
  if (isDaemonChild) removePidFile(options.pidFile);
  logger.info('stopped');
  await new Promise<void>((flushed) => logger.flush(() => flushed()));
  process.exit(code);
}

/**
 * `stop` needs only the pid file: a configuration broken since the daemon started (a bad
 * value in `.env`) must not keep anyone from stopping it.
 */
function stopCommand(values: Record<string, string | boolean | undefined>): Promise<number> {
  let pidFile = typeof values['pid-file'] === 'string' ? values['pid-file'] : (process.env.WS_PID_FILE ?? DEFAULTS.pidFile);
  let shutdownTimeout = DEFAULTS.shutdownTimeout;
  try {
    ({ pidFile, shutdownTimeout } = configFrom(values));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
  }
  return stopDaemon(pidFile, Math.min((shutdownTimeout + 5) * 1000, 2 ** 31 - 1));
}

/** `switchboard token --user ID [--role R] [--ttl 1h]`: mints a token for development and tests. */
async function printToken(values: Record<string, string | boolean | undefined>): Promise<number> {
  const user = values.user;
  if (typeof user !== 'string' || user.trim() === '') throw new UsageError('token needs --user ID');
  const ttlText = typeof values.ttl === 'string' ? values.ttl : '1h';
  const ttlSeconds = parseDuration(ttlText);
  if (ttlSeconds === null || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
    throw new UsageError(`--ttl: '${ttlText}' is not a duration like 90s, 15m, 1h or 7d (at most 365d)`);
  }
  const options = configFrom(values);
  if (options.auth.secret === null) throw new ConfigError('TOKEN_SECRET (auth.secret): required to sign tokens; set it in the environment or .env');
  // GEMVC's user ids are integers; keep an all-digit id a number so `user_id` compares the same.
  const userId = /^\d{1,15}$/.test(user.trim()) ? Number(user.trim()) : user.trim();
  const role = typeof values.role === 'string' && values.role.trim() !== '' ? values.role.trim() : null;
  process.stdout.write(`${await mintToken(options.auth, { userId, role, ttlSeconds })}\n`);
  return 0;
}

function checkConfig(options: SwitchboardOptions): number {
  const rows = describeOptions(options);
  const width = Math.max(...rows.map((row) => row.env.length));
  process.stdout.write('switchboard: configuration is valid; effective values:\n');
  for (const row of rows) process.stdout.write(`  ${row.env.padEnd(width)}  ${row.value}    (${row.option})\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const { command, values } = parse(argv);
  if (values.version === true) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (values.help === true || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined && values.help !== true ? EXIT_CONFIG : 0;
  }
  switch (command) {
    case 'start':
      return start(argv, configFrom(values));
    case 'stop':
      return stopCommand(values);
    case 'check-config':
      return checkConfig(configFrom(values));
    case 'token':
      return printToken(values);
    default:
      throw new UsageError(`unknown command '${command}' (try: switchboard --help)`);
  }
}

// `switchboard check-config | head` closes the pipe early; that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (cluster.isWorker) {
      // A worker cannot start (its primary started with the same configuration, so this is
      // rare: a channels file edited since). The primary logs the reason; the IPC channel
      // would keep this process alive, so it exits now.
      const exitCode = error instanceof ConfigError || error instanceof UsageError ? EXIT_CONFIG : 1;
      void tellPrimary({ sb: 'start-failed', exitCode, reason: error instanceof Error ? error.message : String(error) }).then(() => process.exit(exitCode));
      return;
    }
    if (error instanceof ConfigError || error instanceof UsageError) {
      process.stderr.write(`switchboard: ${error.message}\n`);
      if (process.env[DAEMON_CHILD_ENV] === '1' && cluster.isPrimary) reportToParent({ type: 'failed', message: error.message, exitCode: EXIT_CONFIG });
      process.exitCode = EXIT_CONFIG;
      return;
    }
    process.stderr.write(`switchboard: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
