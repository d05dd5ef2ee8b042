/** Types of server.mjs (plain JavaScript, run without a build), for the TypeScript tests that start it. */
// The source's types: they are dist's, and they exist before a build (npm test type-checks first).
import type { SwitchboardConfig } from '../../src/index.js';

export interface ChatOptions extends SwitchboardConfig {
  /** @default Number(process.env.PORT ?? 3000); 0 picks a free port */
  port?: number;
  /** @default process.env.HOST ?? '127.0.0.1' */
  host?: string;
}

export interface Chat {
  /** The page's address, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  /** Closes Switchboard (clients get 1001), then the HTTP server. */
  close(): Promise<void>;
}

/**
 * Starts the demo chat; `options` beyond port and host are Switchboard options in code,
 * over defaults, `.env` and the environment. Refuses to start with NODE_ENV=production.
 */
export function startChat(options?: ChatOptions): Promise<Chat>;
