// A process holding many subscriber connections. It counts delivery frames on all of them
// and decodes only every `sampleEvery`-th connection's messages, to measure latency and to
// check the offsets a channel with history adds to each delivery (`,"offset":N`); those
// connections also keep their subscribe reply (with history it carries `epoch` and `offset`)
// and count presence events (`join`/`leave`). Every subscribe must succeed (raw-client.mjs).
// `authenticated`: each connection signs in with its own HS256 token (user_id, role `user`).
// Usage (forked with IPC): subscribers.mjs <kind> <port> <count> <channel|-> <sampleEvery> <localAddress> [authenticated|anonymous]
import { RawClient, inBatches } from '../lib/raw-client.mjs';
import { benchToken } from '../lib/tokens.mjs';

const [kind, portText, countText, channel, sampleText, localAddress, auth = 'anonymous'] = process.argv.slice(2);
const count = Number(countText);
const sampleEvery = Number(sampleText);
const clients = [];
let latencies = [];
/**
 * Totals over the sampled connections since the start: deliveries decoded, those that
 * carried an offset, and those whose offset was not the previous one + 1 on that connection;
 * subscribe replies, those with a position (`epoch` and `offset`), and presence events heard.
 */
const sampled = { decoded: 0, withOffset: 0, outOfSequence: 0, subscribeReplies: 0, repliesWithPosition: 0, presenceEvents: 0 };

const now = () => performance.timeOrigin + performance.now();
const isPresenceEvent = (text) => text.startsWith('{"action":"join"') || text.startsWith('{"action":"leave"');

try {
  await inBatches(
    Array.from({ length: count }, (_, index) => index),
    100,
    async (index) => {
      const isSampled = sampleEvery > 0 && index % sampleEvery === 0;
      const token = auth === 'authenticated' ? await benchToken(`${localAddress}-${index}`, 'user') : undefined;
      const client = new RawClient({ port: Number(portText), kind, token, decodeAll: isSampled, localAddress });
      if (isSampled) {
        let lastOffset;
        client.onMessage = (message, offset) => {
          if (typeof message?.t === 'number') latencies.push(now() - message.t);
          sampled.decoded++;
          if (typeof offset === 'number') {
            sampled.withOffset++;
            if (lastOffset !== undefined && offset !== lastOffset + 1) sampled.outOfSequence++;
            lastOffset = offset;
          }
        };
        client.onControl = (text) => {
          if (isPresenceEvent(text)) sampled.presenceEvents++;
        };
      }
      await client.open();
      if (channel !== '-') {
        const reply = await client.subscribe(channel);
        if (isSampled) {
          sampled.subscribeReplies++;
          if (reply.includes('"epoch":') && reply.includes('"offset":')) sampled.repliesWithPosition++;
        }
      }
      clients.push(client);
    },
  );
  process.send({ ready: true });
} catch (error) {
  process.send({ error: String(error?.message ?? error) });
}

process.on('message', (command) => {
  if (command.cmd === 'count') {
    let deliveries = 0;
    for (const client of clients) deliveries += client.deliveries;
    process.send({ deliveries, latencies, sampled });
    latencies = [];
  } else if (command.cmd === 'exit') {
    for (const client of clients) client.close();
    process.exit(0);
  }
});
