// Publisher connections of the scale scenario (bench/scale.mjs): `total` publisher
// connections over all publisher processes, of which this process holds `connections`,
// numbered from `first`. Publisher p publishes to the channels `<prefix>.i` with
// i % total === p, and must be subscribed to them first (the protocol refuses a message to
// a channel its sender is not in: NOT_SUBSCRIBED), so each message also comes back to it
// (its echo) after its `message_sent` ack. Every channel gets one message a second, and the
// channels' messages are spread evenly over each second: channel i's is due at i/channels
// of the second. Each message carries that intended time as `t`, so a late send counts as
// latency at the subscriber. A 1 ms tick sends what is due, one write per connection.
// Usage (forked with IPC): scale-publishers.mjs <port> <channels> <prefix> <first> <connections> <total> <localAddress>
import { PROTOCOLS, RawClient } from '../lib/raw-client.mjs';

const [portText, channelsText, prefix, firstText, connectionsText, totalText, localAddress] = process.argv.slice(2);
const port = Number(portText);
const channels = Number(channelsText);
const first = Number(firstText);
const total = Number(totalText);
/** Subscribe requests a publisher keeps in flight while it joins its channels. */
const SUBSCRIBE_WINDOW = 500;
const PAD = 'x'.repeat(16);
const counts = { acks: 0, subscribed: 0, errors: 0, firstError: null };
let onControl = () => undefined;

const now = () => performance.timeOrigin + performance.now();

// The native protocol, but counting the control frames: subscribe acks, message_sent acks, errors.
const protocol = {
  ...PROTOCOLS.switchboard,
  onControlText: (_client, text) => {
    if (text.startsWith('{"success":true,"action":"message_sent"')) counts.acks++;
    else if (text.startsWith('{"success":true,"action":"subscribe"')) counts.subscribed++;
    else if (text.startsWith('{"type":"error"')) {
      counts.errors++;
      counts.firstError ??= text;
    }
    onControl();
  },
};

const publishers = [];
for (let j = 0; j < Number(connectionsText); j++) {
  const client = new RawClient({ port, kind: 'switchboard', localAddress });
  client.protocol = protocol;
  await client.open();
  const p = first + j;
  const mine = [];
  for (let i = p; i < channels; i += total) mine.push(i);
  publishers.push({ client, mine });
}

/** Resolves once `predicate()` holds, checked after each control frame. */
function until(predicate) {
  return new Promise((resolve) => {
    onControl = () => {
      if (predicate()) {
        onControl = () => undefined;
        resolve();
      }
    };
    onControl();
  });
}

// Join every channel, SUBSCRIBE_WINDOW requests in flight per connection; an error ends it.
let requested = 0;
const joined = publishers.map(() => 0);
while (joined.some((done, index) => done < publishers[index].mine.length) && counts.errors === 0) {
  publishers.forEach(({ client, mine }, index) => {
    const batch = mine.slice(joined[index], joined[index] + SUBSCRIBE_WINDOW);
    client.socket.cork();
    for (const i of batch) client.sendText(JSON.stringify({ action: 'subscribe', data: { channel: `${prefix}.${i}` } }));
    client.socket.uncork();
    joined[index] += batch.length;
    requested += batch.length;
  });
  await until(() => counts.subscribed >= requested || counts.errors > 0);
}
process.send(counts.errors === 0 ? { ready: true, subscribed: counts.subscribed } : { error: `a publisher's subscribe was refused: ${counts.firstError}` });

/** Publishes for `seconds` from `startAt` (epoch ms); resolves with what was sent and how late the sends were. */
function publish(startAt, seconds) {
  return new Promise((done) => {
    let sent = 0;
    let maxLagMs = 0;
    const cursors = publishers.map(() => ({ second: 0, position: 0 }));
    const tick = () => {
      const at = now();
      let finished = true;
      publishers.forEach(({ client, mine }, index) => {
        const cursor = cursors[index];
        client.socket.cork();
        while (cursor.second < seconds) {
          const i = mine[cursor.position];
          const due = startAt + cursor.second * 1000 + (i * 1000) / channels;
          if (due > at) break;
          maxLagMs = Math.max(maxLagMs, at - due);
          client.sendText(`{"action":"message","data":{"channel":"${prefix}.${i}","message":{"t":${due},"pad":"${PAD}"}}}`);
          sent++;
          if (++cursor.position === mine.length) {
            cursor.position = 0;
            cursor.second++;
          }
        }
        client.socket.uncork();
        if (cursor.second < seconds) finished = false;
      });
      if (finished) done({ sent, maxLagMs });
      else setTimeout(tick, 1);
    };
    setTimeout(tick, Math.max(0, startAt - now()));
  });
}

process.on('message', async (command) => {
  if (command.cmd === 'publish') {
    process.send(await publish(command.startAt, command.seconds));
  } else if (command.cmd === 'count') {
    const echoes = publishers.reduce((sum, { client }) => sum + client.deliveries, 0);
    const closed = publishers.filter(({ client }) => client.closed).length;
    process.send({ echoes, acks: counts.acks, errors: counts.errors, firstError: counts.firstError, closed });
  } else if (command.cmd === 'exit') {
    for (const { client } of publishers) client.close();
    process.exit(0);
  }
});
