/**
 * Requests to other processes (the primary, the workers, other nodes through Redis) whose
 * answers come back as separate messages. Each request gets an id, and a timeout: a lost
 * answer, or a peer that never answers, must not leave its caller waiting forever.
 *
 * - request(): one answer from one peer. Rejects with RequestTimeoutError when it does
 *   not come in time, and with ClusterUnavailableError when the peer goes away, when it
 *   cannot be sent, or on close().
 * - gather(): one answer from each of a known set of peers. Never rejects: resolves with
 *   the answers that came in time, and the peers that did not answer (timed out, gone,
 *   not reachable, or still waited for at close()).
 */
import { ClusterUnavailableError, RequestTimeoutError } from '../errors.js';

export type RequestId = number;

/** What a gather() came back with. */
export interface Gathered<Peer, Answer> {
  readonly answers: ReadonlyArray<{ readonly peer: Peer; readonly answer: Answer }>;
  /** The peers asked that did not answer, in the order they were asked. */
  readonly unanswered: readonly Peer[];
}

interface Single<Peer, Answer> {
  readonly kind: 'single';
  /** Undefined when the request is not to one peer that can go away. */
  readonly peer: Peer | undefined;
  readonly resolve: (answer: Answer) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface Gathering<Peer, Answer> {
  readonly kind: 'gather';
  readonly asked: readonly Peer[];
  /** Peers whose answer may still come: not answered, not gone, reachable. */
  readonly waiting: Set<Peer>;
  readonly answers: Array<{ peer: Peer; answer: Answer }>;
  readonly resolve: (gathered: Gathered<Peer, Answer>) => void;
  readonly timer: NodeJS.Timeout;
}

export class PendingRequests<Answer, Peer = string> {
  private readonly pending = new Map<RequestId, Single<Peer, Answer> | Gathering<Peer, Answer>>();
  private nextId = 0;
  private closed = false;

  /**
   * @param what names the requests in errors ("a request to the primary").
   * @param timeoutMs how long a request waits, unless it says otherwise.
   */
  constructor(
    private readonly what: string,
    private readonly timeoutMs: number,
  ) {}

  /** Requests waiting for answers. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Sends one request and resolves with its answer. `send` gets the request's id and
   * returns false when the request cannot be sent (the peer is gone); it may also throw.
   */
  request(send: (id: RequestId) => boolean, options: { peer?: Peer; timeoutMs?: number } = {}): Promise<Answer> {
    if (this.closed) return Promise.reject(new ClusterUnavailableError(`${this.what} cannot be sent: shutting down`));
    const id = ++this.nextId;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestTimeoutError(`${this.what} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { kind: 'single', peer: options.peer, resolve, reject, timer });
      let sent: boolean;
      try {
        sent = send(id);
      } catch (error) {
        this.fail(id, new ClusterUnavailableError(`${this.what} could not be sent`, { cause: error }));
        return;
      }
      if (!sent) this.fail(id, new ClusterUnavailableError(`${this.what} could not be sent: the other side is gone`));
    });
  }

  /**
   * Sends one request to each of `peers` (the same id for all) and resolves with the
   * answers that came within the timeout, and who did not answer. `send` returns false for
   * a peer it cannot reach, which then counts as unanswered at once.
   */
  gather(peers: Iterable<Peer>, send: (id: RequestId, peer: Peer) => boolean, options: { timeoutMs?: number } = {}): Promise<Gathered<Peer, Answer>> {
    const asked = [...new Set(peers)];
    if (this.closed) return Promise.resolve({ answers: [], unanswered: asked });
    const id = ++this.nextId;
    return new Promise<Gathered<Peer, Answer>>((resolve) => {
      const timer = setTimeout(() => this.finish(id), options.timeoutMs ?? this.timeoutMs);
      const entry: Gathering<Peer, Answer> = { kind: 'gather', asked, waiting: new Set(asked), answers: [], resolve, timer };
      this.pending.set(id, entry);
      // Unreachable peers are given up on only after every send: an answer may arrive
      // synchronously, and the gather must still be open for the ones after it.
      const unreachable: Peer[] = [];
      for (const peer of asked) {
        let sent: boolean;
        try {
          sent = send(id, peer);
        } catch {
          sent = false;
        }
        if (!sent) unreachable.push(peer);
      }
      for (const peer of unreachable) entry.waiting.delete(peer);
      if (entry.waiting.size === 0) this.finish(id);
    });
  }

  /**
   * Hands an answer to the request `id`. `peer` is who answered: required for a gather
   * (an answer from a peer not asked, or a second one, is ignored). Returns false when
   * no request waits for it (unknown, late or duplicate).
   */
  answer(id: RequestId, answer: Answer, peer?: Peer): boolean {
    const entry = this.pending.get(id);
    if (entry === undefined) return false;
    if (entry.kind === 'single') {
      if (entry.peer !== undefined && peer !== undefined && peer !== entry.peer) return false;
      this.pending.delete(id);
      clearTimeout(entry.timer);
      entry.resolve(answer);
      return true;
    }
    if (peer === undefined || !entry.waiting.delete(peer)) return false;
    entry.answers.push({ peer, answer });
    if (entry.waiting.size === 0) this.finish(id);
    return true;
  }

  /** `peer` went away: its single requests fail, and gathers stop waiting for it. */
  peerGone(peer: Peer): void {
    for (const [id, entry] of [...this.pending]) {
      if (entry.kind === 'single') {
        if (entry.peer === peer) this.fail(id, new ClusterUnavailableError(`${this.what} got no answer: the other side went away`));
      } else if (entry.waiting.delete(peer) && entry.waiting.size === 0) {
        this.finish(id);
      }
    }
  }

  /** Stops waiting for request `id` (it could not be sent, say): a single request rejects, a gather resolves with what came. */
  cancel(id: RequestId): void {
    this.fail(id, new ClusterUnavailableError(`${this.what} was given up`));
    this.finish(id);
  }

  /** Settles everything: single requests reject, gathers resolve with what they have. Later requests fail at once. */
  close(): void {
    this.closed = true;
    for (const [id, entry] of [...this.pending]) {
      if (entry.kind === 'single') this.fail(id, new ClusterUnavailableError(`${this.what} got no answer: shutting down`));
      else this.finish(id);
    }
  }

  private fail(id: RequestId, error: Error): void {
    const entry = this.pending.get(id);
    if (entry?.kind !== 'single') return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    entry.reject(error);
  }

  private finish(id: RequestId): void {
    const entry = this.pending.get(id);
    if (entry?.kind !== 'gather') return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    const answered = new Set(entry.answers.map(({ peer }) => peer));
    entry.resolve({ answers: entry.answers, unanswered: entry.asked.filter((peer) => !answered.has(peer)) });
  }
}
