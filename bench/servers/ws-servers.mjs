// The two baselines that speak Switchboard's JSON protocol with plain `ws`:
//   ws-loop:    what a user writes alone — serialize once, then ws.send() to every subscriber;
//   frame-once: the best a one-write-per-message design can do — build the WebSocket frame once
//               and write the same bytes to every socket.
// Usage: node ws-servers.mjs <ws-loop|frame-once> <port> [secret]
import { createServer } from 'node:http';
import { jwtVerify } from 'jose';
import { WebSocketServer } from 'ws';

const [mode, portText, secret] = process.argv.slice(2);
const key = secret ? new TextEncoder().encode(secret) : null;
const rooms = new Map();
let nextId = 0;

function frameOnce(text) {
  const payload = Buffer.from(text);
  const length = payload.length;
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81;
  if (length < 126) frame[1] = length;
  else if (length < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  payload.copy(frame, headerLength);
  return frame;
}

const http = createServer((request, response) => response.writeHead(404).end());
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
http.on('upgrade', (request, socket, head) => {
  const token = new URL(request.url, 'http://x').searchParams.get('token');
  const accept = (userId) => wss.handleUpgrade(request, socket, head, (ws) => onConnection(ws, userId));
  if (key === null || token === null) return accept(null);
  jwtVerify(token, key, { algorithms: ['HS256'] }).then(
    ({ payload }) => accept(payload.user_id ?? payload.sub ?? null),
    () => socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'),
  );
});

function onConnection(ws, userId) {
  const id = String(++nextId);
  const joined = new Set();
  ws.send(JSON.stringify({ action: 'welcome', connection_id: id, authenticated: userId !== null, user_id: userId }));
  ws.on('message', (data) => {
    let frame;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      return;
    }
    const channel = frame.data?.channel;
    if (frame.action === 'subscribe') {
      let room = rooms.get(channel);
      if (!room) rooms.set(channel, (room = new Set()));
      room.add(ws);
      joined.add(channel);
      ws.send(JSON.stringify({ success: true, action: 'subscribe', channel, id: frame.id }));
    } else if (frame.action === 'message') {
      const room = rooms.get(channel);
      if (!room) return;
      const text = JSON.stringify({ action: 'message', channel, message: frame.data.message, sender: id, user_id: userId, time: Math.floor(Date.now() / 1000) });
      if (mode === 'frame-once') {
        const bytes = frameOnce(text);
        for (const client of room) if (client.readyState === 1) client._socket.write(bytes);
      } else {
        for (const client of room) if (client.readyState === 1) client.send(text);
      }
    }
  });
  ws.on('close', () => {
    for (const channel of joined) rooms.get(channel)?.delete(ws);
  });
  ws.on('error', () => undefined);
}

http.listen(Number(portText), '127.0.0.1', () => console.log(`ready ${http.address().port}`));
process.on('SIGTERM', () => process.exit(0));
