import type { ServerResponse } from 'node:http';

/** Answers with a JSON body (every plain HTTP answer of the server is JSON): an object, or one serialized already. */
export function sendJson(response: ServerResponse, status: number, body: object | string, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  response.end(text);
}
