// The Markdown tables run.mjs prints for the scenarios every server runs (fan-out, latency,
// idle memory, handshakes: one column per server, with Switchboard's ratios) and for the
// fan-out across two Switchboard nodes. Each measured part has its "event loop max ms" row:
// the largest event-loop delay of the server's processes over it (target ≤ 50 ms, printed only).
import { format } from './format.mjs';

const count = (number) => number.toLocaleString('en-US');
const LOOP = 'event loop max ms';

/** [label, pick(result), digits, note(result)?] for each row of the scenarios that ran. */
function serverRows(plan, runs) {
  const fanout = (subscribers) => (result) => result[`fanout${subscribers}`];
  return [
    ...(!runs('fanout')
      ? []
      : plan.fanout.flatMap(({ subscribers }) => [
          [`fan-out deliveries/s, ${count(subscribers)} subscribers (higher is better)`, (r) => fanout(subscribers)(r).deliveriesPerSecond, 0, (r) => (fanout(subscribers)(r).complete ? '' : ' (incomplete)')],
          [`server CPU µs per delivery, ${count(subscribers)} subscribers (lower is better)`, (r) => fanout(subscribers)(r).cpuMicrosPerDelivery, 2],
          [`${LOOP}, fan-out to ${count(subscribers)} subscribers`, (r) => fanout(subscribers)(r).loopMaxMs, 1],
        ])),
    ...(!runs('latency')
      ? []
      : [
          [`latency p50 ms at ${plan.latency.rate} msg/s × ${plan.latency.subscribers} subscribers`, (r) => r.latency.p50, 2],
          [`latency p99 ms`, (r) => r.latency.p99, 2],
          [`latency max ms`, (r) => r.latency.max, 2],
          [`${LOOP}, latency run`, (r) => r.latency.loopMaxMs, 1],
        ]),
    ...(!runs('idle')
      ? []
      : [
          [`memory per idle connection, bytes (${count(plan.idle)} connections)`, (r) => r.idle.bytesPerConnection, 0],
          [`${LOOP}, opening ${count(plan.idle)} idle connections`, (r) => r.idle.loopMaxMs, 1],
        ]),
    ...(!runs('handshakes') ? [] : [[`JWT handshakes/s`, (r) => r.handshakes.perSecond, 0], [`${LOOP}, handshakes`, (r) => r.handshakes.loopMaxMs, 1]]),
  ];
}

/** The table of the per-server scenarios (empty when none ran), `results` keyed by server kind. */
export function serverTable(results, servers, plan, runs) {
  const rows = serverRows(plan, runs);
  if (rows.length === 0 || Object.keys(results).length === 0) return '';
  const compared = ['socketio', 'frame-once'].filter((other) => results.switchboard && results[other]);
  const names = { socketio: 'Socket.IO', 'frame-once': 'frame-once' };
  const header = ['scenario', ...servers, ...compared.map((other) => `Switchboard ÷ ${names[other]}`)];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const [label, pick, digits, note] of rows) {
    const cells = servers.map((kind) => `${format(pick(results[kind]), digits)}${note ? note(results[kind]) : ''}`);
    const ratios = compared.map((other) => `${format(pick(results.switchboard) / pick(results[other]), 2)}×`);
    lines.push(`| ${[label, ...cells, ...ratios].join(' | ')} |`);
  }
  lines.push('', `Event loop max ms: the largest event-loop delay in the server's processes over the measured part (target ≤ 50 ms; printed, not enforced).`);
  return lines.join('\n');
}

/** The table of the fan-out across two nodes; `single`: one node's deliveries/s for the same fan-out, if measured. */
export function crossNodeTable(result, subscribers, single) {
  const { deliveriesPerSecond, complete, cpuMicrosPerDelivery: cpu, loopMaxMs: loop } = result;
  return (
    `| Switchboard across two nodes through Redis, ${count(subscribers)} subscribers on the other node | value |\n|---|---|\n` +
    `| fan-out deliveries/s | ${format(deliveriesPerSecond)}${complete ? '' : ' (incomplete)'}${single === undefined ? '' : ` (${format(deliveriesPerSecond / single, 2)}× one node)`} |\n` +
    `| CPU µs per delivery: publishing node / subscribing node / redis-server | ${format(cpu.publishingNode, 2)} / ${format(cpu.subscribingNode, 2)} / ${format(cpu.redis, 2)} |\n` +
    `| ${LOOP}: publishing node / subscribing node | ${format(loop.publishingNode, 1)} / ${format(loop.subscribingNode, 1)} |`
  );
}
