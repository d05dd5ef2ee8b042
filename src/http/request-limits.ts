/**
 * What Switchboard's own listener does about requests that do not arrive whole: the
 * bounds that `handshakeTimeout` (WS_HANDSHAKE_TIMEOUT) puts on them, and the plain
 * answer before their socket is closed.
 *
 * Node measures a request from its first byte, or from the connection's opening while
 * nothing has been sent yet, until its headers (`headersTimeout`) and its body
 * (`requestTimeout`) are in; both are absolute, so a peer that trickles a byte now and
 * then gets no more time than one that sends nothing. Node checks them only every
 * `connectionsCheckingInterval` (30 s by default, settable only when the server is made:
 * why the default 60 s header timeout used to end after ~73 s), so the check here runs a
 * few times per timeout, at most once a second; a request is cut at most that much
 * after its time is up.
 *
 * Not covered, on purpose: an idle keep-alive connection between two requests (Node's
 * `keepAliveTimeout`, 5 s, closes those), a WebSocket once upgraded (its own heartbeat
 * and `connectionTimeout` watch it), and a response that takes long to produce (the
 * request had arrived). Over TLS, the TLS handshake gets the same time of its own
 * before the request's time starts (`tls.Server`'s `handshakeTimeout`, also absolute).
 */
import type { ServerOptions as HttpServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';

/** Node's server options that bound a request's arrival to `seconds`. */
export function requestTimeouts(seconds: number): Required<Pick<HttpServerOptions, 'headersTimeout' | 'requestTimeout' | 'connectionsCheckingInterval'>> {
  // At least 1 ms: 0 would switch Node's timeouts off altogether.
  const ms = Math.max(1, Math.round(seconds * 1000));
  return {
    headersTimeout: ms,
    requestTimeout: ms,
    // Only requests under way are checked, so a short interval costs little.
    connectionsCheckingInterval: Math.min(1000, Math.max(25, Math.round(ms / 4))),
  };
}

/** The TLS handshake's bound (`tls.Server`'s `handshakeTimeout`, 120 s by default in Node). */
export function tlsHandshakeTimeout(seconds: number): number {
  return Math.max(1, Math.round(seconds * 1000));
}

/**
 * How long a socket that was answered and ended may wait for its peer to close its side.
 * Node's HTTP sockets allow half-open connections: after `end()` a socket stays open until
 * the peer ends too, and a peer that never does would hold it forever — exactly what the
 * timeouts are there to prevent. Destroying at once could instead reset a connection whose
 * peer is still sending, losing the answer before it is read.
 */
const LINGER_MS = 2000;

/**
 * Answers a request Node could not take (malformed, headers too large, or not in full in
 * time: `clientError`) like every other answer here, in JSON with Node's own status, then
 * closes its socket. A response already under way on that connection must not be cut
 * into: then the socket is just closed.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (!socket.writable || inFlight) {
    socket.destroy();
    return;
  }
  const [status, text] =
    error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : [400, 'Bad Request'];
  const body = `{"error":"${status === 400 ? 'malformed HTTP request' : text.toLowerCase()}"}`;
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  socket.once('close', () => clearTimeout(linger));
}
