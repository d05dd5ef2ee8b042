// One of the processes holding the many connections of the scale and huge-channel scenarios
// (bench/scale.mjs). Connection `first + j` is global index i; `channel` names what it
// subscribes to, `%` standing for i (`scale.%`: a channel of its own; `huge`: one for all;
// `-`: nothing yet, the connection stays idle until a `subscribe` command). It counts
// delivery frames on every connection and decodes only every `sampleEvery`-th one's
// messages, whose `t` (the intended send time) gives the latency.
// Usage (forked with IPC): scale-subscribers.mjs <port> <first> <count> <channel|-> <sampleEvery> <localAddress>
import { RawClient, inBatches } from '../lib/raw-client.mjs';

const [portText, firstText, countText, channelArgument, sampleText, localAddress] = process.argv.slice(2);
const port = Number(portText);
const first = Number(firstText);
const count = Number(countText);
const sampleEvery = Number(sampleText);
/**
 * Connections opened at once: enough to keep the server busy, few enough that none waits
 * long for its handshake (a busy node answers one that waited 10 s with 408).
 */
const CONCURRENCY = 64;
/** A refused or failed handshake is tried again, as a client would reconnect, this many times. */
const RETRIES = 5;
const clients = [];
let latencies = [];
/** Sampled deliveries whose message had no numeric `t`: a frame the benchmark did not send. */
let undecoded = 0;
/** Handshakes that failed and were tried again, and the first reason. */
const retried = { count: 0, firstError: null };

const now = () => performance.timeOrigin + performance.now();
const channelOf = (pattern, index) => pattern.replaceAll('%', String(index));

/** Runs `task` on every item, `CONCURRENCY` at a time; failures are counted, the first one kept. */
async function each(items, task) {
  const outcome = { done: 0, failed: 0, firstError: null };
  await inBatches(items, CONCURRENCY, async (item) => {
    try {
      await task(item);
      outcome.done++;
    } catch (error) {
      outcome.failed++;
      outcome.firstError ??= String(error?.message ?? error);
    }
  });
  return outcome;
}

async function subscribeAll(pattern) {
  return each(clients, (client) => client.subscribe(channelOf(pattern, client.index)));
}

/** A connection with global index `index`, decoding its messages when sampled. */
function connection(index) {
  const client = new RawClient({ port, kind: 'switchboard', decodeAll: sampleEvery > 0 && index % sampleEvery === 0, localAddress });
  client.index = index;
  if (client.decodeAll) {
    client.onMessage = (message) => {
      if (typeof message?.t === 'number') latencies.push(now() - message.t);
      else undecoded++;
    };
  }
  return client;
}

const opened = await each(
  Array.from({ length: count }, (_, j) => first + j),
  async (index) => {
    for (let attempt = 0; ; attempt++) {
      const client = connection(index);
      try {
        await client.open();
        clients.push(client);
        return;
      } catch (error) {
        client.socket?.destroy();
        if (attempt === RETRIES) throw error;
        retried.count++;
        retried.firstError ??= String(error?.message ?? error);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  },
);
let subscribed = { done: 0, failed: 0, firstError: null };
if (opened.failed === 0 && channelArgument !== '-') subscribed = await subscribeAll(channelArgument);
process.send({ ready: true, opened: opened.done, failed: opened.failed + subscribed.failed, firstError: opened.firstError ?? subscribed.firstError, retried });

process.on('message', async (command) => {
  if (command.cmd === 'subscribe') {
    const outcome = await subscribeAll(command.channel);
    process.send({ subscribed: outcome.done, failed: outcome.failed, firstError: outcome.firstError });
  } else if (command.cmd === 'count') {
    let deliveries = 0;
    let closed = 0;
    for (const client of clients) {
      deliveries += client.deliveries;
      if (client.closed) closed++;
    }
    process.send({ deliveries, closed, undecoded, latencies });
    latencies = [];
  } else if (command.cmd === 'exit') {
    for (const client of clients) client.close();
    process.exit(0);
  }
});
