/**
 * createServer: an HTTP(S) server on one port serving WebSocket upgrades, `/healthz`,
 * `/readyz`, and plain JSON answers for everything else (SPEC §7).
 */
import { readFileSync } from 'node:fs';
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
import { createMetricsRegistry } from '../metrics/prometheus.js';
import type { Registry } from 'prom-client';
import { HttpApi } from './api.js';
import { sendJson } from './json.js';
import { requestPath } from '../connection/request-path.js';

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
  /** Made at the first scrape: a server nobody scrapes pays nothing for it. */
  private metrics: Registry | null = null;
  private readonly api: HttpApi;
  /** With worker processes: the metrics of all workers, or null when they cannot be had. */
  private gathered: (() => Promise<string | null>) | null = null;
  private closing: Promise<void> | null = null;

  constructor(
    options: SwitchboardOptions,
    readonly handler: WebSocketHandler,
  ) {
    this.options = options;
    const onRequest = (request: IncomingMessage, response: ServerResponse): void => this.onRequest(request, response);
    if (options.ssl.enabled) {
      // resolveOptions checked both files when ssl.enabled is set.
      this.httpServer = createHttpsServer({ cert: readConfigFile(options.ssl.cert as string), key: readConfigFile(options.ssl.key as string) }, onRequest);
    } else {
      this.httpServer = createHttpServer(onRequest);
    }
    handler.attach(this.httpServer, { path: options.path });
    // A request Node cannot parse gets a JSON answer like every other answer here (with
    // Node's own status), then the connection closes. A response already under way on
    // that connection must not be cut into: then the connection just closes.
    this.httpServer.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
      if (!socket.writable || inFlight) {
        socket.destroy();
        return;
      }
      const [status, text] =
        error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : [400, 'Bad Request'];
      const body = `{"error":"${status === 400 ? 'malformed HTTP request' : text.toLowerCase()}"}`;
      socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
    // The request body limit is the WebSocket frame limit: a publish is as large either way.
    this.api = new HttpApi(handler, handler.options.apiKey, handler.options.maxPayload);
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
    this.metrics ??= createMetricsRegistry(this.handler);
    return this.metrics.getMetricsAsJSON();
  }

  /** Makes /metrics answer with `gather()` (all workers' figures), or this process's when it gives null. */
  gatherMetrics(gather: () => Promise<string | null>): void {
    this.gathered = gather;
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

  private onRequest(request: IncomingMessage, response: ServerResponse): void {
    const path = requestPath(request.url);
    if (path === '/healthz' && (request.method === 'GET' || request.method === 'HEAD')) {
      sendJson(response, 200, { status: 'ok' });
      return;
    }
    if (path === '/readyz' && (request.method === 'GET' || request.method === 'HEAD')) {
      // Ready means: a client connecting here is served with the whole cluster behind it.
      const reason = this.closing !== null ? 'shutting down' : this.handler.notReadyReason();
      if (reason === null) sendJson(response, 200, { status: 'ready' });
      else sendJson(response, 503, { status: 'not_ready', reason });
      return;
    }
    if (path === '/metrics' && (request.method === 'GET' || request.method === 'HEAD')) {
      this.metrics ??= createMetricsRegistry(this.handler);
      const registry = this.metrics;
      const gathered = this.gathered;
      (gathered === null ? registry.metrics() : gathered().then((text) => text ?? registry.metrics())).then(
        (text) => {
          response.writeHead(200, { 'Content-Type': registry.contentType, 'Content-Length': Buffer.byteLength(text) });
          response.end(request.method === 'HEAD' ? undefined : text);
        },
        (error: unknown) => {
          this.handler.logger.error({ err: error }, 'collecting metrics failed');
          sendJson(response, 500, { error: 'collecting metrics failed' });
        },
      );
      return;
    }
    if (path === '/api' || path.startsWith('/api/')) {
      this.api.handle(request, response, path);
      return;
    }
    if (path === '/dashboard' && (request.method === 'GET' || request.method === 'HEAD')) {
      serveDashboard(request, response);
      return;
    }
    if (path === this.options.path) {
      response.setHeader('Upgrade', 'websocket');
      sendJson(response, 426, { error: 'this endpoint speaks WebSocket; send an Upgrade request' });
      return;
    }
    sendJson(response, 404, { error: 'not found' });
  }
}

/** dashboard/index.html, shipped as is (no build); read once. */
let dashboardPage: Buffer | null = null;

function serveDashboard(request: IncomingMessage, response: ServerResponse): void {
  try {
    dashboardPage ??= readFileSync(new URL('../../dashboard/index.html', import.meta.url));
  } catch {
    sendJson(response, 404, { error: 'the dashboard is not installed (dashboard/index.html is missing)' });
    return;
  }
  response.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': dashboardPage.length,
    'Cache-Control': 'no-cache',
    // The page talks only to this server, and runs only its own inline script.
    'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  });
  response.end(request.method === 'HEAD' ? undefined : dashboardPage);
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
