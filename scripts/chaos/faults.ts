/**
 * The order of a run's faults: the topology's Redis faults, each followed by a SIGKILL of
 * a Switchboard node (another node each time), whose clients reconnect through their
 * balancer to another node, or to it once it is back.
 */
import type { SwitchboardNode } from './nodes.js';
import type { Fault } from './topologies.js';

export function nodeKill(node: SwitchboardNode): Fault {
  return {
    name: `node SIGKILL (${node.name})`,
    async run({ outageMs, note }) {
      await node.kill();
      note(`${node.name} killed`);
      await new Promise((resolve) => setTimeout(resolve, outageMs));
      await node.start();
      note(`${node.name} started again`);
    },
  };
}

/** Redis fault, node kill, Redis fault, node kill, ... */
export function plan(redisFaults: readonly Fault[], nodes: readonly SwitchboardNode[]): Fault[] {
  const faults: Fault[] = [];
  redisFaults.forEach((fault, index) => {
    faults.push(fault);
    const node = nodes[index % nodes.length];
    if (node !== undefined) faults.push(nodeKill(node));
  });
  return faults;
}
