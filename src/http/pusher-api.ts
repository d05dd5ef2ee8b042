/**
 * Pusher's HTTP API (SPEC §10), for the Pusher server SDKs (Node `pusher`, PHP, Laravel's
 * broadcaster), on the same port as everything else, while the Pusher endpoint is on:
 *
 *   POST /apps/{id}/events                              {name, data, channel | channels, socket_id?, info?} → {} | {channels}
 *   POST /apps/{id}/batch_events                        {batch: [{channel, name, data, socket_id?, info?}]} → {} | {batch}
 *   GET  /apps/{id}/channels?filter_by_prefix=&info=    → {channels: {name: {user_count?}}}
 *   GET  /apps/{id}/channels/{name}?info=               → {occupied, subscription_count?, user_count?}
 *   GET  /apps/{id}/channels/{name}/users               → {users: [{id}]} (presence channels only)
 *   POST /apps/{id}/users/{user_id}/terminate_connections → {}
 *
 * Every request is signed as Pusher signs it (signatures.ts): a bad one answers 401. An app
 * id other than the configured one answers 404; a bad request 400, an event's data over
 * 10 KB 413. Errors are `{"error": "..."}` on one line. Cluster-wide, like the native API.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ClusterUnavailableError, SwitchboardError } from '../errors.js';
import type { WebSocketHandler } from '../handler.js';
import { sendJson, sendRefusal } from './json.js';
import { channelState, channelUsers, listChannels, terminateConnections } from './pusher-api-channels.js';
import { triggerBatch, triggerEvent } from './pusher-api-events.js';
import { decodeSegment, jsonObject, PusherApiError, readBody } from './pusher-api-request.js';
import type { PusherSettings } from '../pusher/pusher-protocol.js';
import { pusherApp } from '../pusher/pusher-options.js';
import { verifyApiRequest } from '../pusher/signatures.js';

const NO_STORE = { 'Cache-Control': 'no-store' };

/** The Pusher HTTP API of `handler`; null while the Pusher endpoint is off. */
export function pusherApiFor(handler: WebSocketHandler): PusherApi | null {
  const settings = pusherApp(handler.options);
  return settings === null ? null : new PusherApi(handler, settings);
}

export class PusherApi {
  constructor(
    private readonly handler: WebSocketHandler,
    private readonly settings: PusherSettings,
  ) {}

  /**
   * Whether `path` is the API's. With `claimsAll` every `/apps` path is (an unknown app id
   * answers 404); without it (at the root of an application's own server) only those of the
   * configured app id, so that the application keeps its other `/apps` paths.
   */
  claims(path: string, claimsAll: boolean): boolean {
    if (claimsAll) return path === '/apps' || path.startsWith('/apps/');
    const own = `/apps/${this.settings.appId}`;
    return path === own || path.startsWith(`${own}/`);
  }

  /** Answers one request for `path` (the request path below any mount prefix, as the SDK signed it). */
  handle(request: IncomingMessage, response: ServerResponse, path: string): void {
    this.route(request, path).then(
      (body) => sendJson(response, 200, body, NO_STORE),
      (error: unknown) => this.fail(request, response, path, error),
    );
  }

  private fail(request: IncomingMessage, response: ServerResponse, path: string, error: unknown): void {
    if (error instanceof PusherApiError) {
      sendRefusal(request, response, error.status, error.message, { ...NO_STORE, ...error.headers });
      return;
    }
    if (error instanceof ClusterUnavailableError) {
      sendJson(response, 503, { error: error.message }, NO_STORE);
      return;
    }
    this.handler.logger.error({ err: error, path }, 'Pusher API request failed');
    sendJson(response, 500, { error: 'Internal error' }, NO_STORE);
  }

  private async route(request: IncomingMessage, path: string): Promise<object> {
    const match = /^\/apps\/([^/]+)(\/.*)?$/.exec(path);
    if (match === null || decodeSegment(match[1] as string, 'app id') !== this.settings.appId) {
      throw new PusherApiError(404, match === null ? `No Pusher API endpoint at ${path}` : `Unknown app id ${JSON.stringify(match[1])}`);
    }
    const endpoint = match[2] ?? '';
    if (request.readableDidRead) {
      // The body is read here; one consumed already (a body parser mounted before) would never end.
      throw new PusherApiError(500, 'The request body was read before Switchboard saw it: mount Switchboard before any body parser');
    }
    if (this.handler.isClosing) throw new PusherApiError(503, 'The server is shutting down');
    const method = request.method ?? 'GET';
    const query = new URLSearchParams((request.url ?? '').split('?')[1] ?? '');
    const body = method === 'GET' || method === 'HEAD' ? null : await readBody(request);
    const verdict = verifyApiRequest({ method, path, query, body }, this.settings, Date.now());
    if (!verdict.ok) throw new PusherApiError(401, verdict.message);

    try {
      return await this.dispatch(method, endpoint, query, body);
    } catch (error) {
      // A publish refused by the native rules (they agree with Pusher's on everything checked here).
      if (error instanceof SwitchboardError) throw new PusherApiError(400, error.message);
      throw error;
    }
  }

  private dispatch(method: string, endpoint: string, query: URLSearchParams, body: Buffer | null): Promise<object> {
    const handler = this.handler;
    if (endpoint === '/events') {
      allow(method, 'POST');
      return triggerEvent(handler, jsonObject(body as Buffer));
    }
    if (endpoint === '/batch_events') {
      allow(method, 'POST');
      return triggerBatch(handler, jsonObject(body as Buffer));
    }
    if (endpoint === '/channels') {
      allow(method, 'GET');
      return listChannels(handler, query);
    }
    let match = /^\/channels\/([^/]+)\/users$/.exec(endpoint);
    if (match !== null) {
      allow(method, 'GET');
      return channelUsers(handler, match[1] as string);
    }
    match = /^\/channels\/([^/]+)$/.exec(endpoint);
    if (match !== null) {
      allow(method, 'GET');
      return channelState(handler, match[1] as string, query);
    }
    match = /^\/users\/([^/]+)\/terminate_connections$/.exec(endpoint);
    if (match !== null) {
      allow(method, 'POST');
      return terminateConnections(handler, match[1] as string);
    }
    throw new PusherApiError(404, `No Pusher API endpoint at /apps/{app_id}${endpoint}`);
  }
}

function allow(method: string, allowed: 'GET' | 'POST'): void {
  if (method !== allowed) throw new PusherApiError(405, `Use ${allowed} here`, { Allow: allowed });
}
