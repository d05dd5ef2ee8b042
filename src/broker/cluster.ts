/**
 * Workers of one machine without Redis (SPEC §6, WS_WORKER_NUM > 1): each worker runs a
 * ClusterBroker, and the primary process runs a ClusterRelay that knows every worker's
 * memberships and passes each message to the workers with subscribers on its channel.
 * A client on any worker reaches subscribers on every worker, and `recipients_count` is
 * counted over all of them, as with Redis. The HTTP API's views (stats, channels,
 * members, disconnect) are answered for all workers too.
 */
import type { ChannelName, ConnectionId } from '../types.js';
import type { Broker, Delivery, DisconnectResult, DisconnectTarget, LocalDelivery, Member, MemberInfo, NodeReport } from './broker.js';

type Query = { query: 'nodes' } | { query: 'channels' } | { query: 'members'; channel: ChannelName } | { query: 'disconnect'; target: DisconnectTarget };

/** Worker → primary. `sb` marks our messages among the ones node:cluster sends itself. */
export type WorkerMessage =
  | { sb: 'publish'; id: number; channel: ChannelName; recipients: readonly string[] | null; frame: string }
  | { sb: 'join'; id: number; channel: ChannelName; connectionId: ConnectionId; userId: string | null }
  | { sb: 'leave'; channel: ChannelName; connectionId: ConnectionId }
  | ({ sb: 'query'; id: number } & Query)
  /** A worker's part of a query the primary asked every worker (`ask`). */
  | { sb: 'part'; ask: number; part: NodeReport | number };

/** Primary → worker. */
export type PrimaryMessage =
  | { sb: 'deliver'; channel: ChannelName; recipients: readonly string[] | null; frame: string }
  | { sb: 'reply'; id: number; count: number }
  | { sb: 'answer'; id: number; data: unknown }
  | { sb: 'ask'; ask: number; query: 'report' }
  | { sb: 'ask'; ask: number; query: 'disconnect'; target: DisconnectTarget };

/** How long the primary waits for the workers' parts of an answer. */
const PARTS_WAIT_MS = 1000;

/** The channel to the primary: `process` in a worker. */
export interface PrimaryChannel {
  send?: ((message: WorkerMessage, sendHandle: undefined, options: undefined, callback: (error: Error | null) => void) => boolean) | undefined;
  connected?: boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

function isPrimaryMessage(message: unknown): message is PrimaryMessage {
  return typeof message === 'object' && message !== null && 'sb' in message;
}

/** The worker side: local delivery at once, everything else through the primary. */
export class ClusterBroker implements Broker {
  private local: LocalDelivery | null = null;
  private nextId = 0;
  private readonly pending = new Map<number, (answer: unknown) => void>();
  private readonly listener = (message: unknown): void => this.onMessage(message);

  constructor(private readonly primary: PrimaryChannel = process) {}

  start(local: LocalDelivery): Promise<void> {
    if (typeof this.primary.send !== 'function') return Promise.reject(new Error('ClusterBroker runs only in a worker process (no IPC channel to a primary)'));
    this.local = local;
    this.primary.on('message', this.listener);
    return Promise.resolve();
  }

  publish(delivery: Delivery): Promise<number> {
    if (this.local === null) return Promise.reject(new Error('ClusterBroker.publish() called before start()'));
    const localCount = this.local.deliver(delivery);
    const frame = typeof delivery.frame === 'string' ? delivery.frame : delivery.frame.toString('utf8');
    return this.ask((id) => ({ sb: 'publish', id, channel: delivery.channel, recipients: delivery.recipients, frame })).then((count) =>
      typeof count === 'number' ? count : localCount,
    );
  }

  async join(channel: ChannelName, member: Member): Promise<void> {
    // Answered once the primary knows, so that a message published on another worker
    // right after the subscribe ack reaches this one.
    await this.ask((id) => ({ sb: 'join', id, channel, connectionId: member.connectionId, userId: member.userId }));
  }

  leave(channel: ChannelName, connectionId: ConnectionId): Promise<void> {
    this.post({ sb: 'leave', channel, connectionId });
    return Promise.resolve();
  }

  // A worker whose primary is gone exits (node:cluster does that), so there is no other state.
  notReadyReason(): string | null {
    return null;
  }

  async nodes(): Promise<NodeReport[]> {
    return ((await this.query({ query: 'nodes' })) as NodeReport[] | null) ?? [(this.local as LocalDelivery).report()];
  }

  async channels(): Promise<Array<{ channel: ChannelName; subscribers: number }>> {
    return ((await this.query({ query: 'channels' })) as Array<{ channel: ChannelName; subscribers: number }> | null) ?? [];
  }

  async members(channel: ChannelName): Promise<MemberInfo[]> {
    return ((await this.query({ query: 'members', channel })) as MemberInfo[] | null) ?? [];
  }

  async disconnect(target: DisconnectTarget): Promise<DisconnectResult> {
    const local = (this.local as LocalDelivery).disconnect(target);
    // A worker that misses the relay's wait still closes its connections when the request reaches it.
    return { disconnected: local + (((await this.query({ query: 'disconnect', target })) as number | null) ?? 0), unanswered: [] };
  }

  private query(query: Query): Promise<unknown> {
    return this.ask((id) => ({ sb: 'query', id, ...query }));
  }

  close(): Promise<void> {
    this.primary.off('message', this.listener);
    this.local = null;
    for (const resolve of this.pending.values()) resolve(null);
    this.pending.clear();
    return Promise.resolve();
  }

  /** Sends a request; resolves with the primary's answer (a count, or a query's data), or null when the primary is gone. */
  private ask(build: (id: number) => WorkerMessage): Promise<unknown> {
    const id = ++this.nextId;
    return new Promise<unknown>((resolve) => {
      if (!this.post(build(id))) {
        resolve(null);
        return;
      }
      this.pending.set(id, resolve);
    });
  }

  private post(message: WorkerMessage): boolean {
    if (this.primary.connected === false || typeof this.primary.send !== 'function') return false;
    try {
      // false means "queued behind a backlog", not lost. A failure is reported to the
      // callback (not as an 'error' event that would take the worker down); the worker
      // exits with its primary anyway.
      this.primary.send(message, undefined, undefined, () => undefined);
      return true;
    } catch {
      return false;
    }
  }

  private onMessage(message: unknown): void {
    if (!isPrimaryMessage(message)) return;
    if (message.sb === 'reply' || message.sb === 'answer') {
      const resolve = this.pending.get(message.id);
      this.pending.delete(message.id);
      resolve?.(message.sb === 'reply' ? message.count : message.data);
      return;
    }
    if (this.local === null) return;
    if (message.sb === 'ask') {
      const part = message.query === 'report' ? this.local.report() : this.local.disconnect(message.target);
      this.post({ sb: 'part', ask: message.ask, part });
      return;
    }
    this.local.deliver({ channel: message.channel, recipients: message.recipients, frame: message.frame });
  }
}

/** The primary side: every worker's memberships, and the relay of messages between them. */
export class ClusterRelay {
  /** channel → connection id → its worker and user id ('' when anonymous) */
  private readonly channels = new Map<ChannelName, Map<ConnectionId, { worker: number; userId: string }>>();
  /** worker → channel → its connections in it */
  private readonly workerChannels = new Map<number, Map<ChannelName, number>>();

  /** Questions the primary put to every worker, waiting for their parts. */
  private readonly asks = new Map<number, { waiting: Set<number>; parts: Array<NodeReport | number>; finish: () => void; timer: NodeJS.Timeout }>();
  private nextAsk = 0;

  /**
   * @param sendTo delivers a message to one worker; returns false when that worker is gone.
   * @param liveWorkers the workers running now.
   */
  constructor(
    private readonly sendTo: (worker: number, message: PrimaryMessage) => boolean,
    private readonly liveWorkers: () => number[] = () => [...this.workerChannels.keys()],
  ) {}

  /** Handles one message from a worker; anything not ours is ignored. */
  handle(worker: number, message: unknown): void {
    if (typeof message !== 'object' || message === null || !('sb' in message)) return;
    const request = message as WorkerMessage;
    switch (request.sb) {
      case 'publish':
        this.sendTo(worker, { sb: 'reply', id: request.id, count: this.relay(worker, request) });
        return;
      case 'join':
        this.join(worker, request.channel, request.connectionId, request.userId ?? '');
        this.sendTo(worker, { sb: 'reply', id: request.id, count: 0 });
        return;
      case 'leave':
        this.leave(request.channel, request.connectionId);
        return;
      case 'query':
        this.answer(worker, request);
        return;
      case 'part': {
        const ask = this.asks.get(request.ask);
        if (ask === undefined || !ask.waiting.delete(worker)) return;
        ask.parts.push(request.part);
        if (ask.waiting.size === 0) ask.finish();
        return;
      }
    }
  }

  private answer(worker: number, request: Extract<WorkerMessage, { sb: 'query' }>): void {
    const reply = (data: unknown): void => {
      this.sendTo(worker, { sb: 'answer', id: request.id, data });
    };
    switch (request.query) {
      case 'channels':
        reply([...this.channels].map(([channel, members]) => ({ channel, subscribers: members.size })));
        return;
      case 'members':
        reply(
          [...(this.channels.get(request.channel) ?? [])].map(([connectionId, member]) => ({
            connectionId,
            userId: member.userId === '' ? null : member.userId,
            node: connectionId.slice(0, connectionId.lastIndexOf('-')),
          })),
        );
        return;
      case 'nodes':
        this.askEveryWorker({ query: 'report' }, [], (parts) => reply(parts));
        return;
      case 'disconnect':
        // The asking worker has closed its own already.
        this.askEveryWorker({ query: 'disconnect', target: request.target }, [worker], (parts) => reply(parts.reduce<number>((sum, part) => sum + (part as number), 0)));
        return;
    }
  }

  /** Puts a question to every live worker but `except`; `done` gets the parts that came within PARTS_WAIT_MS. */
  private askEveryWorker(
    question: { query: 'report' } | { query: 'disconnect'; target: DisconnectTarget },
    except: number[],
    done: (parts: Array<NodeReport | number>) => void,
  ): void {
    const ask = ++this.nextAsk;
    const waiting = new Set(this.liveWorkers().filter((worker) => !except.includes(worker)));
    const entry = {
      waiting,
      parts: [] as Array<NodeReport | number>,
      finish: () => {
        clearTimeout(entry.timer);
        this.asks.delete(ask);
        done(entry.parts);
      },
      timer: setTimeout(() => entry.finish(), PARTS_WAIT_MS),
    };
    this.asks.set(ask, entry);
    for (const worker of [...waiting]) {
      if (!this.sendTo(worker, { sb: 'ask', ask, ...question })) waiting.delete(worker);
    }
    if (waiting.size === 0) entry.finish();
  }

  /** A worker exited: its connections are gone, and so are their memberships. */
  removeWorker(worker: number): void {
    // Its part of any open question will not come.
    for (const ask of [...this.asks.values()]) if (ask.waiting.delete(worker) && ask.waiting.size === 0) ask.finish();
    const channels = this.workerChannels.get(worker);
    this.workerChannels.delete(worker);
    if (channels === undefined) return;
    for (const channel of channels.keys()) {
      const members = this.channels.get(channel);
      if (members === undefined) continue;
      for (const [connectionId, member] of members) if (member.worker === worker) members.delete(connectionId);
      if (members.size === 0) this.channels.delete(channel);
    }
  }

  /** Subscribers of `channel` across all workers. */
  memberCount(channel: ChannelName): number {
    return this.channels.get(channel)?.size ?? 0;
  }

  private relay(origin: number, message: Extract<WorkerMessage, { sb: 'publish' }>): number {
    const members = this.channels.get(message.channel);
    if (members === undefined) return 0;
    const delivery: PrimaryMessage = { sb: 'deliver', channel: message.channel, recipients: message.recipients, frame: message.frame };
    for (const [worker, channels] of this.workerChannels) {
      if (worker !== origin && (channels.get(message.channel) ?? 0) > 0) this.sendTo(worker, delivery);
    }
    if (message.recipients === null) return members.size;
    const recipients = new Set(message.recipients);
    let count = 0;
    for (const member of members.values()) if (member.userId !== '' && recipients.has(member.userId)) count++;
    return count;
  }

  private join(worker: number, channel: ChannelName, connectionId: ConnectionId, userId: string): void {
    let members = this.channels.get(channel);
    if (members === undefined) {
      members = new Map();
      this.channels.set(channel, members);
    }
    const known = members.has(connectionId);
    members.set(connectionId, { worker, userId });
    if (known) return;
    let channels = this.workerChannels.get(worker);
    if (channels === undefined) {
      channels = new Map();
      this.workerChannels.set(worker, channels);
    }
    channels.set(channel, (channels.get(channel) ?? 0) + 1);
  }

  private leave(channel: ChannelName, connectionId: ConnectionId): void {
    const members = this.channels.get(channel);
    const member = members?.get(connectionId);
    if (members === undefined || member === undefined) return;
    members.delete(connectionId);
    if (members.size === 0) this.channels.delete(channel);
    const channels = this.workerChannels.get(member.worker);
    const left = (channels?.get(channel) ?? 1) - 1;
    if (left > 0) channels?.set(channel, left);
    else channels?.delete(channel);
  }
}
