import type { ChannelName } from '../types.js';

export const MAX_CHANNEL_LENGTH = 128;

// Segments of A-Z a-z 0-9 _ - : @ = joined by single dots (SPEC §4).
export const CHANNEL_PATTERN = /^[A-Za-z0-9_\-:@=]+(?:\.[A-Za-z0-9_\-:@=]+)*$/;

/** Returns why `name` is not a valid channel name, or null when it is valid. */
export function channelNameProblem(name: string): string | null {
  if (name.length === 0) return 'channel name is empty';
  if (name.length > MAX_CHANNEL_LENGTH) return `channel name is longer than ${MAX_CHANNEL_LENGTH} characters`;
  if (!CHANNEL_PATTERN.test(name)) {
    return 'channel name may only contain A-Z a-z 0-9 _ - : @ = in dot-separated, non-empty segments';
  }
  return null;
}

export function isValidChannelName(name: unknown): name is ChannelName {
  return typeof name === 'string' && channelNameProblem(name) === null;
}
