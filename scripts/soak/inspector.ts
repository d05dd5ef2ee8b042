/**
 * A full garbage collection in the server, asked for through its inspector (Chrome DevTools
 * Protocol, `HeapProfiler.collectGarbage`), so that the heap read right after is what is
 * still alive rather than wherever V8's collector happened to be: two such readings compare.
 */
import WebSocket from 'ws';

const TIMEOUT_MS = 30_000;

export async function forceGc(inspectorPort: number): Promise<void> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl?: string }>;
  const url = targets[0]?.webSocketDebuggerUrl;
  if (url === undefined) throw new Error('the server has no inspector target');
  const socket = new WebSocket(url, { perMessageDeflate: false });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from the inspector in ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
      socket.once('error', reject);
      socket.once('open', () => socket.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })));
      socket.on('message', (data: Buffer) => {
        const reply = JSON.parse(data.toString()) as { id?: number; error?: { message?: string } };
        if (reply.id !== 1) return;
        clearTimeout(timer);
        if (reply.error !== undefined) reject(new Error(`the inspector refused: ${reply.error.message ?? ''}`));
        else resolve();
      });
    });
  } finally {
    socket.close();
  }
}
