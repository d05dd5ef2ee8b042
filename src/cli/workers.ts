/**
 * WS_WORKER_NUM > 1 (SPEC §6): the primary process forks node:cluster workers that share
 * the port, relays messages between them when Redis is off, restarts a worker that
 * dies, and on SIGTERM/SIGINT stops them all gracefully.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { ClusterRelay } from '../broker/cluster/cluster-relay.js';
import { IpcBatcher, unbatched } from '../broker/cluster/ipc-batch.js';
import { describeMessage, isStartFailure, isSwitchboardMessage, type PrimaryMessage } from '../broker/cluster/messages.js';
import type { SwitchboardOptions } from '../config/options.js';
import { metricsGatherer } from './worker-metrics.js';

export type { StartFailure } from '../broker/cluster/messages.js';

/** A worker that dies sooner than this after its start counts as crashing, and its restart waits longer. */
const STABLE_AFTER_MS = 10_000;
const MAX_RESTART_DELAY_MS = 30_000;

export interface PrimaryHooks {
  /** Every worker listens: the URL clients connect to. */
  ready(url: string): void;
  /**
   * A worker could not start (port in use, …): the whole server stops. Called once, with
   * the worker's one-line reason when it sent one.
   */
  failed(exitCode: number, reason: string | null): void;
}

/**
 * Runs the primary. Resolves with the exit code once every worker has exited, after a
 * signal or a failed start.
 */
export function runPrimary(options: SwitchboardOptions, logger: Logger, hooks: PrimaryHooks): Promise<number> {
  const relay = options.redis.enabled
    ? null
    : new ClusterRelay(
        (id, message) => {
          const worker = cluster.workers?.[id];
          if (worker === undefined || !worker.isConnected()) return false;
          outboundTo(worker).post(message);
          return true;
        },
        () => [...alive],
      );
  /** What the relay tells one worker in a turn goes as one IPC message. */
  const outbound = new Map<number, IpcBatcher<PrimaryMessage>>();
  const outboundTo = (worker: Worker): IpcBatcher<PrimaryMessage> => {
    let batcher = outbound.get(worker.id);
    if (batcher === undefined) {
      batcher = new IpcBatcher((message) => {
        if (worker.isConnected()) worker.send(message);
      });
      outbound.set(worker.id, batcher);
    }
    return batcher;
  };
  const startedAt = new Map<number, number>();
  /** Workers not yet exited (cluster.workers also waits for their IPC channel to close). */
  const alive = new Set<number>();
  let listening = 0;
  let ready = false;
  let stopping = false;
  let exitCode = 0;
  let restartDelay = 500;
  let failureReported = false;
  const metrics = metricsGatherer(() => Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined && alive.has(worker.id)));

  // Frames travel between workers as Buffers, copied as they are (JSON would escape each again per worker).
  cluster.setupPrimary({ serialization: 'advanced' });

  return new Promise<number>((resolveExit) => {
    const exited = (): void => {
      relay?.close();
      metrics.close();
      resolveExit(exitCode);
    };

    const fork = (): Worker => {
      const worker = cluster.fork();
      startedAt.set(worker.id, Date.now());
      alive.add(worker.id);
      // Sending to a worker that has just died fails with EPIPE, reported here; its exit follows.
      worker.on('error', (error) => logger.debug({ err: error, workerPid: worker.process.pid }, 'IPC with a worker failed'));
      worker.on('message', (received: unknown) => {
        for (const message of unbatched(received)) fromWorker(worker, message);
      });
      return worker;
    };

    const fromWorker = (worker: Worker, message: unknown): void => {
      if (isStartFailure(message)) {
        logger.error({ workerPid: worker.process.pid }, message.reason);
        if (!ready) startFailed(message.exitCode, message.reason);
        return;
      }
      if (metrics.handle(worker, message)) return;
      // Late messages of a worker that exited must not bring its memberships back.
      if (worker.isDead()) return;
      if (relay?.handle(worker.id, message) === true) return;
      // Relay messages with Redis on (no relay) are ours too; anything else is not.
      if (!isSwitchboardMessage(message)) logger.debug({ workerPid: worker.process.pid, message: describeMessage(message) }, 'ignoring an unknown IPC message');
    };

    function stop(code: number): void {
      if (stopping) return;
      stopping = true;
      exitCode = code;
      const workers = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined && !worker.isDead());
      if (alive.size === 0) exited();
      for (const worker of workers) worker.process.kill('SIGTERM');
      // A last resort if a worker hangs past its own shutdown budget.
      setTimeout(
        () => {
          for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
        },
        Math.min((options.shutdownTimeout + 5) * 1000, 2 ** 31 - 1),
      ).unref();
    }

    const startFailed = (code: number, reason: string | null): void => {
      if (!failureReported) {
        failureReported = true;
        hooks.failed(code, reason);
      }
      stop(code);
    };

    cluster.on('listening', (_worker, address) => {
      if (ready || stopping || ++listening < options.workers) return;
      ready = true;
      const host = address.address === undefined || address.address === null ? options.host : address.address;
      const shownHost = host.includes(':') ? `[${host}]` : host;
      const url = `${options.ssl.enabled ? 'wss' : 'ws'}://${shownHost}:${address.port}${options.path}`;
      logger.info({ url, workers: options.workers, redis: options.redis.enabled }, `listening on ${url} (${options.workers} workers${options.redis.enabled ? ', Redis' : ''})`);
      hooks.ready(url);
    });

    cluster.on('exit', (worker, code, signal) => {
      outbound.get(worker.id)?.discard();
      outbound.delete(worker.id);
      relay?.removeWorker(worker.id);
      metrics.workerGone(worker.id);
      alive.delete(worker.id);
      const lived = Date.now() - (startedAt.get(worker.id) ?? 0);
      startedAt.delete(worker.id);
      if (stopping) {
        if (alive.size === 0) exited();
        return;
      }
      if (!ready) {
        startFailed(code === 0 ? 1 : code, null);
        return;
      }
      // At once (after 1 s) for a worker that ran a while; ever more slowly for one that keeps crashing.
      restartDelay = lived >= STABLE_AFTER_MS ? 1000 : Math.min(restartDelay * 2, MAX_RESTART_DELAY_MS);
      logger.error({ workerPid: worker.process.pid, code, signal }, `worker ${worker.process.pid} exited (${signal ?? `code ${code}`}); starting a new one in ${restartDelay / 1000}s`);
      // Not unref'd: with no worker left, this timer is what keeps the primary alive.
      setTimeout(() => {
        if (!stopping) fork();
      }, restartDelay);
    });

    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.info({ signal }, 'already shutting down');
        return;
      }
      logger.info({ signal }, 'shutting down the workers');
      stop(0);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);

    for (let index = 0; index < options.workers; index++) fork();
  });
}
