/**
 * createServer: an HTTP(S) server on one port serving WebSocket upgrades and, through
 * HttpEndpoints, `/healthz`, `/readyz`, `/metrics`, `/api/*`, `/dashboard`, and plain
 * JSON answers for everything else (SPEC §7).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readConfigFile } from '../config/config-files.js';
import { loadConfig } from '../config/load.js';
import { layerFromOptions } from '../config/fields.js';
import { type SwitchboardConfig, type SwitchboardOptions } from '../config/options.js';
import { resolveOptions } from '../config/resolve.js';
import { ConfigError } from '../errors.js';
import { WebSocketHandler, type HandlerOptions } from '../handler.js';
import { HttpEndpoints } from './endpoints.js';
import { answerClientError, requestTimeouts, tlsHandshakeTimeout } from './request-limits.js';

export interface ListenAddress {
  host: string;
  port: number;
  /** ws:// or wss:// URL of the WebSocket endpoint. */
  url: string;
}


export class SwitchboardServer {
  readonly httpServer: HttpServer | HttpsServer;
  readonly options: SwitchboardOptions;
  private listening: ListenAddress | null = null;
  private readonly endpoints: HttpEndpoints;
  private closing: Promise<void> | null = null;

  constructor(
    options: SwitchboardOptions,
    readonly handler: WebSocketHandler,
  ) {
    this.options = options;
    this.endpoints = new HttpEndpoints(handler, { websocketPath: options.path }, () => (this.closing !== null ? 'shutting down' : handler.notReadyReason()));
    const onRequest = (request: IncomingMessage, response: ServerResponse): void => this.endpoints.handle(request, response);
    // handshakeTimeout bounds how long a request or upgrade may take to arrive in full
    // (request-limits.ts); Node takes some of these settings only here, at construction.
    const timeouts = requestTimeouts(options.handshakeTimeout);
    if (options.ssl.enabled) {
      // resolveOptions checked both files when ssl.enabled is set.
      const tls = { cert: readConfigFile(options.ssl.cert as string), key: readConfigFile(options.ssl.key as string), handshakeTimeout: tlsHandshakeTimeout(options.handshakeTimeout) };
      this.httpServer = createHttpsServer({ ...tls, ...timeouts }, onRequest);
    } else {
      this.httpServer = createHttpServer(timeouts, onRequest);
    }
    handler.attach(this.httpServer, { path: options.path });
    this.httpServer.on('clientError', answerClientError);
  }

  /** Starts listening; resolves with the bound address (the real port when `port` is 0). */
  async listen(): Promise<ListenAddress> {
    await this.handler.start();
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.httpServer.once('error', onError);
      this.httpServer.listen(this.options.port, this.options.host, () => {
        this.httpServer.off('error', onError);
        resolve();
      });
    });
    const address = this.httpServer.address() as AddressInfo;
    const scheme = this.options.ssl.enabled ? 'wss' : 'ws';
    const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.listening = { host: address.address, port: address.port, url: `${scheme}://${shownHost}:${address.port}${this.options.path}` };
    this.handler.logger.info({ url: this.listening.url }, `listening on ${this.listening.url}`);
    return this.listening;
  }

  /** This process's metrics as prom-client JSON, for a primary to sum over its workers. */
  metricsJson(): Promise<object[]> {
    return this.endpoints.metricsJson();
  }

  /** Makes /metrics answer with `gather()` (all workers' figures), or this process's when it gives null. */
  gatherMetrics(gather: () => Promise<string | null>): void {
    this.endpoints.gatherMetrics(gather);
  }

  get address(): ListenAddress | null {
    return this.listening;
  }

  /** Graceful shutdown: stop accepting, close clients with 1001, drain, close the broker. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => {
        if (!this.httpServer.listening) resolve();
        else this.httpServer.close(() => resolve());
      });
      await this.handler.close();
      this.httpServer.closeAllConnections();
      await stopped;
    })();
    return this.closing;
  }
}

/** The options that belong to the listener; everything else configures the handler. */
const LISTENER_OPTIONS = new Set(['host', 'port', 'path', 'ssl']);

/**
 * Creates a server with its own HTTP(S) listener. Options are resolved here, once:
 * defaults < `.env` < environment < `options`. Pass a handler to share the hooks and
 * actions registered on it; `options` may then only set the listener (host, port, path,
 * ssl) over the handler's own options, and nothing is read from the environment.
 */
export function createServer(options: HandlerOptions = {}, handler?: WebSocketHandler): SwitchboardServer {
  if (handler === undefined) {
    const { broker, logger, brokerTuning, ...config } = options;
    const resolved = loadConfig({ options: config });
    const created = new WebSocketHandler({ ...resolved, ...(broker !== undefined && { broker }), ...(logger !== undefined && { logger }), ...(brokerTuning !== undefined && { brokerTuning }) });
    return new SwitchboardServer(created.options, created);
  }
  const misplaced = Object.keys(options).filter((key) => !LISTENER_OPTIONS.has(key));
  if (misplaced.length > 0) {
    throw new ConfigError(`${misplaced.join(', ')}: pass these to the WebSocketHandler; with a handler, createServer() takes only ${[...LISTENER_OPTIONS].join(', ')}`);
  }
  const listener = Object.keys(options).length === 0 ? handler.options : resolveOptions(layerFromOptions({ ...handler.options, ...(options as SwitchboardConfig) }));
  return new SwitchboardServer(listener, handler);
}
