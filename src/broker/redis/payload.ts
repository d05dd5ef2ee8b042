/**
 * The payload of a message between nodes on a channel's pub/sub channel (P{C}:pub):
 *
 *   <node id><meta: a JSON object, or nothing>\n<frame>
 *
 * meta holds only the fields that apply: `r` the recipients (user ids as strings), `x`
 * the connection that must not receive it, `o` and `e` the offset and epoch of a message
 * kept in the history (both or neither). A receiving node parses the meta, never the
 * frame: the frame's bytes go to its subscribers as they are.
 *
 * A node of an older version wrote `<node id><recipients as a JSON array, or nothing>\n<frame>`;
 * an array in place of the meta is read as recipients, so both versions understand each
 * other during a rolling upgrade (an older node ignores the fields it does not know).
 */
import { NODE_ID_LENGTH } from '../../ids.js';
import type { StreamPosition } from '../../history/history.js';
import type { ConnectionId } from '../../types.js';

const NEWLINE = 0x0a;

/** What a payload says besides its frame. */
export interface PayloadMeta {
  readonly recipients: readonly string[] | null;
  readonly exclude: ConnectionId | null;
}

export interface ParsedPayload extends PayloadMeta {
  /** The node that published it. */
  readonly nodeId: string;
  readonly position: StreamPosition | null;
  /** The frame's bytes, a view into the payload. */
  readonly frame: Buffer;
}

/** The meta fields other than the position, as JSON members (`"r":[…],"x":"…"`), or ''. */
function metaFields({ recipients, exclude }: PayloadMeta): string {
  const fields: string[] = [];
  if (recipients !== null) fields.push(`"r":${JSON.stringify(recipients)}`);
  if (exclude !== null) fields.push(`"x":${JSON.stringify(exclude)}`);
  return fields.join(',');
}

/** The payload of a message that is not kept in the history: one buffer, the frame written into it once. */
export function encodePayload(nodeId: string, meta: PayloadMeta, frame: string | Buffer): Buffer {
  const fields = metaFields(meta);
  const head = `${nodeId}${fields === '' ? '' : `{${fields}}`}\n`;
  const headLength = Buffer.byteLength(head);
  const payload = Buffer.allocUnsafe(headLength + (typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length));
  payload.write(head, 0, 'utf8');
  if (typeof frame === 'string') payload.write(frame, headLength, 'utf8');
  else frame.copy(payload, headLength);
  return payload;
}

/**
 * The start of a kept message's payload, up to where its position goes: `<node id>{` and
 * the other fields with a trailing comma. The history script, which assigns the offset,
 * appends `"o":N,"e":"E"}\n<frame with the offset>` (history-scripts.ts).
 */
export function keptPayloadHead(nodeId: string, meta: PayloadMeta): string {
  const fields = metaFields(meta);
  return `${nodeId}{${fields === '' ? '' : `${fields},`}`;
}

/** Reads a payload; null when it is malformed. */
export function parsePayload(payload: Buffer): ParsedPayload | null {
  if (payload.length <= NODE_ID_LENGTH) return null;
  const newline = payload.indexOf(NEWLINE, NODE_ID_LENGTH);
  if (newline === -1) return null;
  const nodeId = payload.toString('latin1', 0, NODE_ID_LENGTH);
  const frame = payload.subarray(newline + 1);
  if (newline === NODE_ID_LENGTH) return { nodeId, recipients: null, exclude: null, position: null, frame };
  let meta: unknown;
  try {
    meta = JSON.parse(payload.toString('utf8', NODE_ID_LENGTH, newline));
  } catch {
    return null;
  }
  // An older node's recipients.
  if (Array.isArray(meta)) return isStrings(meta) ? { nodeId, recipients: meta, exclude: null, position: null, frame } : null;
  if (typeof meta !== 'object' || meta === null) return null;
  const { r, x, o, e } = meta as Record<string, unknown>;
  if (r !== undefined && !(Array.isArray(r) && isStrings(r))) return null;
  if (x !== undefined && typeof x !== 'string') return null;
  let position: StreamPosition | null = null;
  if (o !== undefined || e !== undefined) {
    if (typeof o !== 'number' || !Number.isSafeInteger(o) || o < 1 || typeof e !== 'string' || e === '') return null;
    position = { epoch: e, offset: o };
  }
  return { nodeId, recipients: r ?? null, exclude: x ?? null, position, frame };
}

function isStrings(values: unknown[]): values is string[] {
  return values.every((value) => typeof value === 'string');
}
