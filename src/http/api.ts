/**
 * The HTTP API for backends and operators (SPEC §7), on the WebSocket port:
 *
 *   POST /api/publish            {"channel","message","recipients"?,"ephemeral"?} → {"success":true,"recipients_count":N,"offset"?:N}
 *   GET  /api/stats              connections, channels, message rates, uptime, nodes
 *   GET  /api/channels           channels with subscriber counts
 *   GET  /api/channels/NAME      one channel's members
 *   GET  /api/channels/NAME/history?since=&limit=   a channel's history
 *   POST /api/disconnect         {"user_id"} or {"connection_id"} → closes them with 1000
 *   GET  /api/openapi.json       all of the above as an OpenAPI 3.1 document (openapi.ts)
 *
 * Cluster-wide when Redis is on. `Authorization: Bearer <WS_API_KEY>`: 404 for every
 * /api path when no key is configured, 401 for a wrong key (compared in constant time),
 * 400 with `{"error": "..."}` for a bad or oversized body.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { channelNameProblem } from '../channels/names.js';
import { ErrorCode } from '../codes.js';
import { ClusterUnavailableError, SwitchboardError } from '../errors.js';
import { MAX_HISTORY_LIMIT } from '../history/history.js';
import type { WebSocketHandler } from '../handler.js';
import { parseRequest } from '../protocol/inbound.js';
import type { DisconnectResult } from '../views/cluster-view.js';
import { sendJson, sendRefusal } from './json.js';
import { openApiDocument } from './openapi.js';


/** The API's own paths: at the root of an application's server, other /api paths stay the application's. */
export function isApiEndpoint(path: string): boolean {
  return API_PATHS.has(path) || (path.startsWith('/api/channels/') && path.length > '/api/channels/'.length);
}

const API_PATHS: ReadonlySet<string> = new Set(['/api/publish', '/api/stats', '/api/channels', '/api/disconnect', '/api/openapi.json']);

/** A request the API refuses: status and the message of its `{"error"}` body. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const NO_ACTIONS = new Map<string, never>();
const NO_STORE = { 'Cache-Control': 'no-store' };

export class HttpApi {
  /** SHA-256 of the key: equal-length digests are what timingSafeEqual compares. */
  private readonly keyDigest: Buffer | null;

  constructor(
    private readonly handler: WebSocketHandler,
    apiKey: string | null,
    /** Largest request body, in bytes. */
    private readonly maxBodyBytes: number,
    /** Where the endpoints are mounted ('' at the root), for the OpenAPI document's server URL. */
    private readonly prefix = '',
  ) {
    this.keyDigest = apiKey === null ? null : digest(apiKey);
  }

  /** Answers one /api/* request. */
  handle(request: IncomingMessage, response: ServerResponse, path: string): void {
    this.route(request, path).then(
      (body) => sendJson(response, 200, body, NO_STORE),
      (error: unknown) => {
        if (error instanceof ApiError) {
          sendRefusal(request, response, error.status, error.message, { ...NO_STORE, ...error.headers });
          return;
        }
        if (error instanceof ClusterUnavailableError) {
          sendJson(response, 503, { error: error.message }, NO_STORE);
          return;
        }
        this.handler.logger.error({ err: error, path }, 'API request failed');
        sendJson(response, 500, { error: 'internal error' }, NO_STORE);
      },
    );
  }

  private async route(request: IncomingMessage, path: string): Promise<object | string> {
    const query = new URLSearchParams((request.url ?? '').split('?')[1] ?? '');
    if (this.keyDigest === null) throw new ApiError(404, 'the HTTP API is off: set WS_API_KEY to use it');
    this.authorize(request);
    if (this.handler.isClosing) throw new ApiError(503, 'the server is shutting down');
    const method = request.method ?? 'GET';
    // Behind the key like every /api path: it is of use only to whoever may call the API,
    // and it names the version.
    if (path === '/api/openapi.json') {
      allow(method, 'GET');
      return openApiDocument(this.prefix);
    }
    if (path === '/api/publish') {
      allow(method, 'POST');
      return this.publish(await readJson(request, this.maxBodyBytes));
    }
    if (path === '/api/disconnect') {
      allow(method, 'POST');
      return this.disconnect(await readJson(request, this.maxBodyBytes));
    }
    if (path === '/api/stats') {
      allow(method, 'GET');
      const stats = await this.handler.cluster.stats();
      return {
        connections: stats.connections,
        channels: stats.channels,
        messages_in_per_second: stats.messagesInPerSecond,
        messages_out_per_second: stats.messagesOutPerSecond,
        uptime: stats.uptime,
        nodes: stats.nodes.map((node) => ({
          id: node.id,
          host: node.host,
          pid: node.pid,
          connections: node.connections,
          channels: node.channels,
          messages_in_per_second: node.messagesInPerSecond,
          messages_out_per_second: node.messagesOutPerSecond,
          uptime: node.uptime,
          ready: node.ready,
        })),
      };
    }
    if (path === '/api/channels') {
      allow(method, 'GET');
      return { channels: await this.handler.cluster.channels() };
    }
    // A channel may be named `history`: /api/channels/history lists its members.
    if (path.startsWith('/api/channels/') && path.endsWith(HISTORY_SUFFIX) && path.length > '/api/channels/'.length + HISTORY_SUFFIX.length) {
      allow(method, 'GET');
      return this.history(channelIn(path.slice('/api/channels/'.length, -HISTORY_SUFFIX.length)), query);
    }
    if (path.startsWith('/api/channels/')) {
      allow(method, 'GET');
      const channel = channelIn(path.slice('/api/channels/'.length));
      const members = await this.handler.cluster.members(channel);
      return {
        channel,
        subscribers: members.length,
        members: members.map((member) => ({ connection_id: member.connectionId, user_id: member.userId, node: member.node })),
      };
    }
    throw new ApiError(404, `no API endpoint at ${path}`);
  }

  private authorize(request: IncomingMessage): void {
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) throw new ApiError(401, 'send the API key as Authorization: Bearer <WS_API_KEY>', { 'WWW-Authenticate': 'Bearer' });
    if (!timingSafeEqual(digest(match[1] as string), this.keyDigest as Buffer)) throw new ApiError(401, 'invalid API key', { 'WWW-Authenticate': 'Bearer' });
  }

  private async publish(body: unknown): Promise<object> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'the body must be a JSON object: {"channel": ..., "message": ...}');
    // The same rules as a client's `message` action (SPEC §2), field for field; the
    // messages name the fields as this body has them (not as `data.` of a frame).
    const parsed = parseRequest({ action: 'message', data: body }, NO_ACTIONS);
    if (!parsed.ok) throw new ApiError(400, parsed.violation.error.replaceAll("'data.", "'"));
    if (parsed.request.action !== 'message') throw new ApiError(400, 'not a message');
    const { channel, message, recipients, ephemeral } = parsed.request;
    try {
      const { recipientsCount, position } = await this.handler.publishMessage(channel, message, { ...(recipients !== null && { recipients }), ephemeral });
      return position === null ? { success: true, recipients_count: recipientsCount } : { success: true, recipients_count: recipientsCount, offset: position.offset, epoch: position.epoch };
    } catch (error) {
      if (error instanceof SwitchboardError) throw new ApiError(400, error.message);
      throw error;
    }
  }

  /** A channel's history, for backends: the stored frames are spliced in as they are. */
  private async history(channel: string, query: URLSearchParams): Promise<string> {
    const since = numberParameter(query, 'since', 0, Number.MAX_SAFE_INTEGER);
    const limit = numberParameter(query, 'limit', 1, MAX_HISTORY_LIMIT);
    try {
      const page = await this.handler.history(channel, { since, limit });
      const head = JSON.stringify({ channel, epoch: page.epoch, offset: page.offset }).slice(0, -1);
      return `${head},"messages":[${page.messages.map((message) => message.frame).join(',')}]}`;
    } catch (error) {
      if (error instanceof SwitchboardError) throw new ApiError(error.code === ErrorCode.NOT_ENABLED ? 404 : 400, error.message);
      throw error;
    }
  }

  private async disconnect(body: unknown): Promise<object> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'the body must be a JSON object: {"user_id": ...} or {"connection_id": ...}');
    const fields = Object.keys(body);
    const unknown = fields.filter((field) => field !== 'user_id' && field !== 'connection_id');
    if (unknown.length > 0) throw new ApiError(400, `unknown field '${unknown[0]}'`);
    if (fields.length !== 1) throw new ApiError(400, 'give exactly one of user_id and connection_id');
    const { user_id: userId, connection_id: connectionId } = body as { user_id?: unknown; connection_id?: unknown };
    if (userId !== undefined) {
      if (!(typeof userId === 'string' && userId !== '') && !(typeof userId === 'number' && Number.isFinite(userId))) {
        throw new ApiError(400, 'user_id must be a non-empty string or a number');
      }
      return disconnectAnswer(await this.handler.cluster.disconnect({ userId: String(userId) }));
    }
    if (typeof connectionId !== 'string' || connectionId === '') throw new ApiError(400, 'connection_id must be a non-empty string');
    return disconnectAnswer(await this.handler.cluster.disconnect({ connectionId }));
  }
}

const HISTORY_SUFFIX = '/history';

/** The channel named in a path segment, percent-decoded and checked. */
function channelIn(segment: string): string {
  let channel: string;
  try {
    channel = decodeURIComponent(segment);
  } catch {
    throw new ApiError(400, 'the channel name in the path is not valid percent-encoding');
  }
  const problem = channelNameProblem(channel);
  if (problem !== null) throw new ApiError(400, problem);
  return channel;
}

/** An integer query parameter within [min, max], or null when absent. */
function numberParameter(query: URLSearchParams, name: string, min: number, max: number): number | null {
  const text = query.get(name);
  if (text === null) return null;
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new ApiError(400, `${name} must be an integer from ${min} to ${max}`);
  return value;
}

/** `unanswered` only when some node did not answer in time: its matching connections may still be open. */
function disconnectAnswer({ disconnected, unanswered }: DisconnectResult): object {
  return unanswered.length === 0 ? { success: true, disconnected } : { success: true, disconnected, unanswered };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function allow(method: string, allowed: 'GET' | 'POST'): void {
  if (method === allowed || (allowed === 'GET' && method === 'HEAD')) return;
  throw new ApiError(405, `use ${allowed} here`, { Allow: allowed });
}

/** Reads a JSON body of at most `limit` bytes. */
function readJson(request: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new ApiError(400, `the body is larger than ${limit} bytes`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    request.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        reject(new ApiError(400, `the body is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      if (done) return;
      done = true;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') {
        reject(new ApiError(400, 'the body is empty; send a JSON object'));
        return;
      }
      try {
        resolve(JSON.parse(text) as unknown);
      } catch {
        reject(new ApiError(400, 'the body is not valid JSON'));
      }
    });
    request.on('error', (error) => {
      if (done) return;
      done = true;
      reject(error);
    });
  });
}
