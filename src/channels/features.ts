/**
 * Which channels have presence and history (SPEC §4): from the first rule of the channels
 * file whose pattern matches the channel, or, without a channels file, the same for every
 * channel (WS_PRESENCE, WS_HISTORY_SIZE, WS_HISTORY_TTL). A feature belongs to the
 * channel, not to whoever looks at it: `{user_id}` matches any one segment here.
 */
import type { HistorySettings } from '../history/history.js';
import type { ChannelName } from '../types.js';
import { compilePattern, matchesPattern, type ChannelRule, type CompiledPattern } from './rules.js';

export interface ChannelFeatureDefaults {
  /** Presence on every channel (WS_PRESENCE). */
  readonly presence: boolean;
  /** Messages kept per channel (0: no history, WS_HISTORY_SIZE) and for how many seconds after the last (WS_HISTORY_TTL). */
  readonly history: { readonly size: number; readonly ttl: number };
}

export interface Features {
  readonly presence: boolean;
  readonly history: HistorySettings | null;
}

const NONE: Features = Object.freeze({ presence: false, history: null });

/**
 * Pusher's cache channels (`cache-*`, `private-cache-*`, `presence-cache-*`,
 * `private-encrypted-cache-*`) keep their last event for 30 minutes: a history of one.
 */
export const CACHE_CHANNEL = /^(?:private-encrypted-|private-|presence-)?cache-/;
const CACHE_HISTORY: HistorySettings = Object.freeze({ size: 1, ttl: 1800 });
const CACHED = Object.freeze({ presence: false, history: CACHE_HISTORY });
const CACHED_WITH_PRESENCE = Object.freeze({ presence: true, history: CACHE_HISTORY });

/** Channels whose features were looked up, kept for the next lookup (fan-out asks once per message). */
const CACHE_LIMIT = 10_000;

export class ChannelFeatures {
  private readonly rules: Array<{ pattern: CompiledPattern; features: Features }> | null;
  private readonly everywhere: Features;
  private readonly cache = new Map<ChannelName, Features>();

  /** `cacheChannels`: the Pusher endpoint is on, and its cache channels keep their last event unless a history is configured. */
  constructor(
    rules: readonly ChannelRule[] | null,
    defaults: ChannelFeatureDefaults,
    private readonly cacheChannels = false,
  ) {
    this.everywhere = Object.freeze({
      presence: defaults.presence,
      history: defaults.history.size > 0 ? Object.freeze({ size: defaults.history.size, ttl: defaults.history.ttl }) : null,
    });
    this.rules =
      rules === null
        ? null
        : rules.map((rule, index) => ({
            pattern: compilePattern(rule.pattern, `rules[${index}]`),
            features: Object.freeze({ presence: rule.presence === true, history: rule.history === undefined ? null : Object.freeze({ ...rule.history }) }),
          }));
  }

  of(channel: ChannelName): Features {
    const features = this.configured(channel);
    if (!this.cacheChannels || features.history !== null || !CACHE_CHANNEL.test(channel)) return features;
    return features.presence ? CACHED_WITH_PRESENCE : CACHED;
  }

  private configured(channel: ChannelName): Features {
    if (this.rules === null) return this.everywhere;
    let features = this.cache.get(channel);
    if (features !== undefined) return features;
    features = NONE;
    const parts = channel.split('.');
    for (const rule of this.rules) {
      if (matchesPattern(rule.pattern, parts, null, true)) {
        features = rule.features;
        break;
      }
    }
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(channel, features);
    return features;
  }

  presence(channel: ChannelName): boolean {
    return this.of(channel).presence;
  }

  history(channel: ChannelName): HistorySettings | null {
    return this.of(channel).history;
  }
}
