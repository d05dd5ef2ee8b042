/** What the built-in actions work with: the same for every protocol that calls them. */
import type { TokenVerifier } from '../auth/tokens.js';
import type { ChannelPermissions } from '../channels/rules.js';
import type { HookRunner } from '../hooks.js';
import type { Hub } from '../hub/hub.js';

export interface ActionScope {
  readonly hub: Hub;
  readonly hooks: HookRunner;
  readonly permissions: ChannelPermissions;
  readonly verifier: TokenVerifier;
  readonly maxChannelsPerConnection: number;
}
