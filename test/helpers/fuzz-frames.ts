/**
 * Hostile frames for the protocol fuzz test (test/protocol/fuzz.test.ts), each with what
 * SPEC §2 says the server answers to it. Made from a seeded PRNG, so that a failing run
 * can be replayed with its FUZZ_SEED. Frames are written as JSON text by hand: JSON.stringify
 * could never write 1e309, -0, a repeated key or a `"__proto__"` key.
 */
import { ErrorCode } from '../../src/codes.js';

/** mulberry32: a tiny, fast PRNG of 32-bit state; the same seed gives the same run. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  float(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  chance(p: number): boolean {
    return this.float() < p;
  }
}

/** JSON text written as it is; `deep` marks nesting too deep for JSON.stringify to write again. */
export class Raw {
  constructor(
    readonly text: string,
    readonly deep = false,
  ) {}
}
export class JsonObject {
  constructor(readonly entries: ReadonlyArray<readonly [string, Json]>) {}
}
export type Json = Raw | JsonObject | readonly Json[] | string | number | boolean | null;
export const obj = (...entries: Array<readonly [string, Json]>): JsonObject => new JsonObject(entries);

export function encode(value: Json): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof JsonObject) return `{${value.entries.map(([key, entry]) => `${JSON.stringify(key)}:${encode(entry)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map(encode).join(',')}]`;
  return JSON.stringify(value);
}

function isDeep(value: Json): boolean {
  if (value instanceof Raw) return value.deep;
  if (value instanceof JsonObject) return value.entries.some(([, entry]) => isDeep(entry));
  return Array.isArray(value) && value.some(isDeep);
}

export type RequestId = string | number;

/**
 * What must come back, before the next frame's answer: nothing, one error frame, or one
 * reply (an ack, a pong, or an error with one of `codes`). `id` is what the reply must
 * carry (null: no `id` at all); `action` what an error frame must name.
 */
export type Expectation =
  | { reply: 'none' }
  | { reply: 'error'; codes: readonly ErrorCode[]; action: string | null; id: RequestId | null }
  | { reply: 'any'; codes: readonly ErrorCode[]; action: string; id: RequestId | null };

export interface FuzzFrame {
  kind: string;
  data: string | Buffer;
  binary: boolean;
  expect: Expectation;
}

/** Custom actions the fuzzed server has: `echo` answers `{ echoed: data }`, `fail` throws. */
export const ECHO = 'echo';
export const FAIL = 'fail';

/** Valid names (§4's grammar) that are also names of Object.prototype's members. */
export const VALID_CHANNELS = ['fuzz.a', 'fuzz.b', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'a:b@c=d-e_f', `fuzz.${'x'.repeat(123)}`];
const BAD_CHANNELS = ['', ' ', 'a b', 'a..b', '.a', 'a.', 'ünï', 'a/b', 'a\u0000b', '*', '**', '{user_id}', 'a,b', 'x'.repeat(129), 'chat\nroom', '\u202e', 'a#b', '😀'];
const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];
const STRING_PIECES = ['', 'a', ' ', '\u0000', '\u001f', '\u007f', '\n', '"', '\\', 'é', '😀', '\ud800', '\udfff', '\u2028', '\ufeff', '__proto__', '%s', '<script>', 'null'];
const UNKNOWN_ACTIONS = ['', 'SUBSCRIBE', 'Subscribe', ' ping', 'ping ', 'message_sent', 'welcome', 'join', 'pusher:ping', 'publish', ...PROTOTYPE_KEYS];

export class FrameMaker {
  constructor(
    private readonly rng: Rng,
    private readonly maxPayload: number,
  ) {}

  /** One frame within `maxPayload`, of a random kind. */
  next(): FuzzFrame {
    for (;;) {
      const frame = this.any();
      if (Buffer.byteLength(frame.data) <= this.maxPayload) return frame;
    }
  }

  private any(): FuzzFrame {
    const roll = this.rng.int(100);
    if (roll < 12) return this.invalidJson();
    if (roll < 18) return this.notAnObject();
    if (roll < 24) return this.binary();
    if (roll < 34) return this.unknownAction();
    if (roll < 39) return this.badAction();
    if (roll < 49) return this.badId();
    if (roll < 55) return this.unknownTopLevelField();
    return this.request(roll < 65 ? 0 : 1);
  }

  private text(kind: string, json: Json, expect: Expectation): FuzzFrame {
    return { kind, data: encode(json), binary: false, expect };
  }

  private string(): string {
    const roll = this.rng.int(20);
    if (roll === 0) return 'x'.repeat(this.rng.int(this.maxPayload - 300));
    let text = '';
    for (let parts = this.rng.int(6); parts > 0; parts--) text += this.rng.pick(STRING_PIECES);
    return text;
  }

  private deepText(): Raw {
    const depth = 1000 + this.rng.int(Math.floor(this.maxPayload / 8));
    return this.rng.chance(0.5) ? new Raw('['.repeat(depth) + ']'.repeat(depth), true) : new Raw('{"a":'.repeat(depth) + '1' + '}'.repeat(depth), true);
  }

  /** Any JSON value but null at the top: what a message or custom data may be. */
  private value(depth = 0): Json {
    switch (this.rng.int(depth > 2 ? 5 : 9)) {
      case 0:
        return this.string();
      case 1:
        return this.rng.pick<Json>([0, 1.5, -7, new Raw('-0'), new Raw('1e-400'), new Raw('1E+300'), new Raw('9007199254740993'), new Raw('0.1e1')]);
      case 2:
        return this.rng.chance(0.5);
      case 3:
        return depth === 0 ? 'x' : null;
      case 4:
        return this.rng.pick(PROTOTYPE_KEYS);
      case 5:
        return Array.from({ length: this.rng.int(4) }, () => this.value(depth + 1));
      case 6:
        return obj(...Array.from({ length: this.rng.int(4) }, () => [this.rng.pick([...PROTOTYPE_KEYS, 'a', '']), this.value(depth + 1)] as const));
      case 7:
        return this.deepText();
      default:
        return obj(['__proto__', obj(['polluted', true])], ['constructor', obj(['prototype', obj(['polluted', true])])]);
    }
  }

  /** A valid id and what its echo reads (-0 comes back as 0, 9007199254740993 as ...992). */
  private id(): { json: Json; echo: RequestId } {
    const json = this.rng.pick<Json>([this.rng.int(1e6), this.string().slice(0, 200), new Raw('-0'), -2.5, new Raw('1e300'), new Raw('9007199254740993'), '']);
    return { json, echo: JSON.parse(JSON.stringify(JSON.parse(encode(json)))) as RequestId };
  }

  /** An id the protocol refuses: not a string, not a finite number. */
  private badIdValue(): Json {
    return this.rng.pick<Json>([null, true, false, obj(), [], [1], obj(['__proto__', obj()]), new Raw('1e309'), new Raw('-1e309'), this.deepText()]);
  }

  /** An optional valid id: the JSON entry to add and the id the reply carries. */
  private maybeId(): { entries: Array<readonly [string, Json]>; echo: RequestId | null } {
    if (this.rng.chance(0.2)) return { entries: [], echo: null };
    const { json, echo } = this.id();
    return { entries: [['id', json]], echo };
  }

  private invalidJson(): FuzzFrame {
    const expect: Expectation = { reply: 'error', codes: [ErrorCode.INVALID_JSON], action: null, id: null };
    for (;;) {
      const valid = encode(obj(['action', 'subscribe'], ['data', obj(['channel', this.rng.pick(VALID_CHANNELS)])], ['id', 1]));
      const candidates = [
        valid.slice(0, this.rng.int(valid.length)),
        this.rng.pick(["{'action':'ping'}", '{action:ping}', '{"action":"ping",}', 'NaN', 'undefined', '\ufeff{"action":"ping"}', '{"action":"ping"}x', '[1,]']),
        this.rng.pick(['{"a":1}{"b":2}', '\u0000', 'nul', 'tru', '01', '"\\x41"', '"open', '{"a":"\u0001"}', '-', '1.', '.5', '+1', 'Infinity', '0x10', '']),
        Array.from({ length: 1 + this.rng.int(40) }, () => String.fromCharCode(this.rng.int(128))).join(''),
      ];
      const text = this.rng.pick(candidates);
      try {
        JSON.parse(text);
      } catch {
        return { kind: 'invalid JSON', data: text, binary: false, expect };
      }
    }
  }

  private notAnObject(): FuzzFrame {
    const json = this.rng.pick<Json>(['ping', 42, null, true, [], [obj(['action', 'ping'], ['id', 1])], new Raw('1e309'), new Raw('-0'), this.string()]);
    return this.text('not an object', json, { reply: 'error', codes: [ErrorCode.INVALID_MESSAGE], action: null, id: null });
  }

  private binary(): FuzzFrame {
    const data = this.rng.chance(0.3) ? Buffer.from('{"action":"ping","id":1}') : Buffer.from(Array.from({ length: this.rng.int(2000) }, () => this.rng.int(256)));
    return { kind: 'binary', data, binary: true, expect: { reply: 'error', codes: [ErrorCode.INVALID_MESSAGE], action: null, id: null } };
  }

  private unknownAction(): FuzzFrame {
    const action = this.rng.chance(0.5) ? this.rng.pick(UNKNOWN_ACTIONS) : `x${this.string()}`;
    const id = this.maybeId();
    const data = this.rng.chance(0.5) ? [['data', this.value()] as const] : [];
    return this.text('unknown action', obj(['action', action], ...data, ...id.entries), { reply: 'error', codes: [ErrorCode.UNKNOWN_ACTION], action, id: id.echo });
  }

  private badAction(): FuzzFrame {
    const id = this.maybeId();
    const action: Array<readonly [string, Json]> = this.rng.chance(0.2) ? [] : [['action', this.rng.pick<Json>([1, null, true, obj(), ['ping'], new Raw('1e309')])]];
    return this.text('bad action', obj(...action, ['data', obj()], ...id.entries), { reply: 'error', codes: [ErrorCode.INVALID_MESSAGE], action: null, id: id.echo });
  }

  /** A request that would be valid but for its id: refused, naming its action, echoing no id. */
  private badId(): FuzzFrame {
    const { action, entries } = this.template();
    const json = obj(['action', action], ...entries, ['id', this.badIdValue()]);
    return this.text('bad id', json, { reply: 'error', codes: [ErrorCode.INVALID_MESSAGE], action, id: null });
  }

  private unknownTopLevelField(): FuzzFrame {
    const { action, entries } = this.template();
    const id = this.maybeId();
    const json = obj(['action', action], ...entries, ...id.entries, [this.rng.pick([...PROTOTYPE_KEYS, 'channel', 'Action', 'type']), this.value()]);
    return this.text('unknown top-level field', json, { reply: 'error', codes: [ErrorCode.INVALID_MESSAGE], action, id: id.echo });
  }

  /** A valid request of a random action, its `data` entries. */
  private template(): { action: string; entries: Array<readonly [string, Json]> } {
    // Subscribes and messages more often than the rest, so that messages get delivered too.
    const action = this.rng.pick(['subscribe', 'subscribe', 'unsubscribe', 'message', 'message', 'message', 'presence', 'history', 'ping', 'pong', 'auth', ECHO, FAIL]);
    const fields = this.validFields(action);
    return { action, entries: fields === null ? [] : [['data', obj(...fields)]] };
  }

  private validFields(action: string): Array<readonly [string, Json]> | null {
    const channel = ['channel', this.rng.pick(VALID_CHANNELS)] as const;
    const maybe = (name: string, value: () => Json): Array<readonly [string, Json]> => (this.rng.chance(0.4) ? [[name, value()]] : []);
    const offset = (): Json => this.rng.pick<Json>([0, 5, new Raw('-0'), new Raw('1e-400'), new Raw('2.0')]);
    switch (action) {
      case 'subscribe':
        return [channel, ...maybe('since', offset), ...maybe('epoch', () => this.string()), ...maybe('options', () => obj(['__proto__', obj()]))];
      case 'message':
        return [channel, ['message', this.value()], ...maybe('recipients', () => ['1', 2, '', '__proto__']), ...maybe('ephemeral', () => this.rng.chance(0.5))];
      case 'history':
        return [channel, ...maybe('since', offset), ...maybe('limit', () => 1 + this.rng.int(1000))];
      case 'auth':
        return [['token', this.string()]];
      case ECHO:
        return this.rng.chance(0.5) ? [['payload', this.value()]] : null;
      case 'ping':
      case 'pong':
      case FAIL:
        return this.rng.chance(0.5) ? [] : null;
      default:
        return [channel];
    }
  }

  /** A valid request, with `mutations` of its data made wrong; what it must get back. */
  private request(mutations: number): FuzzFrame {
    const { action, entries } = this.template();
    const id = this.maybeId();
    const data = entries.length === 0 ? null : (entries[0]?.[1] as JsonObject);
    const fields = [...(data?.entries ?? [])];
    const builtIn = action !== ECHO && action !== FAIL;
    let refusal: ErrorCode | null = null;
    if (mutations > 0 && builtIn) {
      const mutated = this.mutate(fields);
      fields.splice(0, fields.length, ...mutated.fields);
      refusal = mutated.code;
    }
    const json = obj(['action', action], ...(data === null && fields.length === 0 ? [] : [['data', obj(...fields)] as const]), ...id.entries);
    if (refusal !== null) return this.text('mutated request', json, { reply: 'error', codes: [refusal], action, id: id.echo });
    if (action === 'pong') return this.text('valid request', json, { reply: 'none' });
    if (action === FAIL) return this.text('valid request', json, { reply: 'error', codes: [ErrorCode.INTERNAL_ERROR], action, id: id.echo });
    // Data too deep for JSON.stringify cannot be sent on: a message nested that deep is
    // refused as it arrives; what a custom action echoes is an INTERNAL_ERROR, never a crash.
    const deep = isDeep(json) ? [ErrorCode.INTERNAL_ERROR] : [];
    const codes: Record<string, readonly ErrorCode[]> = {
      subscribe: [ErrorCode.TOO_MANY_CHANNELS],
      message: [ErrorCode.NOT_SUBSCRIBED, ...(isDeep(json) ? [ErrorCode.INVALID_MESSAGE] : [])],
      presence: [ErrorCode.NOT_ENABLED],
      history: [ErrorCode.NOT_ENABLED],
      auth: [ErrorCode.TOKEN_INVALID],
      [ECHO]: deep,
    };
    return this.text('valid request', json, { reply: 'any', codes: codes[action] ?? [], action, id: id.echo });
  }

  /** One field made wrong (retyped, dropped, or an unknown one added), and the code that refuses it. */
  private mutate(fields: Array<readonly [string, Json]>): { fields: Array<readonly [string, Json]>; code: ErrorCode } {
    const roll = this.rng.int(fields.length + 1);
    if (roll === fields.length) {
      const key = this.rng.pick([...PROTOTYPE_KEYS, 'chanel', 'Channel', 'data']);
      return { fields: [...fields, [key, this.value()]], code: ErrorCode.INVALID_MESSAGE };
    }
    const [name] = fields[roll] as readonly [string, Json];
    if (this.rng.chance(0.15) && (name === 'channel' || name === 'message' || name === 'token')) {
      return { fields: fields.filter((_, index) => index !== roll), code: ErrorCode.INVALID_MESSAGE };
    }
    if (name === 'channel' && this.rng.chance(0.6)) {
      return { fields: fields.map((entry, index) => (index === roll ? ['channel', this.rng.pick(BAD_CHANNELS)] : entry)), code: ErrorCode.INVALID_CHANNEL };
    }
    const wrong: Record<string, readonly Json[]> = {
      channel: [1, null, true, ['fuzz.a'], obj(['channel', 'fuzz.a'])],
      since: [-1, 1.5, '5', new Raw('1e309'), new Raw('9007199254740993'), true, null],
      limit: [0, 1001, 1.5, '10', -1, null, new Raw('1e309')],
      epoch: [1, null, obj(), [], true],
      options: ['x', 1, [], null],
      message: [null, new Raw('1e309'), new Raw('-1e309')],
      recipients: ['x', obj(), [obj()], [null], [true], [new Raw('1e309')], Array.from({ length: 1001 }, () => 1)],
      ephemeral: ['true', 1, null, []],
      token: [1, null, obj(), [], true],
    };
    const choices = wrong[name] ?? [null];
    return { fields: fields.map((entry, index) => (index === roll ? [name, this.rng.pick(choices)] : entry)), code: ErrorCode.INVALID_MESSAGE };
  }
}
