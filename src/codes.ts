/**
 * Every code the wire protocol uses, in one place (SPEC §2). Tests import these
 * instead of repeating literals.
 */

export const ErrorCode = {
  INVALID_JSON: 'INVALID_JSON',
  INVALID_MESSAGE: 'INVALID_MESSAGE',
  UNKNOWN_ACTION: 'UNKNOWN_ACTION',
  INVALID_CHANNEL: 'INVALID_CHANNEL',
  NOT_SUBSCRIBED: 'NOT_SUBSCRIBED',
  FORBIDDEN: 'FORBIDDEN',
  UNAUTHORIZED: 'UNAUTHORIZED',
  TOKEN_INVALID: 'TOKEN_INVALID',
  TOKEN_EXPIRED: 'TOKEN_EXPIRED',
  TOO_MANY_CHANNELS: 'TOO_MANY_CHANNELS',
  RATE_LIMITED: 'RATE_LIMITED',
  NOT_ENABLED: 'NOT_ENABLED',
  INTERNAL_ERROR: 'INTERNAL_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The texts GEMVC used, kept so that its clients' string checks keep working. */
export const ErrorText = {
  INVALID_JSON: 'Invalid message format',
  NOT_SUBSCRIBED: 'Not subscribed to channel',
  RATE_LIMITED: 'Rate limit exceeded. Please slow down.',
  TIMEOUT: 'Connection timed out due to inactivity',
  INTERNAL_ERROR: 'Internal server error',
  unknownAction: (action: string) => `Unknown action: ${action}`,
} as const;

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  INVALID_PAYLOAD: 1007,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TOKEN_EXPIRED: 4001,
  TIMEOUT: 4008,
  SLOW_CONSUMER: 4009,
  FLOODING: 4029,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Close reasons sent with our own close codes (at most 123 bytes each, RFC 6455 §5.5). */
export const CloseReason = {
  [CloseCode.NORMAL]: 'disconnected by server',
  [CloseCode.GOING_AWAY]: 'server shutting down',
  [CloseCode.INTERNAL_ERROR]: 'internal error',
  [CloseCode.TOKEN_EXPIRED]: 'token expired',
  [CloseCode.TIMEOUT]: 'connection timed out',
  [CloseCode.SLOW_CONSUMER]: 'slow consumer',
  [CloseCode.FLOODING]: 'rate limit exceeded repeatedly',
} as const;

/** Reasons a WebSocket handshake is refused with a plain HTTP answer (SPEC §3). */
export const HandshakeRefusal = {
  UNAUTHORIZED: { status: 401, reason: 'unauthorized' },
  ORIGIN_NOT_ALLOWED: { status: 403, reason: 'origin_not_allowed' },
  NOT_FOUND: { status: 404, reason: 'not_found' },
  TOO_MANY_CONNECTIONS_FROM_IP: { status: 429, reason: 'too_many_connections_per_ip' },
  TOO_MANY_CONNECTIONS: { status: 503, reason: 'too_many_connections' },
  SHUTTING_DOWN: { status: 503, reason: 'shutting_down' },
} as const;
export type HandshakeRefusal = (typeof HandshakeRefusal)[keyof typeof HandshakeRefusal];
