/**
 * History in Redis (SPEC §4, §6): for each channel with history, a position hash
 * `P{C}:position` (fields `epoch` and `offset`, the last offset assigned; kept for
 * POSITION_TTL_MS after the last message) and a stream `P{C}:history` of the last `size`
 * messages (expiring after `ttl` seconds of silence), whose entry ids are `<offset>-0` so
 * that a read by offset is a plain XRANGE.
 *
 * Both scripts touch only the keys of one channel (one hash tag, one Cluster slot); the
 * offset, the stored message and the PUBLISH to the other nodes happen in one script call,
 * so that no reader ever sees an offset without its message.
 *
 * The epoch: a channel without one (never used, its position expired, or Redis lost it:
 * restarted without persistence, flushed) gets the candidate the node passes, and its old
 * stream, if any, is dropped, so that offsets start over only in a new epoch. A reader that
 * has delivered further than the store's offset in the same epoch (Redis restored from an
 * older snapshot) makes the store start a new epoch as well; the offset then keeps
 * counting from the value the store has (a client compares the epoch first, so the numbers
 * of a new epoch need not restart at 0, and keeping them growing keeps stream ids growing).
 */
import type { Cluster, Redis } from 'ioredis';

/**
 * Makes sure the channel has an epoch. KEYS[1] position, KEYS[2] stream; `candidate` the
 * epoch to create, `positionTtl` in ms. Sets `epoch` and `created` (1 when the candidate
 * was taken). Shared by both scripts.
 */
const ENSURE_EPOCH_LUA = `
local function ensureEpoch(candidate, positionTtl)
  local epoch = redis.call('HGET', KEYS[1], 'epoch')
  if epoch then return epoch, 0 end
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', candidate, 'offset', 0)
  redis.call('PEXPIRE', KEYS[1], positionTtl)
  return candidate, 1
end`;

/**
 * Publishes a message kept in the history, with its offset, and counts its recipients.
 * KEYS: position, history, members, users.
 * ARGV: [1] pub/sub channel, [2] payload head (payload.ts keptPayloadHead), [3] frame
 * without an offset (JSON object text), [4] size, [5] stream TTL in ms, [6] position TTL
 * in ms, [7] epoch candidate, [8] the publishing node's epoch or '', [9] the offset it
 * delivered up to (ahead of the store in the same epoch: Redis lost messages, and a new
 * epoch begins rather than give their offsets again), [10] '1' when recipients follow,
 * '0' for every member, [11…] recipients' user ids.
 * Returns {count, offset, epoch, 1 when the candidate became the epoch}.
 */
export const PUBLISH_KEPT_SCRIPT = `${ENSURE_EPOCH_LUA}
local epoch, created = ensureEpoch(ARGV[7], ARGV[6])
if created == 0 and ARGV[8] == epoch and tonumber(ARGV[9]) > (tonumber(redis.call('HGET', KEYS[1], 'offset')) or 0) then
  epoch = ARGV[7]
  created = 1
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local frame = string.sub(ARGV[3], 1, -2) .. ',"offset":' .. offset .. '}'
local id = offset .. '-0'
local added = redis.pcall('XADD', KEYS[2], 'MAXLEN', ARGV[4], id, 'f', frame)
if type(added) == 'table' and added.err then
  -- The stream is ahead of the position: the position was lost or rolled back on its own.
  -- What the stream holds cannot be trusted in this epoch: a new one, a new stream.
  epoch = ARGV[7]
  created = 1
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], id, 'f', frame)
end
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. '"o":' .. offset .. ',"e":"' .. epoch .. '"}\\n' .. frame)
local count = 0
if ARGV[10] == '0' then
  count = redis.call('HLEN', KEYS[3])
else
  for i = 11, #ARGV do
    local n = redis.call('HGET', KEYS[4], ARGV[i])
    if n then count = count + tonumber(n) end
  end
end
return {count, offset, epoch, created}`;

/**
 * Reads a channel's position and messages. KEYS: position, history.
 * ARGV: [1] epoch candidate, [2] position TTL in ms, [3] first id ('-' for the oldest),
 * [4] last id ('+' for the newest), [5] limit, [6] '1' newest first (XREVRANGE; returned
 * oldest first all the same), [7] the reader's epoch or '', [8] the offset it delivered up to.
 * Returns {epoch, offset, created, id, frame, id, frame, …}.
 */
export const READ_HISTORY_SCRIPT = `${ENSURE_EPOCH_LUA}
local epoch, created = ensureEpoch(ARGV[1], ARGV[2])
local offset = tonumber(redis.call('HGET', KEYS[1], 'offset')) or 0
if created == 0 and ARGV[7] == epoch and tonumber(ARGV[8]) > offset then
  -- The reader delivered offsets this store no longer has: it lost messages.
  epoch = ARGV[1]
  created = 1
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local reply = {epoch, offset, created}
local limit = tonumber(ARGV[5])
if limit > 0 then
  local entries
  if ARGV[6] == '1' then
    entries = redis.call('XREVRANGE', KEYS[2], ARGV[4], ARGV[3], 'COUNT', limit)
    for i = #entries, 1, -1 do
      reply[#reply + 1] = entries[i][1]
      reply[#reply + 1] = entries[i][2][2]
    end
  else
    entries = redis.call('XRANGE', KEYS[2], ARGV[3], ARGV[4], 'COUNT', limit)
    for i = 1, #entries do
      reply[#reply + 1] = entries[i][1]
      reply[#reply + 1] = entries[i][2][2]
    end
  end
end
return reply`;

/** The replies of the scripts above, as ioredis gives them (Lua numbers become integers, strings stay strings). */
export type PublishKeptReply = [count: number, offset: number, epoch: string, created: number];
export type ReadHistoryReply = [epoch: string, offset: number, created: number, ...entries: string[]];

export interface HistoryCommands {
  switchboardPublishKept(
    position: string,
    history: string,
    members: string,
    users: string,
    pubChannel: string,
    head: string,
    frame: string,
    size: number,
    streamTtlMs: number,
    positionTtlMs: number,
    candidate: string,
    seenEpoch: string,
    seenOffset: number,
    someRecipients: '0' | '1',
    ...recipients: string[]
  ): Promise<PublishKeptReply>;
  switchboardReadHistory(
    position: string,
    history: string,
    candidate: string,
    positionTtlMs: number,
    first: string,
    last: string,
    limit: number,
    newestFirst: '0' | '1',
    seenEpoch: string,
    seenOffset: number,
  ): Promise<ReadHistoryReply>;
}

/** `publishing` turns the script's PUBLISH into SPUBLISH on a Cluster (redis-keys.ts withScripts). */
export function defineHistoryScripts(redis: Redis | Cluster, publishing: (lua: string) => string): void {
  redis.defineCommand('switchboardPublishKept', { numberOfKeys: 4, lua: publishing(PUBLISH_KEPT_SCRIPT) });
  redis.defineCommand('switchboardReadHistory', { numberOfKeys: 2, lua: READ_HISTORY_SCRIPT });
}
