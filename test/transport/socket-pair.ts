/** A real server socket and client over 127.0.0.1, for the transport tests. */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { pino, type Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { SwitchboardSocket } from '../../src/transport/switchboard-socket.js';

export interface SocketPair {
  server: SwitchboardSocket;
  client: WebSocket;
  /** Text frames the client received, in order. */
  received: string[];
}

export interface PairOptions {
  perMessageDeflate?: boolean;
  maxPayload?: number;
}

export async function pair(t: TestContext, options: PairOptions = {}): Promise<SocketPair> {
  const perMessageDeflate = options.perMessageDeflate ?? false;
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate, maxPayload: options.maxPayload, WebSocket: SwitchboardSocket });
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  );
  await once(wss, 'listening');
  const accepted = once(wss, 'connection') as Promise<[SwitchboardSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate });
  const received: string[] = [];
  client.on('message', (data: Buffer, isBinary) => {
    received.push(isBinary ? `unexpected binary frame: ${data.toString('hex')}` : data.toString('utf8'));
  });
  await once(client, 'open');
  const [server] = await accepted;
  t.after(() => client.terminate());
  return { server, client, received };
}



export const silentLogger: Logger = pino({ level: 'silent' });
