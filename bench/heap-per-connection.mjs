// `npm run bench:heap` (or `node bench/heap-per-connection.mjs [connections]` after `npm run build`): where the
// bytes of an idle connection go. Starts Switchboard's CLI (the embedded broker) with
// `--heapsnapshot-signal`, takes a heap snapshot with no connection open and another once
// `connections` (10,000) idle WebSocket connections are open, and prints, per kind of object
// (a class or closure by name; strings, arrays, compiled code), how many bytes per connection
// the second has over the first. A snapshot holds only the JavaScript heap: the resident
// memory figure of `npm run bench` also counts the native side (libuv's handles, the kernel's
// socket objects are not in it at all).
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { freePort, sleep, waitForPort } from './lib/processes.mjs';
import { ROOT } from './lib/settings.mjs';

const CONNECTIONS = Number(process.argv[2] ?? 10_000);
const OPENING_AT_ONCE = 200;
const SHOWN = 18;

/** Whether the file's last bytes close the JSON object (a snapshot is large: only its tail is read). */
function endsObject(file) {
  const { size } = statSync(file);
  const tail = Buffer.alloc(Math.min(size, 64));
  const fd = openSync(file, 'r');
  try {
    readSync(fd, tail, 0, tail.length, size - tail.length);
  } finally {
    closeSync(fd);
  }
  return tail.toString('utf8').trimEnd().endsWith('}');
}

/** Waits for a new, complete snapshot file in `dir` (the server writes it synchronously, but the file grows meanwhile). */
async function nextSnapshot(dir, known) {
  for (;;) {
    const fresh = readdirSync(dir).filter((name) => name.endsWith('.heapsnapshot') && !known.has(name));
    if (fresh.length > 0) {
      const file = join(dir, fresh[0]);
      // Complete once it ends the JSON object and stops growing.
      let size = -1;
      while (statSync(file).size !== size || !endsObject(file)) {
        size = statSync(file).size;
        await sleep(1000);
      }
      known.add(fresh[0]);
      return file;
    }
    await sleep(200);
  }
}

/** Self sizes of a snapshot's objects, summed by kind: `Class`, `closure name()`, `(strings)`, `(arrays)`… */
function sizesByKind(file) {
  const { snapshot, nodes, strings } = JSON.parse(readFileSync(file, 'utf8'));
  const fields = snapshot.meta.node_fields;
  const types = snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field));
  const totals = new Map();
  const add = (kind, size) => totals.set(kind, (totals.get(kind) ?? 0) + size);
  for (let index = 0; index < nodes.length; index += fields.length) {
    const type = types[nodes[index + typeAt]];
    const name = strings[nodes[index + nameAt]];
    const size = nodes[index + sizeAt];
    if (type === 'object') add(name, size);
    else if (type === 'closure') add(`closure ${name || '(anonymous)'}()`, size);
    else if (type === 'string' || type === 'concatenated string' || type === 'sliced string') add('(strings)', size);
    else if (type === 'array') add(`(arrays: ${name})`, size);
    else add(`(${type}: ${name.length > 40 ? `${name.slice(0, 40)}…` : name})`, size);
  }
  return totals;
}

const dir = mkdtempSync(join(tmpdir(), 'switchboard-heap-'));
const port = await freePort();
const server = spawn(process.execPath, ['--heapsnapshot-signal=SIGUSR2', join(ROOT, 'dist/cli/main.js'), 'start'], {
  cwd: dir,
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, WS_HOST: '127.0.0.1', WS_PORT: String(port), WS_LOG_LEVEL: 'error', WS_MAX_CONNECTIONS: '0', WS_MAX_CONNECTIONS_PER_IP: '0' },
});
const clients = [];
try {
  await waitForPort(port);
  const known = new Set();
  await sleep(1000);
  server.kill('SIGUSR2');
  const before = sizesByKind(await nextSnapshot(dir, known));
  for (let opened = 0; opened < CONNECTIONS; opened += OPENING_AT_ONCE) {
    const batch = Array.from({ length: Math.min(OPENING_AT_ONCE, CONNECTIONS - opened) }, () => {
      const client = new WebSocket(`ws://127.0.0.1:${port}/`);
      clients.push(client);
      return new Promise((resolve, reject) => {
        client.once('message', resolve);
        client.once('error', reject);
      });
    });
    await Promise.all(batch);
  }
  await sleep(3000);
  server.kill('SIGUSR2');
  const after = sizesByKind(await nextSnapshot(dir, known));
  const growth = [...after].map(([kind, size]) => [kind, (size - (before.get(kind) ?? 0)) / CONNECTIONS]);
  for (const [kind, size] of before) if (!after.has(kind)) growth.push([kind, -size / CONNECTIONS]);
  growth.sort((a, b) => b[1] - a[1]);
  const total = growth.reduce((sum, [, bytes]) => sum + bytes, 0);
  const shown = growth.slice(0, SHOWN);
  const rest = total - shown.reduce((sum, [, bytes]) => sum + bytes, 0);
  console.log(`| JavaScript heap per idle connection (${CONNECTIONS.toLocaleString('en-US')} connections, after − before) | bytes |`);
  console.log('|---|---|');
  for (const [kind, bytes] of shown) console.log(`| ${kind.replaceAll('|', '\\|')} | ${bytes.toFixed(0)} |`);
  console.log(`| everything else | ${rest.toFixed(0)} |`);
  console.log(`| **total** | **${total.toFixed(0)}** |`);
} finally {
  for (const client of clients) client.terminate();
  server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
