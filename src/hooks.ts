/**
 * What an application registers on a handler: hooks on connect, disconnect, subscribe
 * and message, and custom actions. Kept apart from the protocols that run them, so
 * that every protocol applies the same rules the same way.
 */
import type { ConnectionInfo } from './connection/connection-info.js';
import { SwitchboardError } from './errors.js';
import { ErrorCode, ErrorText } from './codes.js';
import type { ChannelName, RequestId } from './types.js';

/** A subscribe hook refuses with `false` or a reason string; anything else allows. */
export type SubscribeVerdict = boolean | string | void;
/** A message hook refuses with `false` or a reason, or replaces the message with `{ message }`. */
export type MessageVerdict = boolean | string | void | { message: unknown };

export interface OutgoingMessage {
  readonly channel: ChannelName;
  readonly message: unknown;
  readonly recipients: readonly string[] | null;
}

export type ConnectHook = (connection: ConnectionInfo) => void | Promise<void>;
export type DisconnectHook = (connection: ConnectionInfo, close: { code: number; reason: string }) => void | Promise<void>;
export type SubscribeHook = (connection: ConnectionInfo, channel: ChannelName) => SubscribeVerdict | Promise<SubscribeVerdict>;
export type MessageHook = (connection: ConnectionInfo, message: OutgoingMessage) => MessageVerdict | Promise<MessageVerdict>;

/** What a custom action is called with; `Owner` is the handler it was registered on. */
export interface ActionContextOf<Owner> {
  readonly connection: ConnectionInfo;
  /** The request's `id`, or null. */
  readonly id: RequestId | null;
  readonly handler: Owner;
}
/** A custom action; a result other than undefined is sent back as `{success, action, data}`. */
export type ActionHandlerOf<Owner> = (context: ActionContextOf<Owner>, data: unknown) => unknown;

export interface ActionOptions {
  /** Refuse the action with UNAUTHORIZED on connections without a valid token. @default false */
  requireAuth?: boolean;
}

/** Actions of the native protocol (and names it keeps for itself): no custom action may take them. */
export const BUILT_IN_ACTIONS: ReadonlySet<string> = new Set(['subscribe', 'unsubscribe', 'message', 'ping', 'pong', 'auth', 'presence', 'history']);

export class Hooks<Owner> {
  private readonly connectHooks: ConnectHook[] = [];
  private readonly disconnectHooks: DisconnectHook[] = [];
  private readonly subscribeHooks: SubscribeHook[] = [];
  private readonly messageHooks: MessageHook[] = [];
  private readonly actions = new Map<string, { handler: ActionHandlerOf<Owner>; options: ActionOptions }>();

  /** `owner`: what custom actions see as `context.handler`. */
  constructor(private readonly owner: Owner) {}

  onConnect(hook: ConnectHook): void {
    this.connectHooks.push(hook);
  }

  onDisconnect(hook: DisconnectHook): void {
    this.disconnectHooks.push(hook);
  }

  onSubscribe(hook: SubscribeHook): void {
    this.subscribeHooks.push(hook);
  }

  onMessage(hook: MessageHook): void {
    this.messageHooks.push(hook);
  }

  onAction(name: string, handler: ActionHandlerOf<Owner>, options: ActionOptions): void {
    if (typeof name !== 'string' || name === '') throw new Error('onAction: the action name must be a non-empty string');
    if (BUILT_IN_ACTIONS.has(name)) throw new Error(`onAction: '${name}' is a built-in action`);
    this.actions.set(name, { handler, options });
  }

  /** The custom actions' names, for the parser to tell them from unknown actions. */
  get actionNames(): { has(name: string): boolean } {
    return this.actions;
  }

  get hasConnectHooks(): boolean {
    return this.connectHooks.length > 0;
  }

  get hasDisconnectHooks(): boolean {
    return this.disconnectHooks.length > 0;
  }

  async connected(connection: ConnectionInfo): Promise<void> {
    for (const hook of this.connectHooks) await hook(connection);
  }

  async disconnected(connection: ConnectionInfo, close: { code: number; reason: string }): Promise<void> {
    for (const hook of this.disconnectHooks) await hook(connection, close);
  }

  /** Throws FORBIDDEN when a subscribe hook refuses. */
  async checkSubscribe(connection: ConnectionInfo, channel: ChannelName): Promise<void> {
    for (const hook of this.subscribeHooks) refuseIf(await hook(connection, channel), `subscribing to ${channel} is not allowed`);
  }

  /** Runs the message hooks in order; throws FORBIDDEN when one refuses, and returns the message as the last one left it. */
  async checkMessage(connection: ConnectionInfo, outgoing: OutgoingMessage): Promise<unknown> {
    let message = outgoing.message;
    for (const hook of this.messageHooks) {
      const verdict = await hook(connection, { channel: outgoing.channel, message, recipients: outgoing.recipients });
      refuseIf(verdict, `publishing to ${outgoing.channel} is not allowed`);
      if (typeof verdict === 'object' && verdict !== null) {
        if (verdict.message === null || verdict.message === undefined) throw new Error('a message hook replaced the message with null');
        message = verdict.message;
      }
    }
    return message;
  }

  /** Runs a registered custom action; resolves with its result (undefined: no reply). */
  async runAction(connection: ConnectionInfo, name: string, data: unknown, id: RequestId | null): Promise<unknown> {
    const action = this.actions.get(name);
    if (action === undefined) throw new SwitchboardError(ErrorCode.UNKNOWN_ACTION, ErrorText.unknownAction(name));
    if (action.options.requireAuth === true && !connection.authenticated) {
      throw new SwitchboardError(ErrorCode.UNAUTHORIZED, `action '${name}' needs an authenticated connection`);
    }
    const result: unknown = await action.handler({ connection, id, handler: this.owner }, data);
    return result;
  }
}

/** What the protocols and actions use of the registered hooks, whatever handler they belong to. */
export type HookRunner = Pick<Hooks<unknown>, 'actionNames' | 'hasConnectHooks' | 'hasDisconnectHooks' | 'connected' | 'disconnected' | 'checkSubscribe' | 'checkMessage' | 'runAction'>;

/** A hook's refusal: `false`, or a reason string (an empty one gets the default reason). */
function refuseIf(verdict: unknown, defaultReason: string): void {
  if (verdict === false) throw new SwitchboardError(ErrorCode.FORBIDDEN, defaultReason);
  if (typeof verdict === 'string') throw new SwitchboardError(ErrorCode.FORBIDDEN, verdict === '' ? defaultReason : verdict);
}
