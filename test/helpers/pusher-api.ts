/** The Pusher HTTP API tests' shared pieces: a server with the endpoint on, the real `pusher` SDK pointed at it, signed raw requests. Not a test file. */
import type { TestContext } from 'node:test';
import PusherModule from 'pusher';
import type { HandlerOptions } from '../../src/handler.js';
import { signApiRequest } from '../../src/pusher/signatures.js';
import { APP, NATIVE_MAY_USE_ALL } from './pusher.js';
import { startServer, type TestServer } from './server.js';

// `pusher` is CommonJS (`export =`): Node hands the class over as the default export.
const PusherServer = ((PusherModule as unknown as { default?: unknown }).default ?? PusherModule) as typeof PusherModule;
export type PusherServer = InstanceType<typeof PusherServer>;

/** A server with the Pusher endpoint on (APP's credentials). */
export async function startPusherServer(t: TestContext, options: HandlerOptions = {}): Promise<TestServer> {
  // Native test clients share Pusher's presence and private channels here.
  const server = await startServer({ heartbeatInterval: 3600, maxMessagesPerMinute: 0, channels: NATIVE_MAY_USE_ALL, ...options, pusher: { ...APP } });
  t.after(() => server.close());
  return server;
}

/** The real Node SDK pointed at `server`; `overrides` to get a credential wrong. */
export function sdk(server: TestServer, overrides: Partial<typeof APP> = {}): PusherServer {
  const { appId, key, secret } = { ...APP, ...overrides };
  return new PusherServer({ appId, key, secret, host: '127.0.0.1', port: String(server.port), useTLS: false });
}

/** POST a body the SDK's own checks would refuse (its types say string; it sends JSON.stringify(body)). */
export function postRaw(pusher: PusherServer, path: string, body: object): Promise<unknown> {
  return pusher.post({ path, body: body as unknown as string });
}

export interface Answer {
  status: number;
  body: unknown;
}

/** A rejection of the SDK: its status and (JSON) body. */
export async function refusal(promise: Promise<unknown>): Promise<Answer> {
  try {
    await promise;
  } catch (error) {
    const { status, body } = error as { status?: number; body?: string };
    if (status === undefined) throw error;
    return { status, body: JSON.parse(body ?? 'null') as unknown };
  }
  throw new Error('the request succeeded');
}

/** The JSON of an SDK answer. */
export async function json(promise: Promise<{ json(): Promise<unknown> }>): Promise<unknown> {
  return (await promise).json();
}

/**
 * A request signed here (signApiRequest) and sent with fetch: `sign` is what is signed,
 * `send` (default: the same) what is sent, so that the two can differ.
 */
export async function signedRequest(
  server: TestServer,
  sign: { method: string; path: string; params?: Record<string, string>; body?: string },
  options: { nowMs?: number; sendBody?: string; secret?: string } = {},
): Promise<Answer> {
  const params = signApiRequest(sign, { key: APP.key, secret: options.secret ?? APP.secret }, options.nowMs ?? Date.now());
  const body = options.sendBody ?? sign.body;
  const response = await fetch(`${server.httpUrl}${sign.path}?${new URLSearchParams(params).toString()}`, {
    method: sign.method,
    ...(body !== undefined && { body, headers: { 'Content-Type': 'application/json' } }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : (JSON.parse(text) as unknown) };
}
