/**
 * The chaos run's result: a plain-text table (topology × fault × channel kind) for the
 * terminal and a JSON document for RELIABILITY.md and CI.
 */
import { totals, type Row } from './analysis.js';
import type { ChaosOptions } from './options.js';
import type { TopologyResult } from './run.js';

export interface ChaosReport {
  readonly ok: boolean;
  readonly form: 'short' | 'long';
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly topologies: readonly TopologyReport[];
  /** Topologies whose run could not be made (Redis did not start, the nodes did not): why. */
  readonly errors: readonly { topology: string; error: string }[];
}

export interface TopologyReport {
  readonly topology: string;
  readonly nodes: number;
  readonly channels: TopologyResult['channels'];
  readonly phases: TopologyResult['phases'];
  readonly rows: readonly Row[];
  readonly totals: readonly Row[];
  readonly failures: readonly string[];
  readonly lostExamples: TopologyResult['analysis']['lostExamples'];
  readonly deliveryExamples: TopologyResult['analysis']['deliveryExamples'];
  readonly wireExamples: readonly string[];
  readonly events: readonly { seconds: number; phase: string; what: string }[];
}

export function buildReport(options: ChaosOptions, startedAt: Date, results: readonly TopologyResult[], errors: ChaosReport['errors']): ChaosReport {
  const topologies = results.map((result): TopologyReport => {
    const start = result.events[0]?.at ?? 0;
    return {
      topology: result.topology,
      nodes: result.nodes,
      channels: result.channels,
      phases: result.phases,
      rows: result.analysis.rows,
      totals: totals(result.analysis.rows),
      failures: result.failures,
      lostExamples: result.analysis.lostExamples,
      deliveryExamples: result.analysis.deliveryExamples,
      wireExamples: result.wireExamples,
      events: result.events.map((event) => ({ seconds: Math.round((event.at - start) / 100) / 10, phase: event.phase, what: event.what })),
    };
  });
  return {
    ok: errors.length === 0 && topologies.every((topology) => topology.failures.length === 0),
    form: options.short ? 'short' : 'long',
    startedAt: startedAt.toISOString(),
    durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    topologies,
    errors,
  };
}

const COLUMNS: { title: string; value: (row: Row) => string | number }[] = [
  { title: 'sent', value: (row) => row.sent },
  { title: 'refused', value: (row) => row.refused },
  { title: 'no reply', value: (row) => row.unacked },
  { title: 'expected', value: (row) => row.expected },
  { title: 'lost', value: (row) => row.lost },
  { title: 'dup', value: (row) => row.duplicated },
  { title: 'reordered', value: (row) => row.reordered },
  { title: 'skipped', value: (row) => row.skipped },
  { title: 'resets', value: (row) => (row.kind === 'history' ? row.resets : '-') },
  { title: 'wire dup/gap', value: (row) => (row.kind === 'history' ? `${row.wireDuplicates}/${row.wireGaps}` : '-') },
];

/** The table, one line per topology × phase × kind, then a total per topology and kind. */
export function formatTable(report: ChaosReport): string {
  const header = ['topology', 'fault', 'kind', ...COLUMNS.map((column) => column.title), 'ready after'];
  const lines: string[][] = [header];
  for (const topology of report.topologies) {
    const readyAfter = new Map(topology.phases.map((phase) => [phase.name, phase.readyAfterMs === null ? 'NEVER' : `${(phase.readyAfterMs / 1000).toFixed(1)} s`]));
    for (const row of [...topology.rows, ...topology.totals]) {
      lines.push([topology.topology, row.phase, row.kind, ...COLUMNS.map((column) => String(column.value(row))), row.kind === 'history' ? (readyAfter.get(row.phase) ?? '') : '']);
    }
  }
  const widths = header.map((_, index) => Math.max(...lines.map((line) => (line[index] ?? '').length)));
  const render = (line: string[]): string =>
    line
      .map((cell, index) => (index < 3 ? cell.padEnd(widths[index] ?? 0) : cell.padStart(widths[index] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [render(header), rule, ...lines.slice(1).map(render)].join('\n');
}

export const LEGEND = [
  'sent: publishes acknowledged; refused: answered with an error (never sent, not lost); no reply: the connection or the',
  'request timed out first (unknown). expected: (subscriber, message) pairs owed: with history, every acknowledged message',
  'after where the subscription started (it recovers across reconnects); without, those it was subscribed on a live',
  'connection for from the publish to its ack. lost: owed and never received. dup: received twice. reordered: after a',
  "later message of the same publisher. skipped: not received, but the subscriber was told to reload (recovered: false).",
  'resets: such notices. wire dup/gap: offsets repeated or skipped on one connection (the client hides the duplicates).',
].join('\n');

/** The table and its legend, then every failure and error, then the verdict. */
export function formatReport(report: ChaosReport): string {
  const parts = [formatTable(report), '', LEGEND, ''];
  for (const topology of report.topologies) {
    for (const failure of topology.failures) parts.push(`FAIL ${topology.topology}: ${failure}`);
    for (const example of topology.lostExamples.slice(0, 5)) parts.push(`  lost: ${example.subscriber} ${example.channel} ${example.message} (offset ${example.offset ?? '-'}, ${example.phase})`);
    for (const example of topology.deliveryExamples.slice(0, 5)) {
      parts.push(`  ${example.what}: ${example.subscriber} ${example.channel} ${example.message} (offsets ${example.offsets.join(', ') || '-'}, published as ${example.publishedOffset ?? '-'}, ${example.phase})`);
    }
    for (const example of topology.wireExamples.slice(0, 5)) parts.push(`  on the wire: ${example}`);
  }
  for (const error of report.errors) parts.push(`ERROR ${error.topology}: ${error.error}`);
  parts.push(`chaos (${report.form}, ${report.durationSeconds} s): ${report.ok ? 'passed' : 'FAILED'}`);
  return parts.join('\n');
}
