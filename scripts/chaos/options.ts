/**
 * The chaos run's command line: `npm run chaos -- --topology single,cluster --short
 * --json chaos.json`. A bad flag prints one line and exits 2, like the server's own CLI.
 */
import { parseArgs } from 'node:util';

export const TOPOLOGIES = ['single', 'sentinel', 'cluster'] as const;
export type Topology = (typeof TOPOLOGIES)[number];

export interface ChaosOptions {
  readonly topologies: readonly Topology[];
  /** The CI form: two nodes, fewer faults, shorter phases. */
  readonly short: boolean;
  /** Where the JSON result goes, or null. */
  readonly json: string | null;
  /** Where the nodes' logs are kept, or null: a temporary directory, deleted unless something failed. */
  readonly logs: string | null;
}

export const USAGE = `Usage: npm run chaos -- [options]

  --topology LIST   comma-separated: single, sentinel, cluster (default: all three)
  --short           the CI form: two nodes, one fault of each kind, short phases
  --json PATH       also write the result as JSON
  --logs DIR        keep the nodes' and Redis's logs there (default: a temporary
                    directory, kept and printed only when something failed)

Exits 1 when a channel with history lost, duplicated or reordered a message, or a node
was not ready again after a fault; 2 on a bad flag.
`;

export class UsageError extends Error {}

export function parseOptions(argv: readonly string[]): ChaosOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { topology: { type: 'string' }, short: { type: 'boolean' }, json: { type: 'string' }, logs: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values } = parsed;
  if (values.help === true) throw new UsageError('');
  const names = (values.topology ?? TOPOLOGIES.join(','))
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const topologies: Topology[] = [];
  for (const name of names) {
    if (!(TOPOLOGIES as readonly string[]).includes(name)) throw new UsageError(`--topology: '${name}' is not one of ${TOPOLOGIES.join(', ')}`);
    if (!topologies.includes(name as Topology)) topologies.push(name as Topology);
  }
  if (topologies.length === 0) throw new UsageError('--topology: name at least one of single, sentinel, cluster');
  return { topologies, short: values.short === true, json: values.json ?? null, logs: values.logs ?? null };
}
