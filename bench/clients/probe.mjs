// Is the server still answering while it writes a huge fan-out out? (bench/scale.mjs.) This
// process opens probe connections, subscribed to nothing, until it has one on each of
// `nodes` Switchboard nodes (workers: the node is the first 8 characters of the connection
// id), or gives up after 4 tries per node. On `start`, every `intervalMs` it sends on each
// probe a WebSocket ping (the server's WebSocket layer answers with a pong) and a native
// `ping` request (the server's protocol answers `{"action":"pong",…,"id":…}`), and times
// each answer. On `stop` it waits up to 2 s for the answers still due and reports them;
// one never answered counts with its age at that point.
// Usage (forked with IPC): probe.mjs <port> <nodes> <localAddress>
import { randomBytes } from 'node:crypto';
import { RawClient } from '../lib/raw-client.mjs';

const [portText, nodesText, localAddress] = process.argv.slice(2);
const port = Number(portText);
const nodes = Number(nodesText);
const OP_TEXT = 0x1;
const OP_PING = 0x9;
const OP_PONG = 0xa;
const now = () => performance.now();

function maskFrame(opcode, payload) {
  const header = Buffer.from([0x80 | opcode, 0x80 | payload.length]);
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let index = 0; index < body.length; index++) body[index] ^= mask[index & 3];
  return Buffer.concat([header, mask, body]);
}

/** Answers per kind ('ping': WebSocket control frames, 'request': native ping requests): send time by sequence number, latencies. */
const kinds = () => ({ pending: new Map(), latencies: [], sent: 0 });
let measures = { ping: kinds(), request: kinds() };

function answered(kind, sequence) {
  const measure = measures[kind];
  const sentAt = measure.pending.get(sequence);
  if (sentAt === undefined) return;
  measure.pending.delete(sequence);
  measure.latencies.push(now() - sentAt);
}

/** Takes over the socket once the handshake is done: a few small frames, parsed here. */
function watch(client) {
  let pending = Buffer.alloc(0);
  client.socket.removeAllListeners('data');
  client.socket.on('data', (chunk) => {
    let buffer = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (buffer.length >= 2) {
      let length = buffer[1] & 0x7f;
      let header = 2;
      if (length === 126) [length, header] = buffer.length >= 4 ? [buffer.readUInt16BE(2), 4] : [Infinity, 4];
      else if (length === 127) [length, header] = buffer.length >= 10 ? [Number(buffer.readBigUInt64BE(2)), 10] : [Infinity, 10];
      if (buffer.length < header + length) break;
      const opcode = buffer[0] & 0x0f;
      const payload = buffer.subarray(header, header + length);
      buffer = buffer.subarray(header + length);
      if (opcode === OP_PONG && payload.length > 0) answered('ping', payload.toString());
      else if (opcode === OP_PING) client.socket.write(maskFrame(OP_PONG, payload));
      else if (opcode === OP_TEXT && payload.toString('utf8', 0, 16) === '{"action":"pong"') answered('request', String(JSON.parse(payload.toString()).id));
    }
    pending = buffer;
  });
}

const probes = new Map();
for (let attempt = 0; probes.size < nodes && attempt < nodes * 4; attempt++) {
  const client = new RawClient({ port, kind: 'switchboard', localAddress });
  const welcome = client.waitFor((text) => text.startsWith('{"action":"welcome"'));
  await client.open();
  const node = JSON.parse(await welcome).connection_id.slice(0, 8);
  if (probes.has(node)) {
    client.close();
    continue;
  }
  watch(client);
  probes.set(node, client);
}
process.send({ ready: true, nodes: probes.size });

let timer = null;
let sequence = 0;
/** The most a tick of this process came late: how much of a latency may be this process's own. */
let tickLagMax = 0;

function start(intervalMs) {
  measures = { ping: kinds(), request: kinds() };
  tickLagMax = 0;
  let due = now();
  const tick = () => {
    tickLagMax = Math.max(tickLagMax, now() - due);
    for (const client of probes.values()) {
      const id = `${++sequence}`;
      const sentAt = now();
      measures.ping.pending.set(id, sentAt);
      measures.request.pending.set(id, sentAt);
      measures.ping.sent++;
      measures.request.sent++;
      client.socket.cork();
      client.socket.write(maskFrame(OP_PING, Buffer.from(id)));
      client.sendText(`{"action":"ping","id":"${id}"}`);
      client.socket.uncork();
    }
    due += intervalMs;
    timer = setTimeout(tick, Math.max(0, due - now()));
  };
  tick();
}

async function stop() {
  clearTimeout(timer);
  const deadline = now() + 2000;
  while (now() < deadline && (measures.ping.pending.size > 0 || measures.request.pending.size > 0)) await new Promise((resolve) => setTimeout(resolve, 10));
  const report = (measure) => {
    const stillDue = [...measure.pending.values()].map((sentAt) => now() - sentAt);
    return { sent: measure.sent, answered: measure.latencies.length, unanswered: stillDue.length, latencies: [...measure.latencies, ...stillDue] };
  };
  return { nodes: probes.size, tickLagMax, ping: report(measures.ping), request: report(measures.request) };
}

process.on('message', async (command) => {
  if (command.cmd === 'start') {
    start(command.intervalMs);
    process.send({ started: true });
  } else if (command.cmd === 'stop') {
    process.send(await stop());
  } else if (command.cmd === 'exit') {
    for (const client of probes.values()) client.close();
    process.exit(0);
  }
});
