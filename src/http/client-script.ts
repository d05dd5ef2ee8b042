/**
 * GET /client.js: the built client (client/dist/switchboard-client.min.js, one ES module), so
 * that a page can `import { Client } from '/client.js'` with no build step of its own.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from './json.js';

interface Script {
  body: Buffer;
  /** The same, gzipped once: what a browser downloads. */
  gzipped: Buffer;
  etag: string;
}

/** Read once, at the first request; the file changes only with a new build. */
let script: Script | null = null;

function load(): Script | null {
  if (script === null) {
    try {
      const body = readFileSync(new URL('../../client/dist/switchboard-client.min.js', import.meta.url));
      script = { body, gzipped: gzipSync(body, { level: 9 }), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
    } catch {
      return null;
    }
  }
  return script;
}

export function serveClientScript(request: IncomingMessage, response: ServerResponse): void {
  const loaded = load();
  if (loaded === null) {
    sendJson(response, 404, { error: 'the client is not built (client/dist is missing: run npm run build)' });
    return;
  }
  const headers = {
    'Content-Type': 'text/javascript; charset=utf-8',
    // Short-lived, then revalidated by ETag: a server upgrade reaches pages within minutes.
    'Cache-Control': 'public, max-age=300',
    ETag: loaded.etag,
    // A page on another origin imports it as a module, which browsers fetch with CORS.
    'Access-Control-Allow-Origin': '*',
    'Cross-Origin-Resource-Policy': 'cross-origin',
    'X-Content-Type-Options': 'nosniff',
    Vary: 'Accept-Encoding',
  };
  if (request.headers['if-none-match'] === loaded.etag) {
    response.writeHead(304, headers);
    response.end();
    return;
  }
  const gzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
  const body = gzip ? loaded.gzipped : loaded.body;
  response.writeHead(200, { ...headers, ...(gzip && { 'Content-Encoding': 'gzip' }), 'Content-Length': body.length });
  response.end(request.method === 'HEAD' ? undefined : body);
}
