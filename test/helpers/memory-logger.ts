/** A pino logger that keeps its lines in memory, for tests that assert on what was logged. */
import { pino, type Logger } from 'pino';

export type LogLine = Record<string, unknown> & { level: number; msg?: string };

/** Every line at `level` and above, parsed. */
export function memoryLogger(level: 'debug' | 'info' = 'info'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as LogLine);
      },
    },
  );
  return { logger, lines };
}
