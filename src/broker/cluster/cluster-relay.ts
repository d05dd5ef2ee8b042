/**
 * The primary's side of WS_WORKER_NUM > 1 without Redis (SPEC §6): every worker's
 * memberships, the relay of each message to the workers with subscribers on its channel,
 * the channels' history (the primary outlives its workers, so it keeps it), and the
 * answers to the workers' cluster-wide views, for which it asks every worker.
 *
 * A message kept in the history is appended here, given its offset, then sent to every
 * worker with subscribers, its sender included: IPC to one worker keeps its order, so each
 * worker receives a channel's offsets in the order they were given. The relay knows nothing
 * of presence settings or frames: when a worker exits, it tells each other worker with
 * members in the same channels who left, and that worker tells its own subscribers.
 */
import { MemoryHistory } from '../../history/memory-history.js';
import { nodeOfConnection } from '../../ids.js';
import { PendingRequests } from '../../rpc/pending-requests.js';
import type { ChannelName, ConnectionId, UserId } from '../../types.js';
import type { DisconnectResult, DisconnectTarget, MemberInfo, NodeReport } from '../../views/cluster-view.js';
import type { Member } from '../broker.js';
import { parseWorkerMessage, type PrimaryMessage, type WorkerMessage } from './messages.js';

/** How long the primary waits for the workers' parts of an answer. */
const PARTS_WAIT_MS = 1000;

export class ClusterRelay {
  /**
   * channel → connection id → its worker, its user id as the token has it (for the views),
   * and that id as a string (what `recipients` match; '' when anonymous)
   */
  private readonly channels = new Map<ChannelName, Map<ConnectionId, { worker: number; userId: UserId | null; key: string; info: string | null }>>();
  /** worker → channel → its connections in it */
  private readonly workerChannels = new Map<number, Map<ChannelName, number>>();
  /** worker → its node id, from its hello: who did not answer, as the API names nodes. */
  private readonly nodeIds = new Map<number, string>();
  /** Questions the primary put to every worker, waiting for their parts. */
  private readonly asks = new PendingRequests<NodeReport | number, number>('a question to the workers', PARTS_WAIT_MS);

  /**
   * @param sendTo delivers a message to one worker; returns false when that worker is gone.
   * @param liveWorkers the workers running now.
   * @param history where the channels' history is kept; closed by close().
   */
  constructor(
    private readonly sendTo: (worker: number, message: PrimaryMessage) => boolean,
    private readonly liveWorkers: () => number[] = () => [...new Set([...this.nodeIds.keys(), ...this.workerChannels.keys()])],
    private readonly history: MemoryHistory = new MemoryHistory(),
  ) {}

  /** Handles one message from a worker. Returns false when it is not the relay's (it is then ignored). */
  handle(worker: number, message: unknown): boolean {
    const request = parseWorkerMessage(message);
    if (request === null) return false;
    switch (request.sb) {
      case 'hello':
        this.nodeIds.set(worker, request.nodeId);
        break;
      case 'publish':
        this.sendTo(worker, { sb: 'reply', id: request.id, count: this.relay(worker, request) });
        break;
      case 'append':
        this.append(worker, request);
        break;
      case 'history': {
        const { channel, since, until, limit, seen } = request;
        this.sendTo(worker, { sb: 'page', id: request.id, page: this.history.read(channel, { since, until, limit, seen }) });
        break;
      }
      case 'join':
        this.join(worker, request.channel, request.connectionId, request.userId, request.info ?? null);
        this.sendTo(worker, { sb: 'reply', id: request.id, count: 0 });
        break;
      case 'leave':
        this.leave(request.channel, request.connectionId);
        break;
      case 'query':
        this.answer(worker, request);
        break;
      case 'part':
        this.asks.answer(request.ask, request.part, worker);
        break;
    }
    return true;
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
          [...(this.channels.get(request.channel) ?? [])].map(
            ([connectionId, member]): MemberInfo => ({ connectionId, userId: member.userId, node: nodeOfConnection(connectionId), ...(member.info !== null && { info: member.info }) }),
          ),
        );
        return;
      case 'nodes':
        void this.askEveryWorker({ query: 'report' }, []).then(({ answers }) => reply(answers.map(({ answer }) => answer)));
        return;
      case 'disconnect': {
        // Named as they were when asked: a worker that exits meanwhile is forgotten.
        const names = new Map(this.nodeIds);
        // The asking worker has closed its own already.
        void this.askEveryWorker({ query: 'disconnect', target: request.target }, [worker]).then(({ answers, unanswered }) => {
          const result: DisconnectResult = {
            disconnected: answers.reduce((sum, { answer }) => sum + (typeof answer === 'number' ? answer : 0), 0),
            unanswered: unanswered.map((each) => names.get(each) ?? `worker ${each}`),
          };
          reply(result);
        });
        return;
      }
    }
  }

  /** Puts a question to every live worker but `except`; resolves with the parts that came within PARTS_WAIT_MS. */
  private askEveryWorker(question: { query: 'report' } | { query: 'disconnect'; target: DisconnectTarget }, except: number[]) {
    const workers = this.liveWorkers().filter((worker) => !except.includes(worker));
    return this.asks.gather(workers, (ask, worker) => this.sendTo(worker, { sb: 'ask', ask, ...question }));
  }

  /**
   * A worker exited: its connections are gone, and so are their memberships. Every other
   * worker with members in one of its channels is told who left it (`gone`).
   */
  removeWorker(worker: number): void {
    // Its part of any open question will not come.
    this.asks.peerGone(worker);
    this.nodeIds.delete(worker);
    const channels = this.workerChannels.get(worker);
    this.workerChannels.delete(worker);
    if (channels === undefined) return;
    for (const channel of channels.keys()) {
      const members = this.channels.get(channel);
      if (members === undefined) continue;
      const gone: Member[] = [];
      for (const [connectionId, member] of members) {
        if (member.worker !== worker) continue;
        members.delete(connectionId);
        gone.push({ connectionId, userId: member.userId });
      }
      if (members.size === 0) {
        this.channels.delete(channel);
        continue;
      }
      if (gone.length === 0) continue;
      const message: PrimaryMessage = { sb: 'gone', channel, members: gone };
      for (const other of this.workersIn(channel)) this.sendTo(other, message);
    }
  }

  /** Subscribers of `channel` across all workers. */
  memberCount(channel: ChannelName): number {
    return this.channels.get(channel)?.size ?? 0;
  }

  /** Answers the open questions with what has come, and takes no more; stops the history's sweep. */
  close(): void {
    this.asks.close();
    this.history.close();
  }

  /** A message not kept: to every other worker with subscribers (the origin has delivered it). Returns the cluster-wide count. */
  private relay(origin: number, message: Extract<WorkerMessage, { sb: 'publish' }>): number {
    const { channel, recipients, exclude, frame } = message;
    if (!this.channels.has(channel)) return 0;
    // The same Buffer for every worker: IPC copies it once per send, nothing re-encodes it.
    const delivery: PrimaryMessage = { sb: 'deliver', channel, recipients, exclude, frame, position: null };
    for (const worker of this.workersIn(channel)) if (worker !== origin) this.sendTo(worker, delivery);
    return this.count(channel, recipients, exclude);
  }

  /**
   * A message to keep: appended to the history (its offset and epoch), delivered to every
   * worker with subscribers, the origin included, and only then answered, so that the
   * origin's subscribers have it before the publisher's acknowledgement.
   */
  private append(origin: number, message: Extract<WorkerMessage, { sb: 'append' }>): void {
    const { channel, recipients, exclude, history } = message;
    const stored = this.history.append(channel, message.frame, history);
    const position = { epoch: stored.epoch, offset: stored.offset };
    const frame = Buffer.from(stored.frame);
    const delivery: PrimaryMessage = { sb: 'deliver', channel, recipients, exclude, frame, position };
    for (const worker of this.workersIn(channel)) this.sendTo(worker, delivery);
    this.sendTo(origin, { sb: 'stored', id: message.id, count: this.count(channel, recipients, exclude), position });
  }

  /** The workers with members in `channel`. */
  private workersIn(channel: ChannelName): number[] {
    const workers: number[] = [];
    for (const [worker, channels] of this.workerChannels) if ((channels.get(channel) ?? 0) > 0) workers.push(worker);
    return workers;
  }

  /** Connections a message is addressed to, cluster-wide: the listed users' (none anonymous), never `exclude`. */
  private count(channel: ChannelName, recipients: readonly string[] | null, exclude: ConnectionId | null): number {
    const members = this.channels.get(channel);
    if (members === undefined) return 0;
    if (recipients === null) return members.size - (exclude !== null && members.has(exclude) ? 1 : 0);
    const listed = new Set(recipients);
    let count = 0;
    for (const [connectionId, member] of members) if (member.key !== '' && listed.has(member.key) && connectionId !== exclude) count++;
    return count;
  }

  private join(worker: number, channel: ChannelName, connectionId: ConnectionId, userId: UserId | null, info: string | null): void {
    let members = this.channels.get(channel);
    if (members === undefined) {
      members = new Map();
      this.channels.set(channel, members);
    }
    const known = members.has(connectionId);
    members.set(connectionId, { worker, userId, key: userId === null ? '' : String(userId), info });
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
