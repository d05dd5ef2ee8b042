// Opens and closes authenticated connections as fast as the server accepts them.
// Usage (forked with IPC): handshakes.mjs <kind> <port> <token> <seconds> <concurrency>
import { RawClient } from '../lib/raw-client.mjs';

const [kind, portText, token, secondsText, concurrencyText] = process.argv.slice(2);
const deadline = Date.now() + Number(secondsText) * 1000;
let accepted = 0;
let failed = 0;
let next = 0;

async function loop() {
  while (Date.now() < deadline) {
    // Spread source addresses over 127.0.0.0/8 so closed connections' TIME_WAIT never exhausts ports.
    const localAddress = `127.0.${1 + (next >> 8) % 200}.${1 + (next++ & 0xff) % 250}`;
    const client = new RawClient({ port: Number(portText), kind, token, localAddress });
    try {
      await client.open();
      accepted++;
    } catch {
      failed++;
    }
    client.close();
  }
}

await Promise.all(Array.from({ length: Number(concurrencyText) }, loop));
process.send({ accepted, failed });
process.exit(0);
