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
