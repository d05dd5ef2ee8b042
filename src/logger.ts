/** pino JSON-line logs to stdout or a file. */
import { pino, type Logger } from 'pino';
import type { LogLevelName } from './config/options.js';

export type { Logger };

export function createLogger(level: LogLevelName, file: string | null = null): Logger {
  const destination = file === null ? pino.destination({ dest: 1, sync: false }) : pino.destination({ dest: file, mkdir: true, sync: false });
  return pino({ name: 'switchboard', level, base: { pid: process.pid } }, destination);
}

/**
 * The library's logger when the application passes none: warnings and errors (a hook
 * that threw, a failing broker) on stderr, nothing else.
 */
export function defaultLibraryLogger(): Logger {
  return pino({ name: 'switchboard', level: 'warn' }, pino.destination({ dest: 2, sync: false }));
}
