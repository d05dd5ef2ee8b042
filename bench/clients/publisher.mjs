// One publishing connection, subscribed to its own channel so that the echo of each message
// tells it the server has handled it: that bounds the number of messages in flight.
// `token` ('-' or absent: none): an HS256 token to connect with, where channel rules require one.
// Usage (forked with IPC): publisher.mjs <kind> <port> <channel> [token]
import { RawClient } from '../lib/raw-client.mjs';

const [kind, portText, channel, token = '-'] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
const client = new RawClient({ port: Number(portText), kind, decodeAll: true, ...(token !== '-' && { token }) });
let onEcho = () => undefined;
client.onMessage = () => onEcho();
await client.open();
await client.subscribe(channel);
process.send({ ready: true });

function burst(messages, window) {
  return new Promise((done) => {
    let sent = 0;
    let echoed = 0;
    const send = () => {
      client.publish(channel, { t: now(), pad: 'x'.repeat(16) });
      sent++;
    };
    onEcho = () => {
      echoed++;
      if (sent < messages) send();
      if (echoed === messages) done();
    };
    for (let index = 0; index < Math.min(window, messages); index++) send();
  });
}

/** Publishes at a fixed rate; each message carries its intended send time, so a late send counts as latency. */
function atRate(rate, seconds) {
  return new Promise((done) => {
    const start = now();
    const total = Math.round(rate * seconds);
    let sent = 0;
    const tick = () => {
      const due = Math.min(total, Math.floor(((now() - start) * rate) / 1000) + 1);
      while (sent < due) {
        client.publish(channel, { t: start + (sent * 1000) / rate, pad: 'x'.repeat(16) });
        sent++;
      }
      if (sent < total) setTimeout(tick, 1);
      else done();
    };
    tick();
  });
}

process.on('message', async (command) => {
  if (command.cmd === 'burst') {
    await burst(command.messages, command.window);
    process.send({ done: true });
  } else if (command.cmd === 'rate') {
    await atRate(command.rate, command.seconds);
    process.send({ done: true });
  } else if (command.cmd === 'exit') {
    client.close();
    process.exit(0);
  }
});
