/**
 * The soak's command line: `npm run soak -- --connections 10000 --minutes 10`. A bad flag
 * prints one line and exits 2, like the server's own CLI.
 */
import { parseArgs } from 'node:util';

export interface SoakOptions {
  /** Subscriber connections held through the run (the publishers come on top). */
  readonly connections: number;
  /** Length of the run once every connection is held: warm-up plus measured steady state. */
  readonly minutes: number;
  /** Percent of the subscribers closed normally and replaced by new ones every 10 s. */
  readonly churn: number;
  /** Messages per second, all publishers together. */
  readonly publishRate: number;
  readonly channels: number;
  readonly publishers: number;
  /** New connections per second while ramping up, so that the server is not stormed. */
  readonly rampRate: number;
  /** Processes the subscribers are spread over. */
  readonly processes: number;
  /** The server's WS_HEARTBEAT_INTERVAL in seconds; its WS_CONNECTION_TIMEOUT is three of them. */
  readonly heartbeat: number;
  /** Where the JSON result goes, or null. */
  readonly json: string | null;
  /** Runs the server against a redis-server the soak starts. */
  readonly redis: boolean;
}

export const USAGE = `Usage: npm run soak -- [options]

  --connections N    subscriber connections held (default 10000)
  --minutes M        minutes of traffic once they are held, warm-up included (default 10)
  --churn P          percent of the connections replaced every 10 s (default 1)
  --publish-rate R   messages per second, all publishers together (default 50)
  --channels N       channels the subscribers are spread over (default 100)
  --publishers N     publishing connections (default 4)
  --ramp-rate N      new connections per second while ramping up (default 500)
  --processes N      client processes (default one per 5000 connections)
  --heartbeat S      the server's heartbeat interval in seconds (default 5)
  --json PATH        also write the result as JSON
  --redis            run the server against a redis-server started for the soak
`;

export class UsageError extends Error {}

const OPTIONS = {
  connections: { type: 'string' },
  minutes: { type: 'string' },
  churn: { type: 'string' },
  'publish-rate': { type: 'string' },
  channels: { type: 'string' },
  publishers: { type: 'string' },
  'ramp-rate': { type: 'string' },
  processes: { type: 'string' },
  heartbeat: { type: 'string' },
  json: { type: 'string' },
  redis: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A number flag within [min, max]; integers only unless `fractional`. */
function numberFlag(values: Record<string, unknown>, name: string, fallback: number, min: number, max: number, fractional = false): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  const valid = typeof raw === 'string' && raw.trim() !== '' && Number.isFinite(value) && (fractional || Number.isInteger(value));
  if (!valid || value < min || value > max) {
    throw new UsageError(`--${name}: '${typeof raw === 'string' ? raw : ''}' is not ${fractional ? 'a number' : 'an integer'} between ${min} and ${max}`);
  }
  return value;
}

/** The options, or null when --help was asked for. Throws UsageError on a bad flag. */
export function parseSoakArgs(argv: readonly string[]): SoakOptions | null {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError(String((error as Error).message).split('\n')[0]);
  }
  const { values } = parsed;
  if (values.help === true) return null;
  const connections = numberFlag(values, 'connections', 10_000, 1, 60_000);
  const channels = numberFlag(values, 'channels', Math.min(100, connections), 1, 10_000);
  const publishers = numberFlag(values, 'publishers', Math.min(4, channels), 1, 100);
  if (publishers > channels) throw new UsageError(`--publishers: ${publishers} publishers need at least as many channels (--channels ${channels})`);
  return {
    connections,
    minutes: numberFlag(values, 'minutes', 10, 0.25, 24 * 60, true),
    churn: numberFlag(values, 'churn', 1, 0, 100, true),
    publishRate: numberFlag(values, 'publish-rate', 50, 0, 10_000, true),
    channels,
    publishers,
    rampRate: numberFlag(values, 'ramp-rate', 500, 1, 10_000),
    processes: numberFlag(values, 'processes', Math.ceil(connections / 5000), 1, 32),
    heartbeat: numberFlag(values, 'heartbeat', 5, 0.5, 300, true),
    json: values.json ?? null,
    redis: values.redis === true,
  };
}
