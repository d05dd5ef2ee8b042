/**
 * What every request of the Pusher HTTP API shares (pusher-api.ts): the error it is refused
 * with, its raw body (read once, capped, kept as bytes for `body_md5`), its JSON, and its
 * `info` attributes.
 */
import type { IncomingMessage } from 'node:http';

/** A request the Pusher API refuses: its status and the one line of its `{"error"}` body. */
export class PusherApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'PusherApiError';
  }
}

/**
 * The largest request body. A Pusher request is small (an event's data is at most 10 KB, a
 * batch at most 10 events), but JSON escapes can make a string up to six times longer.
 */
export const MAX_BODY_BYTES = 1024 * 1024;

/** The raw body, byte for byte; 413 once it passes `limit`. */
export function readBody(request: IncomingMessage, limit: number = MAX_BODY_BYTES): Promise<Buffer> {
  const tooLarge = (): PusherApiError => new PusherApiError(413, `Request body is larger than ${limit} bytes`);
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (outcome: () => void): void => {
      if (done) return;
      done = true;
      outcome();
    };
    request.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) finish(() => reject(tooLarge()));
      else chunks.push(chunk);
    });
    request.on('end', () => finish(() => resolve(Buffer.concat(chunks))));
    request.on('error', (error) => finish(() => reject(error)));
  });
}

/** The body as a JSON object; 400 for anything else. */
export function jsonObject(body: Buffer): Record<string, unknown> {
  const text = body.toString('utf8');
  if (text.trim() === '') throw new PusherApiError(400, 'Request body is empty: send a JSON object');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new PusherApiError(400, 'Request body is not valid JSON');
  }
  if (!isObject(value)) throw new PusherApiError(400, 'Request body must be a JSON object');
  return value;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The `info` attributes Switchboard answers; others are ignored, as new ones would be. */
export type InfoAttribute = 'subscription_count' | 'user_count';

/** The attributes of an `info` value ("user_count,subscription_count"); 400 when it is not a string. */
export function infoAttributes(info: unknown, where = 'info'): ReadonlySet<InfoAttribute> {
  if (info === undefined || info === null) return new Set();
  if (typeof info !== 'string') throw new PusherApiError(400, `${where} must be a comma-separated string of attributes`);
  const known = new Set<InfoAttribute>();
  for (const part of info.split(',')) {
    const name = part.trim();
    if (name === 'subscription_count' || name === 'user_count') known.add(name);
  }
  return known;
}

/** A path segment percent-decoded; 400 when it is not valid percent-encoding. */
export function decodeSegment(segment: string, what: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new PusherApiError(400, `The ${what} in the path is not valid percent-encoding`);
  }
}
