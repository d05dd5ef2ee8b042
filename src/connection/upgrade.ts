/**
 * The way in: an HTTP upgrade request becomes a WebSocket, or is refused with a plain
 * HTTP answer before any WebSocket exists (SPEC §3). Admission (origin, connection
 * limits, shutdown) comes first, then the handshake's token (SPEC §5); what passes is
 * handed over with its verified identity.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type Server } from 'ws';
import { BEARER_SUBPROTOCOL, tokenFromRequest } from '../auth/token-source.js';
import { TokenError, type Identity, type TokenVerifier } from '../auth/tokens.js';
import type { NodeStats } from '../metrics/stats.js';
import { ErrorCode, HandshakeRefusal } from '../codes.js';
import { SwitchboardSocket } from '../transport/switchboard-socket.js';
import { Admission, type AdmissionLimits } from './admission.js';
import { refuseUpgrade } from './refuse.js';


export interface UpgradeOptions extends AdmissionLimits {
  readonly maxPayload: number;
  readonly allowAnonymous: boolean;
}

/** Which protocol an upgrade is for: the native one, or the Pusher endpoint's (no token is looked for). */
export type Route = 'native' | 'pusher';

/** Called with every WebSocket accepted; `UpgradeGate.release(ip)` must be called once when it has closed. */
export type Accepted = (socket: SwitchboardSocket, request: IncomingMessage, ip: string, identity: Identity | null, route: Route) => void;

/** A handshake without a token where anonymous connections are not allowed: the one refusal whose text says why. */
class MissingToken extends TokenError {
  constructor() {
    super(ErrorCode.TOKEN_INVALID, 'a token is required');
  }
}

export class UpgradeGate {
  private readonly admission: Admission;
  private readonly wss: Server<typeof SwitchboardSocket>;
  private closing = false;

  constructor(
    private readonly options: UpgradeOptions,
    private readonly verifier: TokenVerifier,
    private readonly stats: NodeStats,
    private readonly logger: Logger,
    private readonly accepted: Accepted,
  ) {
    this.admission = new Admission(options);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPayload,
      perMessageDeflate: false,
      clientTracking: false,
      // A browser sends its token as the subprotocols `bearer, <jwt>`; the server selects `bearer`.
      handleProtocols: (protocols) => (protocols.has(BEARER_SUBPROTOCOL) ? BEARER_SUBPROTOCOL : false),
      // Our subclass flushes a socket's queued frames before any close frame, ws's own included.
      WebSocket: SwitchboardSocket,
    });
  }

  /** From now on every handshake is refused with 503, also those whose token is being checked. */
  refuseAll(): void {
    this.closing = true;
    this.admission.refuseAll();
  }

  /** Refuses the request with a plain HTTP answer, counted by reason. */
  refuse(socket: Duplex, kind: HandshakeRefusal, message: string, ip = 'unknown'): void {
    this.stats.handshakeRefused(kind.reason);
    this.logger.debug({ ip, reason: kind.reason }, 'handshake refused');
    refuseUpgrade(socket, kind.status, message);
  }

  /**
   * Handles one upgrade request: refuses it, or hands the WebSocket to `accepted` with its
   * route. On the Pusher route no token is looked for (Pusher clients have none).
   */
  handle(request: IncomingMessage, socket: Duplex, head: Buffer, route: Route = 'native'): void {
    const ip = request.socket.remoteAddress ?? 'unknown';
    const refusal = this.admission.admit(request, ip);
    if (refusal !== null) {
      this.refuse(socket, refusal.kind, refusal.message, ip);
      return;
    }
    const taken = holdSlot(socket, this.admission, ip);
    (route === 'native' ? this.identify(request) : Promise.resolve(null)).then(
      (identity) => {
        if (socket.destroyed) return;
        if (this.closing) {
          this.refuse(socket, HandshakeRefusal.SHUTTING_DOWN, 'server is shutting down', ip);
          return;
        }
        // The 101 response and the first frames (the welcome, queued for the end of this
        // turn) leave in one write: corked until the turn's frames are flushed. A refusal
        // by ws ends the socket, which uncorks it.
        socket.cork();
        this.wss.handleUpgrade(request, socket, head, (ws) => {
          taken();
          this.accepted(ws, request, ip, identity, route);
        });
        setImmediate(() => socket.uncork());
      },
      (error: unknown) => {
        if (!(error instanceof TokenError)) this.logger.error({ err: error }, 'token verification failed');
        else this.logger.debug({ ip, reason: error.message }, 'token refused');
        this.refuse(socket, HandshakeRefusal.UNAUTHORIZED, refusalText(error), ip);
      },
    );
  }

  /** Gives back the admission slot of an accepted WebSocket that has closed. */
  release(ip: string): void {
    this.admission.release(ip);
  }

  /**
   * Why a handshake carrying this request's token would be refused with 401, or null when its
   * token would pass: a browser is not told why a handshake failed, so the client asks over HTTP.
   */
  async tokenRefusal(request: IncomingMessage): Promise<string | null> {
    try {
      await this.identify(request);
      return null;
    } catch (error) {
      return refusalText(error);
    }
  }

  /** The identity of the handshake's token; null for an anonymous connection when those are allowed. */
  private async identify(request: IncomingMessage): Promise<Identity | null> {
    const token = tokenFromRequest(request);
    if (token === null) {
      if (this.options.allowAnonymous) return null;
      throw new MissingToken();
    }
    return this.verifier.verify(token);
  }
}

/**
 * Holds an admitted handshake's slot until its socket becomes a WebSocket: the slot goes back
 * when the socket closes before that (a refusal, a client that left during token verification,
 * a handshake ws rejected). Returns what the caller calls once the WebSocket is accepted: the
 * close listener goes, and the slot is the connection's to release. Made outside handle(), so
 * that the listener, which lives as long as the socket, holds only the ip and not the request,
 * its headers and the head buffer.
 */
function holdSlot(socket: Duplex, admission: Admission, ip: string): () => void {
  const release = (): void => admission.release(ip);
  socket.once('close', release);
  return () => {
    socket.off('close', release);
  };
}

/** The body says only what the client can act on; the detail stays in the log. */
function refusalText(error: unknown): string {
  if (error instanceof MissingToken) return error.message;
  if (error instanceof TokenError) return error.code === ErrorCode.TOKEN_EXPIRED ? 'token expired' : 'invalid token';
  return 'authentication failed';
}
