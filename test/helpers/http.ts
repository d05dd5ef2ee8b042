/** Plain HTTP answers on the Switchboard port: GETs and refused WebSocket handshakes. */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { WebSocket, type ClientOptions } from 'ws';

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function get(url: string, options: { ca?: Buffer } = {}): Promise<HttpAnswer> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const outgoing = request(url, { method: 'GET', ...options }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/** Attempts a WebSocket handshake that must be refused; resolves with the HTTP answer. */
export function refusedHandshake(url: string, options: ClientOptions = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { handshakeTimeout: 10_000, ...options });
    socket.on('unexpected-response', (request, response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') });
        request.destroy();
      });
    });
    socket.on('open', () => {
      socket.terminate();
      reject(new Error(`the handshake on ${url} was accepted`));
    });
    socket.on('error', reject);
  });
}

/** Asserts the status and a JSON content type; returns the parsed body. */
export function assertJson(answer: HttpAnswer, status: number): Record<string, unknown> {
  assert.equal(answer.status, status, `status; body: ${answer.body}`);
  assert.match(answer.headers['content-type'] ?? '', /^application\/json\b/);
  return JSON.parse(answer.body) as Record<string, unknown>;
}

/** SPEC §3: a refusal is a plain HTTP answer with a one-line JSON body `{"error": "..."}`. */
export function assertErrorBody(answer: HttpAnswer, status: number): void {
  const body = assertJson(answer, status);
  assert.ok(!answer.body.includes('\n'), 'the body is one line');
  assert.deepEqual(Object.keys(body), ['error']);
  assert.equal(typeof body.error, 'string');
  assert.notEqual(body.error, '');
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /**
   * The body. A string or Buffer goes out in one piece with its Content-Length; an array
   * goes out chunk by chunk with `Transfer-Encoding: chunked` (no Content-Length).
   */
  body?: string | Buffer | ReadonlyArray<string | Buffer>;
  /**
   * False: the body is written but the request is never finished (with a Content-Length
   * header larger than what was written, the server waits for bytes that never come).
   * The answer is still read; the request is then destroyed. Default true.
   */
  finish?: boolean;
}

/**
 * Any HTTP request (a POST with a body and headers, a DELETE, ...) on its own connection;
 * resolves with the answer. Errors of the request after the answer arrived (the server
 * closing a connection whose body it did not read) are ignored: the answer is what counts.
 */
export function request(url: string, options: RequestOptions = {}): Promise<HttpAnswer> {
  const { method = 'GET', headers = {}, body, finish = true } = options;
  return new Promise((resolve, reject) => {
    let answered = false;
    const outgoing = httpRequest(url, { method, headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        answered = true;
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') });
        if (!finish) outgoing.destroy();
      });
      response.on('error', (error) => {
        if (!answered) reject(error);
      });
    });
    outgoing.on('error', (error) => {
      if (!answered) reject(error);
    });
    if (Array.isArray(body)) {
      for (const chunk of body as ReadonlyArray<string | Buffer>) outgoing.write(chunk);
      if (finish) outgoing.end();
    } else if (body !== undefined) {
      if (finish) outgoing.end(body);
      else outgoing.write(body);
    } else if (finish) {
      outgoing.end();
    } else {
      outgoing.flushHeaders();
    }
  });
}

/**
 * A request to the HTTP API (SPEC §7) with `Authorization: Bearer <key>` (none when `key`
 * is null). A string body is sent as is (to send bad JSON); anything else as its JSON.
 */
export function apiRequest(url: string, key: string | null, method: string, body?: unknown): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  if (key !== null) headers.Authorization = `Bearer ${key}`;
  if (body === undefined) return request(url, { method, headers });
  headers['Content-Type'] = 'application/json';
  return request(url, { method, headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}
