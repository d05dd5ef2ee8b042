/**
 * The primary's side of WS_WORKER_NUM > 1 without Redis (SPEC §6): every worker's
 * memberships, the relay of each message to the workers with subscribers on its channel,
 * and the answers to the workers' cluster-wide views, for which it asks every worker.
 */
import { nodeOfConnection } from '../../ids.js';
import { PendingRequests } from '../../rpc/pending-requests.js';
import type { ChannelName, ConnectionId, UserId } from '../../types.js';
import type { DisconnectResult, DisconnectTarget, MemberInfo, NodeReport } from '../../views/cluster-view.js';
import { parseWorkerMessage, type PrimaryMessage, type WorkerMessage } from './messages.js';

/** How long the primary waits for the workers' parts of an answer. */
const PARTS_WAIT_MS = 1000;

export class ClusterRelay {
  /**
   * channel → connection id → its worker, its user id as the token has it (for the views),
   * and that id as a string (what `recipients` match; '' when anonymous)
   */
  private readonly channels = new Map<ChannelName, Map<ConnectionId, { worker: number; userId: UserId | null; key: string }>>();
  /** worker → channel → its connections in it */
  private readonly workerChannels = new Map<number, Map<ChannelName, number>>();
  /** worker → its node id, from its hello: who did not answer, as the API names nodes. */
  private readonly nodeIds = new Map<number, string>();
  /** Questions the primary put to every worker, waiting for their parts. */
  private readonly asks = new PendingRequests<NodeReport | number, number>('a question to the workers', PARTS_WAIT_MS);

  /**
   * @param sendTo delivers a message to one worker; returns false when that worker is gone.
   * @param liveWorkers the workers running now.
   */
  constructor(
    private readonly sendTo: (worker: number, message: PrimaryMessage) => boolean,
    private readonly liveWorkers: () => number[] = () => [...new Set([...this.nodeIds.keys(), ...this.workerChannels.keys()])],
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
      case 'join':
        this.join(worker, request.channel, request.connectionId, request.userId);
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
            ([connectionId, member]): MemberInfo => ({ connectionId, userId: member.userId, node: nodeOfConnection(connectionId) }),
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

  /** A worker exited: its connections are gone, and so are their memberships. */
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
      for (const [connectionId, member] of members) if (member.worker === worker) members.delete(connectionId);
      if (members.size === 0) this.channels.delete(channel);
    }
  }

  /** Subscribers of `channel` across all workers. */
  memberCount(channel: ChannelName): number {
    return this.channels.get(channel)?.size ?? 0;
  }

  /** Answers the open questions with what has come, and takes no more. */
  close(): void {
    this.asks.close();
  }

  private relay(origin: number, message: Extract<WorkerMessage, { sb: 'publish' }>): number {
    const members = this.channels.get(message.channel);
    if (members === undefined) return 0;
    // The same Buffer for every worker: IPC copies it once per send, nothing re-encodes it.
    const delivery: PrimaryMessage = { sb: 'deliver', channel: message.channel, recipients: message.recipients, frame: message.frame };
    for (const [worker, channels] of this.workerChannels) {
      if (worker !== origin && (channels.get(message.channel) ?? 0) > 0) this.sendTo(worker, delivery);
    }
    if (message.recipients === null) return members.size;
    const recipients = new Set(message.recipients);
    let count = 0;
    for (const member of members.values()) if (member.key !== '' && recipients.has(member.key)) count++;
    return count;
  }

  private join(worker: number, channel: ChannelName, connectionId: ConnectionId, userId: UserId | null): void {
    let members = this.channels.get(channel);
    if (members === undefined) {
      members = new Map();
      this.channels.set(channel, members);
    }
    const known = members.has(connectionId);
    members.set(connectionId, { worker, userId, key: userId === null ? '' : String(userId) });
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
