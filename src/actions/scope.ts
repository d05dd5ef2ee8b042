/** What the built-in actions work with: the same for every protocol that calls them. */
import type { TokenVerifier } from '../auth/tokens.js';
import type { ChannelFeatures } from '../channels/features.js';
import type { ChannelPermissions } from '../channels/rules.js';
import type { HookRunner } from '../hooks.js';
import type { Hub } from '../hub/hub.js';
import type { ChannelName } from '../types.js';
import type { MemberInfo } from '../views/cluster-view.js';

export interface ActionScope {
  readonly hub: Hub;
  readonly hooks: HookRunner;
  readonly permissions: ChannelPermissions;
  /** Which channels have presence and history. */
  readonly features: ChannelFeatures;
  /** A channel's members on every node (the cluster view). */
  members(channel: ChannelName): Promise<MemberInfo[]>;
  readonly verifier: TokenVerifier;
  readonly maxChannelsPerConnection: number;
}
