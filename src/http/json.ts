import type { IncomingMessage, ServerResponse } from 'node:http';

/** Answers with a JSON body (every plain HTTP answer of the server is JSON): an object, or one serialized already. */
export function sendJson(response: ServerResponse, status: number, body: object | string, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

/**
 * Answers a refused API request with `{"error"}` and its status. A body left unread (too
 * large, or never needed) is not read: the answer goes, then the connection closes.
 */
export function sendRefusal(request: IncomingMessage, response: ServerResponse, status: number, message: string, headers: Record<string, string>): void {
  if (request.complete) {
    sendJson(response, status, { error: message }, headers);
    return;
  }
  sendJson(response, status, { error: message }, { ...headers, Connection: 'close' });
  response.once('finish', () => request.destroy());
}
