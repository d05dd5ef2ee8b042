/**
 * Where a handshake carries its token (SPEC §5), first found wins:
 * `Authorization: Bearer <jwt>`, then `?token=<jwt>`, then the WebSocket subprotocols
 * `bearer, <jwt>` — the one way a browser, which cannot set headers, can send it without
 * putting it in a URL.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

export const BEARER_SUBPROTOCOL = 'bearer';

function subprotocols(header: string | undefined): string[] {
  return header === undefined ? [] : header.split(',').map((protocol) => protocol.trim());
}

/** The token a handshake request carries, or null when it carries none. */
export function tokenFromRequest(request: IncomingMessage): string | null {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match !== null) return match[1] as string;
  }
  const url = request.url ?? '/';
  const query = url.indexOf('?');
  if (query !== -1) {
    const token = new URLSearchParams(url.slice(query + 1)).get('token');
    if (token !== null && token !== '') return token;
  }
  const protocols = subprotocols(request.headers['sec-websocket-protocol']);
  const bearer = protocols.indexOf(BEARER_SUBPROTOCOL);
  if (bearer !== -1) {
    const token = protocols[bearer + 1];
    if (token !== undefined && token !== '') return token;
  }
  return null;
}

/**
 * The request URL with every `token` query parameter masked, for logs and applications.
 * Parameter names are compared decoded, as tokenFromRequest reads them (`to%6Ben` too).
 */
export function redactedUrl(url: string): string {
  const query = url.indexOf('?');
  if (query === -1) return url;
  const parameters = url
    .slice(query + 1)
    .split('&')
    .map((parameter) => {
      const name = new URLSearchParams(parameter).keys().next().value;
      return name === 'token' ? 'token=[redacted]' : parameter;
    });
  return `${url.slice(0, query)}?${parameters.join('&')}`;
}

/** The handshake headers with the token masked wherever it can be carried. */
export function redactedHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const copy: IncomingHttpHeaders = { ...headers };
  if (copy.authorization !== undefined) copy.authorization = copy.authorization.replace(/^(Bearer\s+)\S+/i, '$1[redacted]');
  if (copy['sec-websocket-protocol'] !== undefined) {
    const list = subprotocols(copy['sec-websocket-protocol']);
    const bearer = list.indexOf(BEARER_SUBPROTOCOL);
    if (bearer !== -1 && bearer + 1 < list.length) list[bearer + 1] = '[redacted]';
    copy['sec-websocket-protocol'] = list.join(', ');
  }
  return copy;
}
