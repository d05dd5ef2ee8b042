/**
 * Every message between the primary process and its workers (WS_WORKER_NUM > 1). Workers
 * are forked with `serialization: 'advanced'`, so frames travel as Buffers, copied once,
 * never escaped into JSON. `sb` tags our messages among the ones node:cluster sends itself.
 *
 * A message is used only once the guard of its exact tag has accepted it: each process
 * listens to one IPC channel for several purposes (the relay, /metrics, start-up), and a
 * message meant for one of them must never be taken for another's.
 */
import type { HistoryPage, HistorySettings, StoredMessage, StreamPosition } from '../../history/history.js';
import type { ChannelName, ConnectionId, UserId } from '../../types.js';
import type { DisconnectTarget, NodeReport } from '../../views/cluster-view.js';
import type { Member } from '../broker.js';

/** A cluster-wide view a worker asks the primary for. */
export type Query = { query: 'nodes' } | { query: 'channels' } | { query: 'members'; channel: ChannelName } | { query: 'disconnect'; target: DisconnectTarget };

/** Worker → primary, for the relay. */
export type WorkerMessage =
  /** The worker's node id, sent once at start: the relay names the workers that did not answer by it. */
  | { sb: 'hello'; nodeId: string }
  /** A message not kept: the worker has delivered it to its own subscribers already. */
  | { sb: 'publish'; id: number; channel: ChannelName; recipients: readonly string[] | null; exclude: ConnectionId | null; frame: Buffer }
  /**
   * A message to keep in the primary's history: the primary gives it its offset and
   * delivers it to every worker with subscribers, the sender's included. The frame is
   * text, as the store keeps it (history.ts withOffset), without an offset.
   */
  | { sb: 'append'; id: number; channel: ChannelName; recipients: readonly string[] | null; exclude: ConnectionId | null; frame: string; history: HistorySettings }
  /** A read of a channel's history in the primary (HistoryQuery). */
  | { sb: 'history'; id: number; channel: ChannelName; since: number | null; until: number | null; limit: number; seen: StreamPosition | null }
  | { sb: 'join'; id: number; channel: ChannelName; connectionId: ConnectionId; userId: UserId | null; info?: string | null }
  | { sb: 'leave'; channel: ChannelName; connectionId: ConnectionId }
  | ({ sb: 'query'; id: number } & Query)
  /** A worker's part of a question the primary put to every worker (`ask`). */
  | { sb: 'part'; ask: number; part: NodeReport | number };

/** Primary → worker, from the relay. */
export type PrimaryMessage =
  /** A message for the worker's subscribers; with a position (and the offset in its frame) when the history keeps it. */
  | { sb: 'deliver'; channel: ChannelName; recipients: readonly string[] | null; exclude: ConnectionId | null; frame: Buffer; position: StreamPosition | null }
  /** The answer to a publish (its cluster-wide count) or a join (0). */
  | { sb: 'reply'; id: number; count: number }
  /** The answer to an append: its cluster-wide count, and where the history keeps it. */
  | { sb: 'stored'; id: number; count: number; position: StreamPosition }
  /** The answer to a history read. */
  | { sb: 'page'; id: number; page: HistoryPage }
  /** Members of `channel` that left with their worker (it exited): the worker tells its own subscribers. */
  | { sb: 'gone'; channel: ChannelName; members: Member[] }
  /** The answer to a query; its data is what the query asked for (see ClusterRelay). */
  | { sb: 'answer'; id: number; data: unknown }
  | { sb: 'ask'; ask: number; query: 'report' }
  | { sb: 'ask'; ask: number; query: 'disconnect'; target: DisconnectTarget };

/** /metrics across workers (cli/worker-metrics.ts). */
export type MetricsMessage =
  | { sb: 'metrics-request'; id: number }
  | { sb: 'metrics-answer'; id: number; text: string | null }
  | { sb: 'metrics-ask'; ask: number }
  | { sb: 'metrics-part'; ask: number; part: object[] };

/** What a worker that cannot start tells its primary, instead of printing: the primary prints once. */
export interface StartFailure {
  sb: 'start-failed';
  exitCode: number;
  reason: string;
}

const WORKER_TAGS = new Set(['hello', 'publish', 'append', 'history', 'join', 'leave', 'query', 'part']);
const PRIMARY_TAGS = new Set(['deliver', 'reply', 'stored', 'page', 'gone', 'answer', 'ask']);
const METRICS_TAGS = new Set(['metrics-request', 'metrics-answer', 'metrics-ask', 'metrics-part']);

type Fields = Record<string, unknown>;

/** The message's tag, when it is an object with one. */
function tagged(message: unknown): Fields | null {
  return typeof message === 'object' && message !== null && typeof (message as Fields).sb === 'string' ? (message as Fields) : null;
}

/** Whether any part of Switchboard sends this message: an unknown one is worth a debug line, a known one is another listener's. */
export function isSwitchboardMessage(message: unknown): boolean {
  const tag = tagged(message)?.sb as string | undefined;
  return tag !== undefined && (WORKER_TAGS.has(tag) || PRIMARY_TAGS.has(tag) || METRICS_TAGS.has(tag) || tag === 'start-failed' || tag === 'batch');
}

const isId = (value: unknown): value is number => Number.isSafeInteger(value);
const isString = (value: unknown): value is string => typeof value === 'string';
const isUserId = (value: unknown): value is UserId | null => value === null || isString(value) || (typeof value === 'number' && Number.isFinite(value));
const isRecipients = (value: unknown): value is readonly string[] | null => value === null || (Array.isArray(value) && value.every(isString));
const isExclude = (value: unknown): value is ConnectionId | null => value === null || isString(value);
const isOffset = (value: unknown): value is number => isId(value) && value >= 0;
const isOffsetOrNull = (value: unknown): value is number | null => value === null || isId(value);

function isPosition(value: unknown): value is StreamPosition {
  if (typeof value !== 'object' || value === null) return false;
  const position = value as Fields;
  return isString(position.epoch) && isOffset(position.offset);
}

/** What the primary's MemoryHistory can keep: at least one message, for some time. */
function isSettings(value: unknown): value is HistorySettings {
  if (typeof value !== 'object' || value === null) return false;
  const settings = value as Fields;
  return isId(settings.size) && settings.size > 0 && typeof settings.ttl === 'number' && Number.isFinite(settings.ttl) && settings.ttl > 0;
}

function isStored(value: unknown): value is StoredMessage {
  if (typeof value !== 'object' || value === null) return false;
  const message = value as Fields;
  return isOffset(message.offset) && isString(message.frame);
}

function isPage(value: unknown): value is HistoryPage {
  if (!isPosition(value)) return false;
  const { messages } = value as unknown as Fields;
  return Array.isArray(messages) && messages.every(isStored);
}

function isMember(value: unknown): value is Member {
  if (typeof value !== 'object' || value === null) return false;
  const member = value as Fields;
  return isString(member.connectionId) && isUserId(member.userId);
}

function isTarget(value: unknown): value is DisconnectTarget {
  if (typeof value !== 'object' || value === null) return false;
  const target = value as Fields;
  return isString(target.userId) !== isString(target.connectionId);
}

function isQuery(message: Fields): boolean {
  switch (message.query) {
    case 'nodes':
    case 'channels':
      return true;
    case 'members':
      return isString(message.channel);
    case 'disconnect':
      return isTarget(message.target);
    default:
      return false;
  }
}

/** A message from a worker for the relay, or null when it is not one (or is malformed). */
export function parseWorkerMessage(message: unknown): WorkerMessage | null {
  const fields = tagged(message);
  if (fields === null) return null;
  switch (fields.sb) {
    case 'hello':
      return isString(fields.nodeId) ? (fields as WorkerMessage) : null;
    case 'publish':
      return isId(fields.id) && isString(fields.channel) && isRecipients(fields.recipients) && isExclude(fields.exclude) && Buffer.isBuffer(fields.frame) ? (fields as WorkerMessage) : null;
    case 'append':
      return isId(fields.id) && isString(fields.channel) && isRecipients(fields.recipients) && isExclude(fields.exclude) && isString(fields.frame) && isSettings(fields.history)
        ? (fields as WorkerMessage)
        : null;
    case 'history':
      return isId(fields.id) &&
        isString(fields.channel) &&
        isOffsetOrNull(fields.since) &&
        isOffsetOrNull(fields.until) &&
        isOffset(fields.limit) &&
        (fields.seen === null || isPosition(fields.seen))
        ? (fields as WorkerMessage)
        : null;
    case 'join':
      return isId(fields.id) && isString(fields.channel) && isString(fields.connectionId) && isUserId(fields.userId) && (fields.info === undefined || fields.info === null || isString(fields.info))
        ? (fields as WorkerMessage)
        : null;
    case 'leave':
      return isString(fields.channel) && isString(fields.connectionId) ? (fields as WorkerMessage) : null;
    case 'query':
      return isId(fields.id) && isQuery(fields) ? (fields as WorkerMessage) : null;
    case 'part':
      return isId(fields.ask) && (typeof fields.part === 'number' || (typeof fields.part === 'object' && fields.part !== null)) ? (fields as WorkerMessage) : null;
    default:
      return null;
  }
}

/** A message from the primary's relay, or null when it is not one (or is malformed). */
export function parsePrimaryMessage(message: unknown): PrimaryMessage | null {
  const fields = tagged(message);
  if (fields === null) return null;
  switch (fields.sb) {
    case 'deliver':
      return isString(fields.channel) && isRecipients(fields.recipients) && isExclude(fields.exclude) && Buffer.isBuffer(fields.frame) && (fields.position === null || isPosition(fields.position))
        ? (fields as PrimaryMessage)
        : null;
    case 'reply':
      return isId(fields.id) && typeof fields.count === 'number' ? (fields as PrimaryMessage) : null;
    case 'stored':
      return isId(fields.id) && isOffset(fields.count) && isPosition(fields.position) ? (fields as PrimaryMessage) : null;
    case 'page':
      return isId(fields.id) && isPage(fields.page) ? (fields as PrimaryMessage) : null;
    case 'gone':
      return isString(fields.channel) && Array.isArray(fields.members) && fields.members.every(isMember) ? (fields as PrimaryMessage) : null;
    case 'answer':
      return isId(fields.id) && 'data' in fields ? (fields as PrimaryMessage) : null;
    case 'ask':
      return isId(fields.ask) && (fields.query === 'report' || (fields.query === 'disconnect' && isTarget(fields.target))) ? (fields as PrimaryMessage) : null;
    default:
      return null;
  }
}

/** A /metrics message, or null when it is not one (or is malformed). */
export function parseMetricsMessage(message: unknown): MetricsMessage | null {
  const fields = tagged(message);
  if (fields === null) return null;
  switch (fields.sb) {
    case 'metrics-request':
      return isId(fields.id) ? (fields as MetricsMessage) : null;
    case 'metrics-answer':
      return isId(fields.id) && (fields.text === null || isString(fields.text)) ? (fields as MetricsMessage) : null;
    case 'metrics-ask':
      return isId(fields.ask) ? (fields as MetricsMessage) : null;
    case 'metrics-part':
      return isId(fields.ask) && Array.isArray(fields.part) ? (fields as MetricsMessage) : null;
    default:
      return null;
  }
}

export function isStartFailure(message: unknown): message is StartFailure {
  const fields = tagged(message);
  return fields?.sb === 'start-failed' && typeof fields.exitCode === 'number' && isString(fields.reason);
}

/** Enough of an unknown message to recognize it in a debug line, without dumping a large one. */
export function describeMessage(message: unknown): string {
  if (typeof message !== 'object' || message === null) return typeof message;
  const keys = Object.keys(message).slice(0, 10);
  const tag = (message as { sb?: unknown }).sb;
  return `{${keys.join(', ')}}${typeof tag === 'string' ? ` sb=${tag.slice(0, 40)}` : ''}`;
}
