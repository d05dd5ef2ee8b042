/**
 * Channel permission rules (SPEC §4): who may subscribe to and publish on which channels.
 *
 * Rules are parsed and compiled once at start-up; a check is a walk over the compiled
 * rules (first match decides, no match denies) comparing pre-split segments, with no
 * parsing or allocation beyond splitting the channel name.
 */
import type { ChannelName } from '../types.js';

export type Operation = 'subscribe' | 'publish';

/** A rule as written in the channels file. */
export interface ChannelRule {
  /** Dot-separated segments: literals, `*` (one segment), `**` (last: any further segments, none included), `{user_id}`. */
  pattern: string;
  /** Role words allowed to subscribe: `*` anyone, `authenticated` any valid token, or role names. */
  subscribe: string[];
  /** Role words allowed to publish. */
  publish: string[];
  /** Subscribers see join/leave events and may list members. */
  presence?: boolean;
  /** Keep the last `size` messages for at most `ttl` seconds. */
  history?: { size: number; ttl: number };
}

/** The identity a permission check looks at. */
export interface Subject {
  readonly authenticated: boolean;
  /** The user id as a string, or null for anonymous connections. */
  readonly userKey: string | null;
  readonly roles: readonly string[];
}

export class RuleError extends Error {}

export const enum SegmentKind {
  Literal,
  AnySegment,
  AnyRest,
  UserId,
}

export interface Segment {
  kind: SegmentKind;
  literal: string;
}

/** A pattern split into segments once. */
export interface CompiledPattern {
  readonly segments: readonly Segment[];
  readonly endsWithRest: boolean;
}

interface CompiledRule extends CompiledPattern {
  readonly rule: ChannelRule;
  readonly subscribe: RoleSet;
  readonly publish: RoleSet;
}

interface RoleSet {
  anyone: boolean;
  authenticated: boolean;
  roles: ReadonlySet<string>;
}

const SEGMENT = /^[A-Za-z0-9_\-:@=]+$/;
const RULE_FIELDS = new Set(['pattern', 'subscribe', 'publish', 'presence', 'history']);

export function compilePattern(pattern: unknown, where: string): CompiledPattern {
  if (typeof pattern !== 'string' || pattern === '') throw new RuleError(`${where}.pattern must be a non-empty string`);
  const parts = pattern.split('.');
  const segments: Segment[] = [];
  parts.forEach((part, index) => {
    if (part === '**') {
      if (index !== parts.length - 1) throw new RuleError(`${where}.pattern '${pattern}': '**' may only be the last segment`);
      segments.push({ kind: SegmentKind.AnyRest, literal: '' });
    } else if (part === '*') {
      segments.push({ kind: SegmentKind.AnySegment, literal: '' });
    } else if (part === '{user_id}') {
      segments.push({ kind: SegmentKind.UserId, literal: '' });
    } else if (SEGMENT.test(part)) {
      segments.push({ kind: SegmentKind.Literal, literal: part });
    } else {
      throw new RuleError(`${where}.pattern '${pattern}': segment '${part}' is not a channel segment, '*', '**' or '{user_id}'`);
    }
  });
  const endsWithRest = segments.at(-1)?.kind === SegmentKind.AnyRest;
  return { segments: endsWithRest ? segments.slice(0, -1) : segments, endsWithRest };
}

function compileRoles(value: unknown, where: string): RoleSet {
  if (!Array.isArray(value) || !value.every((role) => typeof role === 'string' && role.trim() !== '')) {
    throw new RuleError(`${where} must be an array of role words ('*', 'authenticated' or role names)`);
  }
  const words = value.map((role: string) => role.trim());
  return { anyone: words.includes('*'), authenticated: words.includes('authenticated'), roles: new Set(words) };
}

function isPositiveInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

/** Validates a parsed channels file (`{ "rules": [...] }`) and returns its rules. */
export function parseChannelRules(document: unknown): ChannelRule[] {
  if (typeof document !== 'object' || document === null || !Array.isArray((document as { rules?: unknown }).rules)) {
    throw new RuleError(`expected an object { "rules": [ ... ] }`);
  }
  const unknownTop = Object.keys(document).filter((key) => key !== 'rules');
  if (unknownTop.length > 0) throw new RuleError(`unknown field '${unknownTop[0]}' (only "rules" is allowed)`);
  const rules = (document as { rules: unknown[] }).rules;
  return rules.map((raw, index) => {
    const where = `rules[${index}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new RuleError(`${where} must be an object`);
    const rule = raw as Record<string, unknown>;
    for (const key of Object.keys(rule)) {
      if (!RULE_FIELDS.has(key)) throw new RuleError(`${where}: unknown field '${key}'`);
    }
    compilePattern(rule.pattern, where);
    compileRoles(rule.subscribe ?? [], `${where}.subscribe`);
    compileRoles(rule.publish ?? [], `${where}.publish`);
    if (rule.presence !== undefined && typeof rule.presence !== 'boolean') throw new RuleError(`${where}.presence must be true or false`);
    const history = rule.history as { size?: unknown; ttl?: unknown } | undefined;
    if (history !== undefined) {
      const fields = typeof history === 'object' && history !== null ? Object.keys(history) : [];
      if (!isPositiveInteger(history?.size) || !isPositiveInteger(history?.ttl) || fields.some((key) => key !== 'size' && key !== 'ttl')) {
        throw new RuleError(`${where}.history must be { "size": <positive integer>, "ttl": <positive seconds> }`);
      }
    }
    return {
      pattern: rule.pattern as string,
      subscribe: (rule.subscribe as string[] | undefined) ?? [],
      publish: (rule.publish as string[] | undefined) ?? [],
      ...(rule.presence !== undefined && { presence: rule.presence }),
      ...(history !== undefined && { history: { size: history.size as number, ttl: history.ttl as number } }),
    };
  });
}

function allows(roles: RoleSet, subject: Subject): boolean {
  if (roles.anyone) return true;
  if (!subject.authenticated) return false;
  if (roles.authenticated) return true;
  for (const role of subject.roles) if (roles.roles.has(role)) return true;
  return false;
}

/**
 * The compiled rules. Without rules (no channels file) everything is allowed, as in
 * GEMVC; with rules, the first rule whose pattern matches decides and no match denies.
 */
export class ChannelPermissions {
  private readonly compiled: CompiledRule[] | null;

  /**
   * `reservePusherChannels`: with the Pusher endpoint on and no rules, `private-*` and
   * `presence-*` are Pusher's signed channels, which native clients may not use (a rule may
   * grant them). Without it, no rules allow everything (GEMVC's behaviour).
   */
  constructor(
    rules: readonly ChannelRule[] | null,
    private readonly reservePusherChannels = false,
  ) {
    this.compiled =
      rules === null
        ? null
        : rules.map((rule, index) => ({
            rule,
            ...compilePattern(rule.pattern, `rules[${index}]`),
            subscribe: compileRoles(rule.subscribe, `rules[${index}].subscribe`),
            publish: compileRoles(rule.publish, `rules[${index}].publish`),
          }));
  }

  can(operation: Operation, channel: ChannelName, subject: Subject): boolean {
    if (this.compiled === null) return !this.reservePusherChannels || !/^(?:private|presence)-/.test(channel);
    const parts = channel.split('.');
    for (const candidate of this.compiled) {
      if (matchesPattern(candidate, parts, subject.userKey)) return allows(candidate[operation], subject);
    }
    return false;
  }
}

/**
 * Whether a channel (split at its dots) matches a pattern. `{user_id}` matches the
 * subject's own user id, or any one segment with `anyUser` (a channel's features are
 * the same whoever looks).
 */
export function matchesPattern(pattern: CompiledPattern, parts: readonly string[], userKey: string | null, anyUser = false): boolean {
  const { segments, endsWithRest } = pattern;
  if (endsWithRest ? parts.length < segments.length : parts.length !== segments.length) return false;
  for (let index = 0; index < segments.length; index++) {
    const segment = segments[index] as Segment;
    const part = parts[index] as string;
    switch (segment.kind) {
      case SegmentKind.Literal:
        if (part !== segment.literal) return false;
        break;
      case SegmentKind.UserId:
        if (!anyUser && (userKey === null || part !== userKey)) return false;
        break;
      default:
        // AnySegment; a trailing `**` was compiled into `endsWithRest` and is not a segment here.
        break;
    }
  }
  return true;
}
