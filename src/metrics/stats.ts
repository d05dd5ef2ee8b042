/**
 * What a node counts while it runs, as plain numbers: the hot path only adds to fields
 * (no label lookups, no allocation). /metrics reads them at scrape time (prometheus.ts).
 * Every labelled count has a bounded set of labels: error codes and refusal reasons are
 * ours, and close codes other than the ones we know are counted as "other".
 */
import { CloseCode, ErrorCode } from '../codes.js';

const KNOWN_CLOSE_CODES = new Set<number>([...Object.values(CloseCode), 1005, 1006]);
// Applications may send error frames with codes of their own; those count as "other".
const KNOWN_ERROR_CODES = new Set<string>(Object.values(ErrorCode));

export class NodeStats {
  /** Frames received from clients, and their bytes. */
  framesReceived = 0;
  bytesReceived = 0;
  /** Frames written to clients (replies, channel messages, pings), and their bytes. */
  framesSent = 0;
  bytesSent = 0;
  /** Messages published on this node (by clients and by the application). */
  messagesPublished = 0;
  /** Channel messages handed to this node's subscribers (one per subscriber). */
  deliveries = 0;
  /** Frames refused with RATE_LIMITED (the flood that follows closes with 4029). */
  rateLimited = 0;
  readonly errors = new Map<string, number>();
  readonly refusals = new Map<string, number>();
  readonly closes = new Map<string, number>();
  readonly startedAt = Date.now();

  errorSent(code: string): void {
    const label = KNOWN_ERROR_CODES.has(code) ? code : 'other';
    this.errors.set(label, (this.errors.get(label) ?? 0) + 1);
  }

  handshakeRefused(reason: string): void {
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1);
  }

  closed(code: number): void {
    const label = KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other';
    this.closes.set(label, (this.closes.get(label) ?? 0) + 1);
  }
}
