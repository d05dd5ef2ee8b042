/**
 * The HTTP API (api.ts) described as an OpenAPI 3.1 document, served at
 * GET /api/openapi.json behind the same key as the rest of /api. Schemas are written to
 * be exact (required fields, `additionalProperties: false`) so that client generators
 * get precise types and test/http/openapi.test.ts can hold every real answer to them.
 */
import { CHANNEL_PATTERN, MAX_CHANNEL_LENGTH } from '../channels/names.js';
import { MAX_HISTORY_LIMIT } from '../history/history.js';
import { MAX_RECIPIENTS } from '../protocol/inbound.js';
import { packageVersion } from '../version.js';


const ref = (kind: 'schemas' | 'responses' | 'headers', name: string): { $ref: string } => ({ $ref: `#/components/${kind}/${name}` });
const json = (schema: object): object => ({ 'application/json': { schema } });
const count = (description: string): object => ({ type: 'integer', minimum: 0, description });
const rate = (description: string): object => ({ type: 'number', minimum: 0, description });

/** What every operation may answer besides its 200 (and its 400 where it has one). */
const REFUSALS = {
  '401': ref('responses', 'Unauthorized'),
  '404': ref('responses', 'NotFound'),
  // OpenAPI has no place for "any other method", so each operation carries the 405 of its path.
  '405': ref('responses', 'MethodNotAllowed'),
  '500': ref('responses', 'InternalError'),
  '503': ref('responses', 'ServiceUnavailable'),
};

const ok = (description: string, schema: object): object => ({ description, headers: { 'Cache-Control': ref('headers', 'NoStore') }, content: json(schema) });

const errorResponse = (description: string, headers: Record<string, object> = {}): object => ({
  description,
  headers: { 'Cache-Control': ref('headers', 'NoStore'), ...headers },
  content: json(ref('schemas', 'Error')),
});

const document = {
  openapi: '3.1.0',
  info: {
    title: 'Switchboard HTTP API',
    version: packageVersion(),
    description: [
      'For backends and operators, on the WebSocket port (or under the prefix where an application mounts it). It is on only when `WS_API_KEY` is set:',
      'otherwise every /api path, this document\'s included, answers 404. Every call sends',
      '`Authorization: Bearer <WS_API_KEY>`. With Redis, every answer covers the whole cluster,',
      'whichever node is asked. Request bodies are JSON of at most `WS_MAX_PAYLOAD` bytes. GET',
      'operations also answer HEAD. Every refusal is `{"error": "<what is wrong>"}`.',
    ].join(' '),
    license: { name: 'MIT', identifier: 'MIT' },
  },
  security: [{ bearer: [] }],
  paths: {
    '/api/publish': {
      post: {
        operationId: 'publish',
        summary: 'Publish a message to a channel',
        description:
          'A message from the server side, no WebSocket needed. The body takes the fields of a client\'s `message` action, with the same rules. Subscribers receive it with `"sender": null`.',
        requestBody: { required: true, content: json(ref('schemas', 'PublishRequest')) },
        responses: {
          '200': ok('Published.', ref('schemas', 'PublishResult')),
          '400': ref('responses', 'BadRequest'),
          ...REFUSALS,
        },
      },
    },
    '/api/stats': {
      get: {
        operationId: 'getStats',
        summary: 'Connections, channels, message rates, uptime and nodes',
        responses: {
          '200': ok('The cluster\'s totals and every live node\'s own figures.', ref('schemas', 'Stats')),
          ...REFUSALS,
        },
      },
    },
    '/api/channels': {
      get: {
        operationId: 'listChannels',
        summary: 'Channels with subscribers',
        responses: {
          '200': ok('Channels with subscribers on any node, most subscribed first (then by name).', ref('schemas', 'ChannelList')),
          ...REFUSALS,
        },
      },
    },
    '/api/channels/{name}': {
      get: {
        operationId: 'getChannel',
        summary: 'One channel\'s members',
        parameters: [
          {
            name: 'name',
            in: 'path',
            required: true,
            description: 'The channel name, percent-encoded if needed.',
            schema: ref('schemas', 'ChannelName'),
          },
        ],
        responses: {
          '200': ok('The channel\'s members on every node; a channel nobody is subscribed to has none (not a 404).', ref('schemas', 'ChannelMembers')),
          '400': errorResponse('The name is not a valid channel name, or not valid percent-encoding.'),
          ...REFUSALS,
        },
      },
    },
    '/api/channels/{name}/history': {
      get: {
        operationId: 'getChannelHistory',
        summary: 'A channel\'s history',
        description: 'The newest `limit` messages, or those after `since`, oldest first. Each is the frame its subscribers received.',
        parameters: [
          { name: 'name', in: 'path', required: true, description: 'The channel name, percent-encoded if needed.', schema: ref('schemas', 'ChannelName') },
          { name: 'since', in: 'query', required: false, description: 'Only messages after this offset.', schema: { type: 'integer', minimum: 0 } },
          { name: 'limit', in: 'query', required: false, description: 'At most this many messages.', schema: { type: 'integer', minimum: 1, maximum: MAX_HISTORY_LIMIT, default: MAX_HISTORY_LIMIT } },
        ],
        responses: {
          '200': ok('The channel\'s epoch, its last offset, and the messages asked for.', ref('schemas', 'History')),
          '400': errorResponse('A bad channel name, `since` or `limit`.'),
          ...REFUSALS,
          '404': errorResponse('The channel has no history (or the API is off).'),
        },
      },
    },
    '/api/disconnect': {
      post: {
        operationId: 'disconnect',
        summary: 'Close every connection of a user, or one connection',
        description: 'On every node, with close code 1000 and reason `disconnected by server`.',
        requestBody: { required: true, content: json(ref('schemas', 'DisconnectRequest')) },
        responses: {
          '200': ok('The matching connections are being closed.', ref('schemas', 'DisconnectResult')),
          '400': ref('responses', 'BadRequest'),
          ...REFUSALS,
        },
      },
    },
    '/api/openapi.json': {
      get: {
        operationId: 'getOpenApi',
        summary: 'This document',
        responses: {
          '200': ok('The OpenAPI 3.1 description of this API.', {
            type: 'object',
            required: ['openapi', 'info', 'paths'],
            properties: { openapi: { type: 'string', pattern: '^3\\.1\\.\\d+$' }, info: { type: 'object' }, paths: { type: 'object' } },
          }),
          ...REFUSALS,
        },
      },
    },
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'The API key: `Authorization: Bearer <WS_API_KEY>`, compared in constant time.' },
    },
    headers: {
      NoStore: { description: 'No API answer may be cached.', required: true, schema: { const: 'no-store' } },
    },
    responses: {
      BadRequest: errorResponse(
        'The body is empty, not valid JSON, not a JSON object, larger than WS_MAX_PAYLOAD bytes (then the connection is closed), or breaks a field\'s rule; the message says which.',
      ),
      Unauthorized: errorResponse('No key, or a wrong one.', {
        'WWW-Authenticate': { description: 'The scheme to send the key with.', required: true, schema: { const: 'Bearer' } },
      }),
      NotFound: errorResponse(
        'The HTTP API is off (no WS_API_KEY configured): every /api path answers this, whatever the key. Also the answer to a path below /api that is none of these.',
      ),
      MethodNotAllowed: errorResponse('The path was asked with another method than the one it takes (HEAD counts as GET).', {
        Allow: { description: 'The method the path takes.', required: true, schema: { enum: ['GET', 'POST'] } },
      }),
      InternalError: errorResponse('An unexpected failure; the server logs it.'),
      ServiceUnavailable: errorResponse('The server is shutting down, or (with Redis) the cluster cannot be reached or a node did not answer in time.'),
    },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        additionalProperties: false,
        properties: { error: { type: 'string', minLength: 1, description: 'What is wrong, for a person to read.' } },
      },
      ChannelName: {
        type: 'string',
        minLength: 1,
        maxLength: MAX_CHANNEL_LENGTH,
        pattern: CHANNEL_PATTERN.source,
        description: 'Segments of `A-Z a-z 0-9 _ - : @ =`, joined by single dots.',
        examples: ['chat.room.1'],
      },
      PublishRequest: {
        type: 'object',
        required: ['channel', 'message'],
        additionalProperties: false,
        properties: {
          channel: ref('schemas', 'ChannelName'),
          message: { not: { type: 'null' }, description: 'Any JSON value but null.' },
          recipients: {
            type: 'array',
            maxItems: MAX_RECIPIENTS,
            items: { type: ['string', 'number'] },
            description: 'Only connections authenticated as one of these user ids receive it (compared as strings).',
          },
          ephemeral: { type: 'boolean', description: 'Delivered live only: never kept in the channel\'s history, no offset.' },
        },
        examples: [{ channel: 'chat.room.1', message: { text: 'deploy finished' } }],
      },
      PublishResult: {
        type: 'object',
        required: ['success', 'recipients_count'],
        additionalProperties: false,
        properties: {
          success: { const: true },
          recipients_count: count('The connections the message was addressed to.'),
          offset: { type: 'integer', minimum: 1, description: 'Its offset in the channel\'s history (channels with history only).' },
          epoch: { type: 'string', minLength: 1, description: 'The epoch of that offset.' },
        },
        dependentRequired: { offset: ['epoch'], epoch: ['offset'] },
      },
      History: {
        type: 'object',
        required: ['channel', 'epoch', 'offset', 'messages'],
        additionalProperties: false,
        properties: {
          channel: ref('schemas', 'ChannelName'),
          epoch: { type: 'string', minLength: 1, description: 'Changes whenever the history was lost.' },
          offset: count('The last offset given in this epoch.'),
          messages: { type: 'array', items: ref('schemas', 'StoredMessage') },
        },
      },
      StoredMessage: {
        type: 'object',
        required: ['action', 'channel', 'message', 'sender', 'user_id', 'time', 'offset'],
        additionalProperties: false,
        properties: {
          action: { const: 'message' },
          channel: ref('schemas', 'ChannelName'),
          message: { not: { type: 'null' } },
          sender: { type: ['string', 'null'], description: 'The publishing connection; null when published by the server side.' },
          user_id: { type: ['string', 'number', 'null'] },
          time: { type: 'integer', description: 'Unix seconds.' },
          offset: { type: 'integer', minimum: 1 },
        },
      },
      Stats: {
        type: 'object',
        required: ['connections', 'channels', 'messages_in_per_second', 'messages_out_per_second', 'uptime', 'nodes'],
        additionalProperties: false,
        properties: {
          connections: count('Open connections on every node.'),
          channels: count('Channels with subscribers anywhere (this node\'s own while the cluster cannot be read).'),
          messages_in_per_second: rate('Messages published per second over the last few seconds, summed over the nodes.'),
          messages_out_per_second: rate('Deliveries per second over the last few seconds, summed over the nodes.'),
          uptime: count('Seconds since the answering node started.'),
          nodes: { type: 'array', items: ref('schemas', 'NodeStats'), description: 'Every live node, the answering one included.' },
        },
      },
      NodeStats: {
        type: 'object',
        required: ['id', 'host', 'pid', 'connections', 'channels', 'messages_in_per_second', 'messages_out_per_second', 'uptime', 'ready'],
        additionalProperties: false,
        properties: {
          id: { type: 'string', minLength: 1, description: 'The node id: the prefix of its connection ids.' },
          host: { type: 'string', description: 'The host name of its machine.' },
          pid: { type: 'integer', minimum: 0 },
          connections: count('Open connections on the node.'),
          channels: count('Channels with subscribers on the node.'),
          messages_in_per_second: rate('Messages published on the node per second.'),
          messages_out_per_second: rate('Deliveries to the node\'s subscribers per second.'),
          uptime: count('Seconds since the node started.'),
          ready: { type: 'boolean', description: 'Whether it serves with the whole cluster behind it (its /readyz).' },
        },
      },
      ChannelList: {
        type: 'object',
        required: ['channels'],
        additionalProperties: false,
        properties: { channels: { type: 'array', items: ref('schemas', 'ChannelCount') } },
      },
      ChannelCount: {
        type: 'object',
        required: ['channel', 'subscribers'],
        additionalProperties: false,
        properties: { channel: ref('schemas', 'ChannelName'), subscribers: count('Subscribed connections on every node.') },
      },
      ChannelMembers: {
        type: 'object',
        required: ['channel', 'subscribers', 'members'],
        additionalProperties: false,
        properties: {
          channel: ref('schemas', 'ChannelName'),
          subscribers: count('The number of members.'),
          members: { type: 'array', items: ref('schemas', 'Member') },
        },
      },
      Member: {
        type: 'object',
        required: ['connection_id', 'user_id', 'node'],
        additionalProperties: false,
        properties: {
          connection_id: { type: 'string', minLength: 1, description: 'Opaque, never reused.' },
          user_id: {
            type: ['string', 'number', 'null'],
            description: 'The user id as the member\'s token carries it (`42` or `"42"`); null for an anonymous connection.',
          },
          node: { type: 'string', minLength: 1, description: 'The id of the node it is connected to.' },
        },
      },
      DisconnectRequest: {
        description: 'Exactly one of the two fields.',
        oneOf: [
          {
            type: 'object',
            required: ['user_id'],
            additionalProperties: false,
            properties: {
              user_id: {
                type: ['string', 'number'],
                minLength: 1,
                description: 'Every connection of this user; compared as a string, so `42` and `"42"` close the same connections.',
              },
            },
          },
          {
            type: 'object',
            required: ['connection_id'],
            additionalProperties: false,
            properties: { connection_id: { type: 'string', minLength: 1, description: 'This one connection.' } },
          },
        ],
        examples: [{ user_id: 42 }, { connection_id: 'vT2bLcRa-1' }],
      },
      DisconnectResult: {
        type: 'object',
        required: ['success', 'disconnected'],
        additionalProperties: false,
        properties: {
          success: { const: true },
          disconnected: count('The connections being closed.'),
          unanswered: {
            type: 'array',
            minItems: 1,
            items: { type: 'string' },
            description: 'Only when some node did not answer in time: its ids. Its matching connections may still be open.',
          },
        },
      },
    },
  },
};

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** One document per mount prefix, built at its first request. */
const documents = new Map<string, object>();

/**
 * The document for endpoints mounted under `prefix` ('' at the root): its server URL is
 * that path, so that a client generated from it, or a saved copy, calls the right paths.
 * Frozen because every request is answered with this same object, and shared objects (the
 * refs) appear in several places in it.
 */
export function openApiDocument(prefix: string): object {
  let built = documents.get(prefix);
  if (built === undefined) {
    built = deepFreeze({ ...document, servers: [{ url: prefix === '' ? '/' : prefix, description: 'where the endpoints are mounted, on the server this document was fetched from' }] });
    documents.set(prefix, built);
  }
  return built;
}
