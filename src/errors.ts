import type { ErrorCode } from './codes.js';

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

/** Codes of the errors that callers inside Switchboard tell apart (never by message text). */
export const ClusterErrorCode = {
  /** A cluster-wide view or request needs a cluster this node cannot reach (Redis down, primary gone). */
  CLUSTER_UNAVAILABLE: 'CLUSTER_UNAVAILABLE',
  /** Another process did not answer a request in time. */
  REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
} as const;
export type ClusterErrorCode = (typeof ClusterErrorCode)[keyof typeof ClusterErrorCode];

/**
 * The cluster could not answer: Redis or the primary process is out of reach, or failed
 * the request. The HTTP API answers 503 with its message.
 */
export class ClusterUnavailableError extends Error {
  readonly code: ClusterErrorCode = ClusterErrorCode.CLUSTER_UNAVAILABLE;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClusterUnavailableError';
  }
}

/** A request to another process (worker, primary, node) got no answer within its timeout. */
export class RequestTimeoutError extends ClusterUnavailableError {
  override readonly code: ClusterErrorCode = ClusterErrorCode.REQUEST_TIMEOUT;
  constructor(message: string) {
    super(message);
    this.name = 'RequestTimeoutError';
  }
}
