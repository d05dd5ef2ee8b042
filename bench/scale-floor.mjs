// The floor under the scale scenario: the same clients and the same shape (each connection
// on a channel of its own, one message a second on each, published by 6 WebSocket
// connections that also get each message's echo) against Switchboard in one process and
// against the bench's frame-once `ws` server, at a size one process holds on this machine
// (its open-file limit). frame-once is the least one write per delivery can cost (it sends
// no acks): what is left of Switchboard's CPU per delivery above it is Switchboard's own,
// and 50,000 deliveries a second times the floor says what any server needs for the
// 50,000-connection target here. Registered in lib/scale-scenarios.mjs as 'scale-floor'.
import { format } from './lib/format.mjs';
import { setScenarioLabel } from './lib/loop-delay.mjs';
import { scaleScenario } from './scale.mjs';

export async function scaleFloorScenario(ctx, plan) {
  setScenarioLabel('switchboard (one process), scale-floor');
  const switchboard = await scaleScenario(ctx, { ...plan, workers: 1 });
  setScenarioLabel('frame-once, scale-floor');
  const frameOnce = await scaleScenario(ctx, { ...plan, server: 'frame-once' });
  return { connections: plan.connections, seconds: plan.seconds, switchboard, frameOnce };
}

const count = (value) => format(value, 0);

export function scaleFloorTable(result) {
  const { switchboard: s, frameOnce: f } = result;
  const row = (label, pick, digits) => {
    const a = pick(s);
    const b = pick(f);
    return `| ${label} | ${format(a, digits)} | ${format(b, digits)} | ${format(a / b, 2)}× |`;
  };
  const complete = (r) => (r.deliveries < r.expected ? ` (incomplete: ${count(r.deliveries)} of ${count(r.expected)})` : '');
  return [
    `| ${count(result.connections)} connections, each on its own channel, 1 message a second for ${result.seconds} s | Switchboard, one process | frame-once | ratio |`,
    '|---|---|---|---|',
    row('server CPU µs per delivery (reading the publish, the echo, the delivery; Switchboard also acks each publish)', (r) => r.cpuMicrosPerDelivery, 2),
    row('deliveries/s over the run', (r) => r.deliveredPerSecond, 0),
    row('server CPU, % of one core', (r) => r.cpuPercentOfCore, 0),
    row('delivery latency p50, ms', (r) => r.latency.p50, 2),
    row('delivery latency p99, ms', (r) => r.latency.p99, 2),
    row('event-loop delay max, ms', (r) => r.loopMaxMs, 1),
    row('memory per idle connection, bytes', (r) => r.idle.bytesPerConnection, 0),
    '',
    `Deliveries counted: Switchboard ${count(s.deliveries)}${complete(s)}, frame-once ${count(f.deliveries)}${complete(f)}. ` +
      `At frame-once's cost, 50,000 deliveries a second would take ${format((50000 * f.cpuMicrosPerDelivery) / 1e4, 0)}% of one core for the server alone; ` +
      `the client processes that receive and publish them share the same cores.`,
  ].join('\n');
}
