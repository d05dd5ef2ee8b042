/**
 * Who may open a WebSocket (SPEC §3): the checks made on the upgrade request, before any
 * WebSocket exists, and the per-address connection counts they rely on.
 */
import type { IncomingMessage } from 'node:http';
import { normalizeOrigin } from '../config/values.js';
import { HandshakeRefusal } from '../codes.js';

export interface AdmissionLimits {
  allowedOrigins: readonly string[] | null;
  maxConnections: number;
  maxConnectionsPerIp: number;
}

export interface Refusal {
  kind: HandshakeRefusal;
  message: string;
}

export class Admission {
  private readonly perIp = new Map<string, number>();
  /** Connections admitted and not yet released: open ones and handshakes under way. */
  private admitted = 0;
  private shuttingDown = false;

  constructor(private readonly limits: AdmissionLimits) {}

  /** From now on every handshake is refused with 503. */
  refuseAll(): void {
    this.shuttingDown = true;
  }

  /**
   * Checks an upgrade request. When it is admitted, a slot is held for `ip` until
   * `release(ip)`; the caller must release it exactly once whatever happens next.
   */
  admit(request: IncomingMessage, ip: string): Refusal | null {
    const { allowedOrigins, maxConnections, maxConnectionsPerIp } = this.limits;
    if (this.shuttingDown) return { kind: HandshakeRefusal.SHUTTING_DOWN, message: 'server is shutting down' };
    const origin = request.headers.origin;
    // Browsers always send Origin; a client without one is not a browser and is not checked.
    if (allowedOrigins !== null && origin !== undefined && !allowedOrigins.includes(normalizeOrigin(origin))) {
      return { kind: HandshakeRefusal.ORIGIN_NOT_ALLOWED, message: `origin ${origin} is not allowed` };
    }
    if (maxConnections > 0 && this.admitted >= maxConnections) {
      return { kind: HandshakeRefusal.TOO_MANY_CONNECTIONS, message: 'server is at its connection limit' };
    }
    const fromIp = this.perIp.get(ip) ?? 0;
    if (maxConnectionsPerIp > 0 && fromIp >= maxConnectionsPerIp) {
      return { kind: HandshakeRefusal.TOO_MANY_CONNECTIONS_FROM_IP, message: 'too many connections from this address' };
    }
    this.perIp.set(ip, fromIp + 1);
    this.admitted++;
    return null;
  }

  release(ip: string): void {
    this.admitted--;
    const count = (this.perIp.get(ip) ?? 1) - 1;
    if (count <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, count);
  }
}
