/**
 * The client processes, seen from the main process: forks them, splits each command
 * (open, churn) between them, and sums what they report. A process that dies, or says
 * it cannot go on (EMFILE), ends the run through `onFatal`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sumCounters } from './counters.js';
import type { ClientCounters, ClientProcessConfig, ClientToMain, MainToClient } from './ipc.js';
import type { StreamRecord } from './tracker.js';

const CLIENT_PROCESS = fileURLToPath(new URL('./client-process.ts', import.meta.url));

type Reply<T extends ClientToMain['type']> = Extract<ClientToMain, { type: T }>;

interface Member {
  readonly child: ChildProcess;
  /** Who waits for the next reply of each type (each command has one reply, in order). */
  readonly waiting: Map<string, Array<(message: ClientToMain) => void>>;
}

export class Fleet {
  private readonly members: Member[];
  private churnCarry = 0;
  private stopping = false;

  constructor(
    config: Omit<ClientProcessConfig, 'processIndex' | 'processes'>,
    processes: number,
    private readonly onFatal: (message: string) => void,
  ) {
    this.members = Array.from({ length: processes }, (_, processIndex) => {
      const full: ClientProcessConfig = { ...config, processIndex, processes };
      const child = fork(CLIENT_PROCESS, [], {
        env: { ...process.env, SOAK_CLIENT_CONFIG: JSON.stringify(full) },
        execArgv: process.execArgv,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const member: Member = { child, waiting: new Map() };
      child.on('message', (message: ClientToMain) => {
        if (message.type === 'fatal') return this.onFatal(message.message);
        member.waiting.get(message.type)?.shift()?.(message);
      });
      child.on('exit', (code, signal) => {
        if (!this.stopping) this.onFatal(`client process ${processIndex} exited (${signal ?? `code ${code}`}): a bug in the soak`);
      });
      return member;
    });
  }

  private ask<T extends ClientToMain['type']>(member: Member, command: MainToClient, reply: T): Promise<Reply<T>> {
    return new Promise((resolve) => {
      const queue = member.waiting.get(reply) ?? [];
      queue.push(resolve as (message: ClientToMain) => void);
      member.waiting.set(reply, queue);
      member.child.send(command);
    });
  }

  /** Splits `total` over the processes as evenly as integers allow. */
  private shares(total: number): number[] {
    const count = this.members.length;
    return this.members.map((_, index) => Math.floor(total / count) + (index < total % count ? 1 : 0));
  }

  /** Opens `count` connections in all, `rate` per second in all; resolves when each is subscribed or failed. */
  async open(count: number, rate: number): Promise<{ opened: number; failed: number }> {
    const shares = this.shares(count);
    const replies = await Promise.all(this.members.map((member, index) => this.ask(member, { type: 'open', count: shares[index] ?? 0, rate: rate / this.members.length }, 'opened')));
    return { opened: replies.reduce((sum, reply) => sum + reply.opened, 0), failed: replies.reduce((sum, reply) => sum + reply.failed, 0) };
  }

  /** Churns `count` connections (a fraction carries over to the next call). */
  churn(count: number): void {
    this.churnCarry += count;
    const whole = Math.floor(this.churnCarry);
    this.churnCarry -= whole;
    this.shares(whole).forEach((share, index) => {
      if (share > 0) this.members[index]?.child.send({ type: 'churn', count: share } satisfies MainToClient);
    });
  }

  async progress(): Promise<ClientCounters> {
    const replies = await Promise.all(this.members.map((member) => this.ask(member, { type: 'progress' }, 'progress')));
    return sumCounters(replies.map((reply) => reply.counters));
  }

  /** Closes every connection normally; resolves with the totals and every connection's records. */
  async finish(): Promise<{ counters: ClientCounters; records: StreamRecord[] }> {
    const replies = await Promise.all(this.members.map((member) => this.ask(member, { type: 'finish' }, 'finished')));
    return { counters: sumCounters(replies.map((reply) => reply.counters)), records: replies.flatMap((reply) => reply.records) };
  }

  /** Ends the processes (after `finish`, or when the run is given up). */
  stop(): void {
    this.stopping = true;
    for (const { child } of this.members) if (child.exitCode === null && child.signalCode === null) child.kill();
  }
}
