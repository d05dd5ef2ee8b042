/**
 * The native protocol (SPEC §2), GEMVC's superset: JSON text frames in, each decoded,
 * rate-limited, validated and dispatched to a built-in action (actions/) or a custom
 * one; acks, errors and notices out. A second protocol sits beside this file and calls
 * the same actions.
 */
import type { Logger } from 'pino';
import type { RawData } from 'ws';
import { applyIdentity, verifyToken } from '../actions/authenticate.js';
import { subscribe, unsubscribe } from '../actions/channel-membership.js';
import { historyFor, presenceFor } from '../actions/channel-state.js';
import { publishFromClient } from '../actions/publish.js';
import type { ActionScope } from '../actions/scope.js';
import type { Connection } from '../connection/connection.js';
import { ClusterUnavailableError, SwitchboardError } from '../errors.js';
import type { PublishResult } from '../broker/broker.js';
import { InFlight } from '../connection/request-queue.js';
import type { NodeStats } from '../metrics/stats.js';
import { CloseCode, ErrorCode, ErrorText } from '../codes.js';
import { decodeJson, invalidJson, parseRequest, type ClientRequest, type ProtocolViolation } from './inbound.js';
import { ack, errorFrame, historyReply, TIMEOUT_FRAME, type WelcomeFrame } from './outbound.js';
import { nativeWire, type Wire } from '../connection/wire.js';
import { unixSeconds } from '../clock.js';
import type { RequestId } from '../types.js';

export interface NativeProtocolOptions {
  readonly heartbeatInterval: number;
  readonly maxMessagesPerMinute: number;
}

type Request = Exclude<ClientRequest, { action: 'pong' }>;

export class NativeProtocol {
  /** Deliveries as they are; the JSON heartbeat; `timeout` before 4008. */
  readonly wire: Wire = nativeWire({ frame: TIMEOUT_FRAME, code: CloseCode.TIMEOUT });

  constructor(
    private readonly scope: ActionScope,
    private readonly options: NativeProtocolOptions,
    private readonly stats: NodeStats,
    private readonly logger: Logger,
  ) {}

  /** Greets a new connection, then runs the application's connect hooks before its first request. */
  opened(connection: Connection): void {
    const welcome: WelcomeFrame = {
      action: 'welcome',
      connection_id: connection.id,
      heartbeat_interval: this.options.heartbeatInterval,
      authenticated: connection.authenticated,
      user_id: connection.userId,
      role: connection.role,
    };
    connection.send(welcome);
    if (!this.scope.hooks.hasConnectHooks) return;
    connection.enqueue(async () => {
      try {
        await this.scope.hooks.connected(connection);
      } catch (error) {
        this.replyWithError(connection, error, null, null);
      }
    });
  }

  frame(connection: Connection, data: RawData, isBinary: boolean): void {
    const now = Date.now();
    connection.lastSeen = now;
    this.stats.framesReceived++;
    this.stats.bytesReceived += Array.isArray(data) ? data.reduce((sum, part) => sum + part.length, 0) : data.byteLength;
    if (!connection.isOpen) return;
    // The sweep closes expired connections within a second; no frame is served meanwhile.
    if (connection.tokenExpiresAt !== null && now >= connection.tokenExpiresAt) {
      connection.close(CloseCode.TOKEN_EXPIRED);
      return;
    }

    if (isBinary) {
      if (this.admit(connection, now, null, null)) {
        this.reply(connection, { code: ErrorCode.INVALID_MESSAGE, error: 'binary frames are not supported; send JSON text frames', action: null, id: null });
      }
      return;
    }

    const frame = decodeJson((data as Buffer).toString('utf8'));
    if (frame === undefined) {
      if (this.admit(connection, now, null, null)) this.reply(connection, invalidJson());
      return;
    }

    const parsed = parseRequest(frame, this.scope.hooks.actionNames);
    if (!parsed.ok) {
      if (this.admit(connection, now, parsed.violation.action, parsed.violation.id)) this.reply(connection, parsed.violation);
      return;
    }
    const request = parsed.request;
    if (request.action === 'pong') {
      // Answers to our pings do not count against the rate limit (SPEC §3); pongs nobody
      // asked for do, or they would be a way around it.
      if (connection.unansweredPings > 0) connection.unansweredPings--;
      else this.admit(connection, now, 'pong', request.id);
      return;
    }
    if (!this.admit(connection, now, request.action === 'custom' ? request.name : request.action, request.id)) return;
    if (request.action === 'message') connection.enqueue(() => this.publish(connection, request), this.scope.hub.pipelinesPublishes);
    else connection.enqueue(() => this.dispatch(connection, request));
  }

  /** Applies the rate limit; replies RATE_LIMITED or closes 4029 and returns false when over it. */
  private admit(connection: Connection, now: number, action: string | null, id: RequestId | null): boolean {
    const waitMs = connection.rateLimiter.take(now);
    if (waitMs === 0) return true;
    this.stats.rateLimited++;
    if (connection.rateLimiter.refusedSinceLastAccepted > this.options.maxMessagesPerMinute) {
      this.logger.info({ connection: connection.id }, 'closing a connection that kept flooding');
      connection.close(CloseCode.FLOODING);
      return false;
    }
    const frame = errorFrame(ErrorCode.RATE_LIMITED, ErrorText.RATE_LIMITED, action, id, { retry_after: waitMs / 1000 });
    connection.enqueue(() => connection.send(frame));
    return false;
  }

  /**
   * Answers a refused frame. The answer waits behind the connection's pending requests, so
   * replies always come in the order the frames were sent (GEMVC clients send no ids).
   */
  private reply(connection: Connection, violation: ProtocolViolation): void {
    connection.enqueue(() => connection.send(errorFrame(violation.code, violation.error, violation.action, violation.id)));
  }

  private async dispatch(connection: Connection, request: Exclude<Request, { action: 'message' }>): Promise<void> {
    const action = request.action === 'custom' ? request.name : request.action;
    try {
      switch (request.action) {
        case 'ping':
          // SPEC §2: the pong reply is not an ack and carries no `success` field.
          connection.send(request.id === null ? { action: 'pong', time: unixSeconds() } : { action: 'pong', time: unixSeconds(), id: request.id });
          return;
        case 'auth': {
          const verified = await verifyToken(this.scope, request.token);
          if (!connection.isOpen) return;
          const { identity, leftChannels } = applyIdentity(this.scope, connection, verified);
          connection.send(ack({ action: 'auth', authenticated: true, user_id: identity.userId, role: identity.role }, request.id));
          for (const channel of leftChannels) connection.send({ action: 'unsubscribe', channel, reason: 'forbidden' });
          return;
        }
        case 'subscribe': {
          const resume = request.since === null ? null : { since: request.since, epoch: request.epoch };
          const joined = await subscribe(this.scope, connection, request.channel, resume);
          if (joined === null) return;
          const body: Record<string, unknown> = { action: 'subscribe', channel: request.channel };
          if (joined.position !== null) {
            body.epoch = joined.position.epoch;
            body.offset = joined.position.offset;
          }
          if (joined.recovered !== null) body.recovered = joined.recovered;
          connection.send(ack(body, request.id));
          // The replay and the live messages held meanwhile follow the ack, in this turn.
          joined.release();
          return;
        }
        case 'unsubscribe':
          unsubscribe(this.scope, connection, request.channel);
          connection.send(ack({ action: 'unsubscribe', channel: request.channel }, request.id));
          return;
        case 'presence': {
          const { members, users, connections } = await presenceFor(this.scope, connection, request.channel);
          const list = members.map((member) => ({ connection_id: member.connectionId, user_id: member.userId }));
          connection.send(ack({ action: 'presence', channel: request.channel, members: list, users, connections }, request.id));
          return;
        }
        case 'history': {
          const page = await historyFor(this.scope, connection, request.channel, { since: request.since, limit: request.limit });
          connection.sendText(historyReply(request.channel, page, request.id));
          return;
        }
        case 'custom': {
          const result = await this.scope.hooks.runAction(connection, request.name, request.data, request.id);
          if (result !== undefined) connection.send(ack({ action: request.name, data: result }, request.id));
          return;
        }
      }
    } catch (error) {
      this.replyWithError(connection, error, action, request.id);
    }
  }

  /**
   * A client's publish. Its ack (or error) is in flight once the message is in the broker's
   * hands, so that the connection's next publish may start before the broker answers this
   * one (request-queue.ts); the replies still leave in order.
   */
  private async publish(connection: Connection, request: Extract<Request, { action: 'message' }>): Promise<InFlight> {
    let outcome: Promise<PublishResult>;
    try {
      ({ outcome } = await publishFromClient(this.scope, connection, request, { ephemeral: request.ephemeral }));
    } catch (error) {
      return new InFlight(Promise.resolve(() => this.replyWithError(connection, error, 'message', request.id)));
    }
    const sent = ({ count, position }: PublishResult) => (): void => {
      const body = { action: 'message_sent', channel: request.channel, recipients_count: count };
      // After the deliveries of this turn: this node's subscribers have the message before its publisher's ack.
      connection.send(ack(position === null ? body : { ...body, offset: position.offset }, request.id), true);
    };
    return new InFlight(outcome.then(sent, (error: unknown) => () => this.replyWithError(connection, error, 'message', request.id)));
  }

  private replyWithError(connection: Connection, error: unknown, action: string | null, id: RequestId | null): void {
    if (error instanceof SwitchboardError) {
      connection.send(errorFrame(error.code, error.message, action, id));
      return;
    }
    // The cluster out of reach (Redis, the primary) is an outage, logged where it is
    // detected; a bug is logged here.
    // Logged at debug: the outage itself is logged once where it is detected, and a line
    // per refused request would flood the log for as long as it lasts.
    if (error instanceof ClusterUnavailableError) this.logger.debug({ err: error, connection: connection.id, action }, 'request failed: the cluster is out of reach');
    else this.logger.error({ err: error, connection: connection.id, action }, 'request failed');
    connection.send(errorFrame(ErrorCode.INTERNAL_ERROR, ErrorText.INTERNAL_ERROR, action, id));
  }
}
