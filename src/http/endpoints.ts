/**
 * Everything Switchboard answers over plain HTTP, WebSocket upgrades aside: `/healthz`,
 * `/readyz`, `/metrics`, `/api/*`, `/dashboard`, `/client.js` (SPEC §7, §9) and, with the Pusher
 * endpoint on, Pusher's `/apps/*` (SPEC §10). createServer's own server
 * answers with it at the root; an application mounts it in its own server (Express,
 * Fastify, node:http), optionally under a path prefix.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { tokenFromRequest } from '../auth/token-source.js';
import { requestPath } from '../connection/request-path.js';
import { ConfigError } from '../errors.js';
import type { WebSocketHandler } from '../handler.js';
import { createMetricsRegistry } from '../metrics/prometheus.js';
import { pusherApiFor, type PusherApi } from './pusher-api.js';
import { HttpApi, isApiEndpoint } from './api.js';
import { serveClientScript } from './client-script.js';
import { sendJson } from './json.js';

export interface RequestListenerOptions {
  /**
   * The path the endpoints answer under: with `'/switchboard'`, `/switchboard/healthz`,
   * `/switchboard/api/stats`, `/switchboard/dashboard`. It is the path as clients send it,
   * also when Express strips a mount path from `req.url` (`req.originalUrl` is read).
   * With a prefix, every path under it is Switchboard's (unknown ones answer 404).
   * @default '' (at the root: only Switchboard's own paths are Switchboard's)
   */
  prefix?: string;
  /**
   * Where a plain HTTP request is told to upgrade (426): the path the handler is attached
   * on, when this listener sees requests for it. A full path, not under `prefix`.
   * @default none
   */
  websocketPath?: string | null;
}

/**
 * A `node:http` request listener and Connect/Express middleware at once. A request that
 * is not Switchboard's goes to `next` when given, and is answered 404 (JSON) otherwise.
 */
export type SwitchboardRequestListener = (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void) => void;

/**
 * The HTTP endpoints of `handler` as one request listener, to mount in an application's
 * own server next to `handler.attach(server)`. Mount it before any body parser: the
 * API reads its request bodies itself.
 */
export function createRequestListener(handler: WebSocketHandler, options: RequestListenerOptions = {}): SwitchboardRequestListener {
  const endpoints = new HttpEndpoints(handler, options);
  return (request, response, next) => endpoints.handle(request, response, next);
}

/** What the endpoints serve; createServer's SwitchboardServer and createRequestListener share it. */
export class HttpEndpoints {
  private readonly prefix: string;
  private readonly websocketPath: string | null;
  private readonly api: HttpApi;
  /** Pusher's HTTP API at /apps/{id}/...; null while the Pusher endpoint is off. */
  private readonly pusherApi: PusherApi | null;
  /** Made at the first scrape: a server nobody scrapes pays nothing for it. */
  private metrics: Registry | null = null;
  /** With worker processes: the metrics of all workers, or null when they cannot be had. */
  private gathered: (() => Promise<string | null>) | null = null;

  constructor(
    private readonly handler: WebSocketHandler,
    options: RequestListenerOptions = {},
    /** For /readyz; a server also stops being ready once its own close() has begun. */
    private readonly notReadyReason: () => string | null = () => handler.notReadyReason(),
  ) {
    this.prefix = normalizedPrefix(options.prefix ?? '');
    this.websocketPath = options.websocketPath ?? null;
    // The request body limit is the WebSocket frame limit: a publish is as large either way.
    this.api = new HttpApi(handler, handler.options.apiKey, handler.options.maxPayload, this.prefix);
    this.pusherApi = pusherApiFor(handler);
  }

  handle(request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void): void {
    const path = requestPath(publicUrl(request));
    const local = this.below(path);
    // At the root of an application's server (a next() to hand misses to), only the API's own
    // paths are Switchboard's: the application keeps the rest of /api.
    const claimsAllOfApi = this.prefix !== '' || next === undefined;
    if (local !== null && this.serve(request, response, local, claimsAllOfApi)) return;
    if (path === this.websocketPath) {
      this.answerPlainGet(request, response);
      return;
    }
    // Under a prefix the whole subtree is Switchboard's, so its misses answer as it does.
    if (next !== undefined && (local === null || this.prefix === '')) {
      next();
      return;
    }
    sendJson(response, 404, { error: 'not found' });
  }

  /**
   * A plain request on the WebSocket path: 426. With a token (`?token=`, `Authorization`) that a
   * handshake would refuse, the handshake's 401 instead: a browser is never told why its
   * handshake failed, so the client asks here (readable from any origin; it tells no more than
   * a handshake does).
   */
  private answerPlainGet(request: IncomingMessage, response: ServerResponse): void {
    const headers = { 'Access-Control-Allow-Origin': '*' };
    const upgrade = (): void => {
      response.setHeader('Upgrade', 'websocket');
      sendJson(response, 426, { error: 'this endpoint speaks WebSocket; send an Upgrade request' }, headers);
    };
    if (tokenFromRequest(request) === null) return upgrade();
    this.handler.tokenRefusal(request).then(
      (refusal) => (refusal === null ? upgrade() : sendJson(response, 401, { error: refusal }, headers)),
      () => sendJson(response, 500, { error: 'authentication failed' }, headers),
    );
  }

  /** This process's metrics as prom-client JSON, for a primary to sum over its workers. */
  metricsJson(): Promise<object[]> {
    return this.registry().getMetricsAsJSON();
  }

  /** Makes /metrics answer with `gather()` (all workers' figures), or this process's when it gives null. */
  gatherMetrics(gather: () => Promise<string | null>): void {
    this.gathered = gather;
  }

  /** `path` without the prefix ('' for the prefix itself), or null when it is not below it. */
  private below(path: string): string | null {
    if (this.prefix === '') return path;
    if (path === this.prefix) return '';
    return path.startsWith(`${this.prefix}/`) ? path.slice(this.prefix.length) : null;
  }

  /** Answers a request for `path` (below the prefix); false when it is none of Switchboard's. */
  private serve(request: IncomingMessage, response: ServerResponse, path: string, claimsAllOfApi: boolean): boolean {
    const read = request.method === 'GET' || request.method === 'HEAD';
    if (path === '/healthz' && read) {
      sendJson(response, 200, { status: 'ok' });
      return true;
    }
    if (path === '/readyz' && read) {
      // Ready means: a client connecting here is served with the whole cluster behind it.
      const reason = this.notReadyReason();
      if (reason === null) sendJson(response, 200, { status: 'ready' });
      else sendJson(response, 503, { status: 'not_ready', reason });
      return true;
    }
    if (path === '/metrics' && read) {
      this.serveMetrics(request, response);
      return true;
    }
    if ((path === '/api' || path.startsWith('/api/')) && (claimsAllOfApi || isApiEndpoint(path))) {
      if (request.readableDidRead) {
        // The API reads the body itself; one already consumed would never end, and the request would hang.
        sendJson(response, 500, { error: 'the request body was read before Switchboard saw it: mount Switchboard before any body parser' }, { 'Cache-Control': 'no-store' });
        return true;
      }
      this.api.handle(request, response, path);
      return true;
    }
    if (this.pusherApi?.claims(path, claimsAllOfApi)) {
      this.pusherApi.handle(request, response, path);
      return true;
    }
    // The page finds the API next to itself under each of these (dashboard/index.html).
    if ((path === '/dashboard' || path === '/dashboard/' || path === '/dashboard/index.html') && read) {
      serveDashboard(request, response);
      return true;
    }
    if (path === '/client.js' && read) {
      serveClientScript(request, response);
      return true;
    }
    return false;
  }

  private serveMetrics(request: IncomingMessage, response: ServerResponse): void {
    const registry = this.registry();
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
  }

  private registry(): Registry {
    this.metrics ??= createMetricsRegistry(this.handler);
    return this.metrics;
  }
}

/** '' or '/a/b' without a trailing slash, so that matching is one comparison. */
function normalizedPrefix(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, '');
  if (trimmed !== '' && (!trimmed.startsWith('/') || /[?#]/.test(trimmed))) {
    throw new ConfigError(`prefix: '${prefix}' is not a path; give one like '/switchboard' (or '' for the root)`);
  }
  return trimmed;
}

/** The URL as the client sent it: Express rewrites `url` below a mount path and keeps the original. */
function publicUrl(request: IncomingMessage): string | undefined {
  const original = (request as { originalUrl?: unknown }).originalUrl;
  return typeof original === 'string' ? original : request.url;
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
