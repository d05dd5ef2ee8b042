/**
 * Parsing and strict validation of client frames (SPEC §2). Pure functions: they know
 * nothing of sockets, so every rule here is tested without a server.
 */
import { channelNameProblem } from '../channels/names.js';
import type { RequestId } from '../types.js';
import { ErrorCode, ErrorText } from '../codes.js';
import { MAX_HISTORY_LIMIT } from '../history/history.js';


export type ClientRequest =
  | { action: 'subscribe'; id: RequestId | null; channel: string; since: number | null; epoch: string | null }
  | { action: 'unsubscribe'; id: RequestId | null; channel: string }
  | { action: 'message'; id: RequestId | null; channel: string; message: unknown; recipients: string[] | null; ephemeral: boolean }
  | { action: 'presence'; id: RequestId | null; channel: string }
  | { action: 'history'; id: RequestId | null; channel: string; since: number | null; limit: number | null }
  | { action: 'ping'; id: RequestId | null }
  | { action: 'pong'; id: RequestId | null }
  | { action: 'auth'; id: RequestId | null; token: string }
  /** An action the built-in protocol does not know; the handler looks it up among custom actions. */
  | { action: 'custom'; name: string; id: RequestId | null; data: unknown };

export interface ProtocolViolation {
  code: ErrorCode;
  error: string;
  /** The frame's action when it could be read, for the error frame's `action` field. */
  action: string | null;
  id: RequestId | null;
}

export type ParseResult = { ok: true; request: ClientRequest } | { ok: false; violation: ProtocolViolation };

type FieldKind = 'channel' | 'offset' | 'limit' | 'boolean' | 'string' | 'object' | 'present' | 'recipients';
interface FieldRule {
  kind: FieldKind;
  required: boolean;
}
type Schema = Readonly<Record<string, FieldRule>>;

const required = (kind: FieldKind): FieldRule => ({ kind, required: true });
const optional = (kind: FieldKind): FieldRule => ({ kind, required: false });

/** The `data` fields each built-in action takes. Anything else is rejected by name. */
const SCHEMAS: Readonly<Record<string, Schema>> = {
  // `options` is accepted (and ignored) because GEMVC's subscribe schema declared it.
  subscribe: { channel: required('channel'), since: optional('offset'), epoch: optional('string'), options: optional('object') },
  unsubscribe: { channel: required('channel') },
  message: { channel: required('channel'), message: required('present'), recipients: optional('recipients'), ephemeral: optional('boolean') },
  presence: { channel: required('channel') },
  history: { channel: required('channel'), since: optional('offset'), limit: optional('limit') },
  ping: {},
  pong: {},
  auth: { token: required('string') },
};

const TOP_LEVEL_FIELDS = new Set(['action', 'data', 'id']);

/** Upper bound on `recipients` entries: a list longer than this is a mistake or an attack. */
export const MAX_RECIPIENTS = 1000;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

class Violation {
  constructor(
    readonly code: ErrorCode,
    readonly error: string,
  ) {}
}

function checkField(name: string, value: unknown, kind: FieldKind): Violation | null {
  const field = `data.${name}`;
  switch (kind) {
    case 'channel': {
      if (typeof value !== 'string') return new Violation(ErrorCode.INVALID_MESSAGE, `field '${field}' must be a string`);
      const problem = channelNameProblem(value);
      return problem === null ? null : new Violation(ErrorCode.INVALID_CHANNEL, problem);
    }
    case 'offset':
      return Number.isSafeInteger(value) && (value as number) >= 0
        ? null
        : new Violation(ErrorCode.INVALID_MESSAGE, `field '${field}' must be a non-negative integer`);
    case 'limit':
      return Number.isSafeInteger(value) && (value as number) >= 1 && (value as number) <= MAX_HISTORY_LIMIT
        ? null
        : new Violation(ErrorCode.INVALID_MESSAGE, `field '${field}' must be an integer from 1 to ${MAX_HISTORY_LIMIT}`);
    case 'boolean':
      return typeof value === 'boolean' ? null : new Violation(ErrorCode.INVALID_MESSAGE, `field '${field}' must be true or false`);
    case 'string':
      return typeof value === 'string' ? null : new Violation(ErrorCode.INVALID_MESSAGE, `field '${field}' must be a string`);
    case 'object':
      return isPlainObject(value) ? null : new Violation(ErrorCode.INVALID_MESSAGE, `field '${field}' must be an object`);
    case 'present':
      if (value === null) return new Violation(ErrorCode.INVALID_MESSAGE, `field '${field}' must not be null`);
      // JSON.parse reads a number too large for a double (1e309) as Infinity, which
      // JSON.stringify writes as null: it would reach subscribers as the null refused above.
      if (typeof value === 'number' && !Number.isFinite(value)) {
        return new Violation(ErrorCode.INVALID_MESSAGE, `field '${field}' must not be null or a number out of range (like 1e309)`);
      }
      // A value nested thousands deep overflows the stack of JSON.stringify when it is sent on.
      return nestedDeeperThan(value, MAX_DEPTH) ? new Violation(ErrorCode.INVALID_MESSAGE, `field '${field}' is nested more than ${MAX_DEPTH} levels deep`) : null;
    case 'recipients': {
      if (!Array.isArray(value)) return new Violation(ErrorCode.INVALID_MESSAGE, `field '${field}' must be an array of user ids`);
      if (value.length > MAX_RECIPIENTS) {
        return new Violation(ErrorCode.INVALID_MESSAGE, `field '${field}' may list at most ${MAX_RECIPIENTS} user ids`);
      }
      for (const entry of value) {
        const isId = typeof entry === 'string' || (typeof entry === 'number' && Number.isFinite(entry));
        if (!isId) return new Violation(ErrorCode.INVALID_MESSAGE, `field '${field}' must contain only strings or numbers`);
      }
      return null;
    }
  }
}

/** How deep a message's objects and arrays may nest: far beyond any real payload, far below what overflows JSON.stringify. */
export const MAX_DEPTH = 512;

/** Whether `value` nests objects or arrays more than `limit` deep; walks without recursion, and stops at the first too deep. */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const stack: Array<[object, number]> = [[value, 1]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [node, depth] = next;
    if (depth > limit) return true;
    for (const child of Object.values(node)) if (typeof child === 'object' && child !== null) stack.push([child as object, depth + 1]);
  }
  return false;
}

function validateData(data: Record<string, unknown>, schema: Schema): Violation | null {
  for (const key of Object.keys(data)) {
    if (!Object.hasOwn(schema, key)) return new Violation(ErrorCode.INVALID_MESSAGE, `unknown field 'data.${key}'`);
  }
  for (const [name, rule] of Object.entries(schema)) {
    const value = data[name];
    if (value === undefined) {
      if (rule.required) return new Violation(ErrorCode.INVALID_MESSAGE, `field 'data.${name}' is required`);
      continue;
    }
    const violation = checkField(name, value, rule.kind);
    if (violation) return violation;
  }
  return null;
}

/** Decodes a text frame. Returns the parsed JSON value, or undefined when it is not JSON. */
export function decodeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function invalidJson(): ProtocolViolation {
  return { code: ErrorCode.INVALID_JSON, error: ErrorText.INVALID_JSON, action: null, id: null };
}

/** Validates a decoded frame against the protocol and turns it into a typed request. */
export function parseRequest(frame: unknown, knownActions: { has(name: string): boolean } = new Set<string>()): ParseResult {
  const fail = (code: ErrorCode, error: string, action: string | null, id: RequestId | null): ParseResult => ({
    ok: false,
    violation: { code, error, action, id },
  });

  if (!isPlainObject(frame)) return fail(ErrorCode.INVALID_MESSAGE, 'message must be a JSON object', null, null);

  const rawAction = frame.action;
  // Read before the id is checked, so that an error about the id still says which
  // action it refused; an id that is not one is never echoed.
  const readableAction = typeof rawAction === 'string' ? rawAction : null;
  const rawId = frame.id;
  let id: RequestId | null = null;
  if (rawId !== undefined) {
    if (typeof rawId === 'string' || (typeof rawId === 'number' && Number.isFinite(rawId))) id = rawId;
    else return fail(ErrorCode.INVALID_MESSAGE, "field 'id' must be a string or a number", readableAction, null);
  }

  if (rawAction === undefined) return fail(ErrorCode.INVALID_MESSAGE, "field 'action' is required", null, id);
  if (readableAction === null) return fail(ErrorCode.INVALID_MESSAGE, "field 'action' must be a string", null, id);
  const action = readableAction;

  for (const key of Object.keys(frame)) {
    if (!TOP_LEVEL_FIELDS.has(key)) return fail(ErrorCode.INVALID_MESSAGE, `unknown field '${key}'`, action, id);
  }

  const schema = Object.hasOwn(SCHEMAS, action) ? SCHEMAS[action] : undefined;
  if (schema === undefined) {
    if (knownActions.has(action)) return { ok: true, request: { action: 'custom', name: action, id, data: frame.data } };
    return fail(ErrorCode.UNKNOWN_ACTION, ErrorText.unknownAction(action), action, id);
  }

  const rawData = frame.data ?? {};
  if (!isPlainObject(rawData)) return fail(ErrorCode.INVALID_MESSAGE, "field 'data' must be an object", action, id);
  const violation = validateData(rawData, schema);
  if (violation) return fail(violation.code, violation.error, action, id);

  switch (action) {
    case 'subscribe':
      return {
        ok: true,
        request: {
          action,
          id,
          channel: rawData.channel as string,
          since: (rawData.since as number | undefined) ?? null,
          epoch: (rawData.epoch as string | undefined) ?? null,
        },
      };
    case 'unsubscribe':
      return { ok: true, request: { action, id, channel: rawData.channel as string } };
    case 'message': {
      const recipients = rawData.recipients as (string | number)[] | undefined;
      return {
        ok: true,
        request: {
          action,
          id,
          channel: rawData.channel as string,
          message: rawData.message,
          recipients: recipients === undefined ? null : recipients.map(String),
          ephemeral: rawData.ephemeral === true,
        },
      };
    }
    case 'presence':
      return { ok: true, request: { action, id, channel: rawData.channel as string } };
    case 'history':
      return {
        ok: true,
        request: { action, id, channel: rawData.channel as string, since: (rawData.since as number | undefined) ?? null, limit: (rawData.limit as number | undefined) ?? null },
      };
    case 'ping':
    case 'pong':
      return { ok: true, request: { action, id } };
    case 'auth':
      return { ok: true, request: { action, id, token: rawData.token as string } };
    default:
      throw new Error(`schema without a request shape: ${action}`);
  }
}
