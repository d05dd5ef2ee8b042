/**
 * A load balancer in front of one node, as a client of a real deployment would have: a
 * TCP port that forwards each new connection to its node while that node's process runs,
 * and to the next running node while it does not. A connection lasts as long as both
 * ends do, so the clients of a killed node reconnect, through it, to another node.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { SwitchboardNode } from './nodes.js';

export class Balancer {
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private port = 0;

  /** Forwards to `home`, falling back to the others of `nodes` in order; listen() before use. */
  constructor(home: SwitchboardNode, nodes: readonly SwitchboardNode[]) {
    const order = [home, ...nodes.filter((node) => node !== home)];
    this.server = createServer((client) => {
      const target = order.find((node) => node.running);
      if (target === undefined) {
        client.destroy();
        return;
      }
      const upstream = createConnection({ host: '127.0.0.1', port: target.port });
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.setNoDelay(true);
        // Whichever end goes, the other goes too: a node that died drops its clients here.
        socket.on('error', () => undefined);
        socket.once('close', () => {
          this.sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  /** Listens on a free port. */
  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('no port for a balancer');
    this.port = address.port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
