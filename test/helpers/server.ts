/** Starts a real Switchboard server on 127.0.0.1 and a free port, for one test. */
import { pino } from 'pino';
import { createServer, type SwitchboardServer } from '../../src/http/server.js';
import { WebSocketHandler, type HandlerOptions } from '../../src/handler.js';

export interface TestServer {
  server: SwitchboardServer;
  handler: WebSocketHandler;
  /** ws:// URL of the WebSocket endpoint. */
  url: string;
  /** http:// (or https://) base URL of the same port. */
  httpUrl: string;
  port: number;
  close(): Promise<void>;
}

/**
 * `setup` runs on the handler before the server listens (register hooks and actions there).
 * Short shutdown timeout so a test's teardown never waits long; a silent logger unless
 * the test passes one (several tests make hooks throw on purpose).
 */
export async function startServer(options: HandlerOptions = {}, setup?: (handler: WebSocketHandler) => void): Promise<TestServer> {
  const handler = new WebSocketHandler({ shutdownTimeout: 1, logger: pino({ level: 'silent' }), ...options });
  setup?.(handler);
  const { path, ssl } = options;
  const server = createServer({ host: '127.0.0.1', port: 0, ...(path !== undefined && { path }), ...(ssl !== undefined && { ssl }) }, handler);
  const address = await server.listen();
  const scheme = server.options.ssl.enabled ? 'https' : 'http';
  return {
    server,
    handler,
    url: address.url,
    httpUrl: `${scheme}://127.0.0.1:${address.port}`,
    port: address.port,
    close: () => server.close(),
  };
}
