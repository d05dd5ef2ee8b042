import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Answers an upgrade request with a plain HTTP response and closes the socket
 * (SPEC §3: refusals happen before the upgrade, with a one-line JSON body).
 */
export function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  // Node removed its own error listener when it handed the socket to the upgrade
  // listeners; without ours a client resetting the connection would crash the process.
  socket.on('error', () => socket.destroy());
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: message });
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      '\r\n' +
      body,
  );
}
