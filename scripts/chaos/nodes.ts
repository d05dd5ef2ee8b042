/**
 * The Switchboard nodes of a chaos run: `node dist/cli/main.js start` child processes on
 * fixed ports, configured by environment variables only, SIGKILLed and started again on
 * the same port. Each keeps the output of all its lives for the logs directory.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliProcess, cliEnv, freePort } from '../../test/helpers/cli.js';
import { pollFor } from '../../test/helpers/redis-topology.js';

export interface NodeSettings {
  /** The Redis part of the environment: REDIS_HOST/PORT, or the Sentinel or Cluster variables. */
  readonly redisEnv: Record<string, string>;
  readonly channelsFile: string;
  /** The working directory of every node, where its logs are written too. */
  readonly dir: string;
}

/** Every node process this run started and has not seen exit: killed if the run exits first. */
const alive = new Set<CliProcess>();
process.once('exit', () => {
  for (const node of alive) node.child.kill('SIGKILL');
});

export class SwitchboardNode {
  private process: CliProcess | null = null;
  private lives = 0;

  private constructor(
    readonly index: number,
    readonly port: number,
    private readonly settings: NodeSettings,
  ) {}

  static async create(index: number, settings: NodeSettings): Promise<SwitchboardNode> {
    return new SwitchboardNode(index, await freePort(), settings);
  }

  get name(): string {
    return `node${this.index}`;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  /** The process runs (it may not listen yet). */
  get running(): boolean {
    return this.process?.running === true;
  }

  /** Starts the process and waits until it listens. */
  async start(): Promise<void> {
    if (this.running) return;
    const env = cliEnv({
      WS_HOST: '127.0.0.1',
      WS_PORT: String(this.port),
      WS_LOG_LEVEL: 'info',
      WS_MAX_MESSAGES_PER_MINUTE: '0',
      WS_CHANNELS_FILE: this.settings.channelsFile,
      WS_RECOVERY_MAX: '100000',
      WS_SHUTDOWN_TIMEOUT: '1',
      REDIS_ENABLED: 'true',
      REDIS_PREFIX: 'chaos:',
      ...this.settings.redisEnv,
    });
    this.lives++;
    const cli = new CliProcess(['start'], { cwd: this.settings.dir, env });
    this.process = cli;
    alive.add(cli);
    const life = this.lives;
    cli.exited.then(
      (result) => {
        alive.delete(cli);
        const log = join(this.settings.dir, `${this.name}.log`);
        appendFileSync(log, `--- life ${life}, ended with code ${String(result.code)} signal ${String(result.signal)}\n${result.stdout}${result.stderr}`);
      },
      () => alive.delete(cli),
    );
    await cli.listeningUrl();
  }

  /** SIGKILL: as abrupt as a crash. */
  async kill(): Promise<void> {
    const process = this.process;
    this.process = null;
    await process?.kill();
  }

  /** GET /readyz: true on 200. */
  async ready(): Promise<boolean> {
    return (await this.readyz()).startsWith('200 ');
  }

  /** What GET /readyz answers: status and body, or why there is no answer. */
  async readyz(): Promise<string> {
    if (!this.running) return 'not running';
    try {
      const response = await fetch(`http://127.0.0.1:${this.port}/readyz`, { signal: AbortSignal.timeout(2000) });
      return `${response.status} ${await response.text()}`;
    } catch (error) {
      return `no answer: ${(error as Error).message}`;
    }
  }

  /** Waits for /readyz to say ready; false if it does not within `timeoutMs`. */
  async waitReady(timeoutMs: number): Promise<boolean> {
    try {
      await pollFor(() => this.ready(), timeoutMs, `${this.name} to be ready`, 100);
      return true;
    } catch {
      return false;
    }
  }
}
