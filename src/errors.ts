import type { ErrorCode } from './protocol/codes.js';

/**
 * An error an application hook or custom action throws to refuse a request with a
 * specific protocol code; the client receives it as an error frame. Any other error a
 * hook throws becomes INTERNAL_ERROR and is logged.
 */
export class SwitchboardError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'SwitchboardError';
    this.code = code;
  }
}

/**
 * A configuration value that cannot be used. Its message is one line naming the
 * environment variable and the option in code, so the CLI prints it as it is.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
