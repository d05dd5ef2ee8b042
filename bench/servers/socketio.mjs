// Socket.IO v4 with the websocket transport and rooms: what most users pick instead.
// Usage: node socketio.mjs <port> [secret]
import { createServer } from 'node:http';
import { jwtVerify } from 'jose';
import { Server } from 'socket.io';

const [portText, secret] = process.argv.slice(2);
const key = secret ? new TextEncoder().encode(secret) : null;
const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });

io.use((socket, next) => {
  const token = socket.handshake.query.token;
  if (key === null || typeof token !== 'string') return next();
  jwtVerify(token, key, { algorithms: ['HS256'] }).then(
    ({ payload }) => {
      socket.data.userId = payload.user_id ?? payload.sub ?? null;
      next();
    },
    () => next(new Error('unauthorized')),
  );
});

io.on('connection', (socket) => {
  socket.on('subscribe', (channel, ack) => {
    socket.join(channel);
    if (typeof ack === 'function') ack({ success: true, channel });
  });
  socket.on('message', ({ channel, message }) => {
    io.to(channel).emit('message', { channel, message, sender: socket.id, user_id: socket.data.userId ?? null, time: Math.floor(Date.now() / 1000) });
  });
});

http.listen(Number(portText), '127.0.0.1', () => console.log(`ready ${http.address().port}`));
process.on('SIGTERM', () => process.exit(0));
