/**
 * Where Switchboard keeps its state in Redis (SPEC §6). Every key and pub/sub channel
 * starts with the prefix. The keys of one channel share the hash tag `{channel}`, and
 * those of one node the tag `{node id}`, so that each group lands on one Redis Cluster
 * slot and the scripts that touch a group stay valid there.
 *
 *   P{C}:pub          pub/sub channel carrying C's messages between nodes
 *   P{C}:members      hash  connection id → user id as JSON (42, "42"; '' when anonymous): who is in C
 *   P{C}:users        hash  user id → number of its connections in C (presence, recipients_count)
 *   P{C}:history      stream of C's recent messages, entry ids `<offset>-0` (history-scripts.ts)
 *   P{C}:position     hash  epoch, offset: C's history epoch and last offset assigned
 *   Pnodes            hash  node id → JSON {pid, host, started}: the nodes of the cluster
 *   Pnode:{N}:alive   string with a TTL, refreshed while node N runs
 *   Pnode:{N}:members set of "C connection-id": N's memberships, to clean out N if it dies
 *   Pnode:{N}:cleanup lock held by the node that cleans out N
 *   Pnode:{N}:resync  flag: N's entries were (partly) removed while it was alive; N registers again
 *   Pcontrol          pub/sub channel of requests to every node (POST /api/disconnect, resync announcements)
 *   Preply:{N}        pub/sub channel of the answers to node N's requests
 */
import type { Cluster, Redis } from 'ioredis';
import type { ChannelName, UserId } from '../../types.js';
import { defineHistoryScripts, type HistoryCommands } from './history-scripts.js';

export class RedisKeys {
  constructor(readonly prefix: string) {}

  messages(channel: ChannelName): string {
    return `${this.prefix}{${channel}}:pub`;
  }

  members(channel: ChannelName): string {
    return `${this.prefix}{${channel}}:members`;
  }

  users(channel: ChannelName): string {
    return `${this.prefix}{${channel}}:users`;
  }

  history(channel: ChannelName): string {
    return `${this.prefix}{${channel}}:history`;
  }

  position(channel: ChannelName): string {
    return `${this.prefix}{${channel}}:position`;
  }

  get nodes(): string {
    return `${this.prefix}nodes`;
  }

  nodeAlive(nodeId: string): string {
    return `${this.prefix}node:{${nodeId}}:alive`;
  }

  nodeMembers(nodeId: string): string {
    return `${this.prefix}node:{${nodeId}}:members`;
  }

  nodeCleanup(nodeId: string): string {
    return `${this.prefix}node:{${nodeId}}:cleanup`;
  }

  nodeResync(nodeId: string): string {
    return `${this.prefix}node:{${nodeId}}:resync`;
  }

  get control(): string {
    return `${this.prefix}control`;
  }

  replies(nodeId: string): string {
    return `${this.prefix}reply:{${nodeId}}`;
  }
}

/** An entry of `Pnode:{N}:members`. Channel names have no spaces (SPEC §4), connection ids neither. */
export function nodeMemberEntry(channel: ChannelName, connectionId: string): string {
  return `${channel} ${connectionId}`;
}

export function parseNodeMemberEntry(entry: string): { channel: ChannelName; connectionId: string } | null {
  const space = entry.indexOf(' ');
  if (space <= 0) return null;
  return { channel: entry.slice(0, space), connectionId: entry.slice(space + 1) };
}

/**
 * A member's user id as the members hash holds it: JSON, so that a number and a string of
 * the same digits stay apart (42, "42"), and '' when anonymous (never valid JSON).
 */
export function encodeUserId(userId: UserId | null): string {
  return userId === null ? '' : JSON.stringify(userId);
}

/**
 * A members-hash value with the member's info (JSON text) after a tab: JSON never holds a raw
 * tab, so the user id's JSON ends where the tab is. Without info, encodeUserId's value.
 */
export function encodeMember(userId: UserId | null, info: string | null | undefined): string {
  const stored = encodeUserId(userId);
  return info === null || info === undefined ? stored : `${stored}\t${info}`;
}

/** The user id and info of a members-hash value (encodeMember; an older node's encodeUserId). */
export function decodeMember(stored: string): { userId: UserId | null; info: string | null } {
  const tab = stored.indexOf('\t');
  return tab === -1 ? { userId: decodeUserId(stored), info: null } : { userId: decodeUserId(stored.slice(0, tab)), info: stored.slice(tab + 1) };
}

/**
 * The user id of a members-hash value. A node of an older version wrote user ids as plain
 * strings: a value that is not JSON (or not a JSON string or number) is that string.
 */
export function decodeUserId(stored: string): UserId | null {
  if (stored === '') return null;
  try {
    const value: unknown = JSON.parse(stored);
    if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) return value;
  } catch {
    // an older node's plain string
  }
  return stored;
}

/**
 * The key of a members-hash value in the users hash: the user id as a string, which is
 * what `recipients` match (the member's info, after a tab, is not part of it). A JSON number's text is already JavaScript's String() of it;
 * a JSON string decodes to itself; an older node's plain string is its own key. Defined
 * in Lua so that a node cleaning out another (whatever format it wrote) counts its users
 * down exactly as they were counted up.
 */
const USER_KEY_LUA = `
local function userKey(stored)
  local tab = string.find(stored, '\t', 1, true)
  if tab then stored = string.sub(stored, 1, tab - 1) end
  if stored == '' then return nil end
  if string.sub(stored, 1, 1) == '"' then
    local ok, decoded = pcall(cjson.decode, stored)
    if ok and type(decoded) == 'string' then return decoded end
  end
  return stored
end`;

/**
 * Adds a member to a channel, or changes its user id. KEYS: members, users.
 * ARGV: connection id, user id as encodeUserId() gives it. Keeps `users` equal to the
 * count of each user's connections in `members`.
 */
export const JOIN_SCRIPT = `${USER_KEY_LUA}
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old == ARGV[2] then return 0 end
local oldKey = old and userKey(old)
if oldKey then
  if redis.call('HINCRBY', KEYS[2], oldKey, -1) <= 0 then redis.call('HDEL', KEYS[2], oldKey) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local newKey = userKey(ARGV[2])
if newKey then redis.call('HINCRBY', KEYS[2], newKey, 1) end
return 1`;

/**
 * Removes a member from a channel; a no-op when it is not there. KEYS: members, users.
 * ARGV: connection id. Returns the member's user id as the members hash held it ('' when
 * anonymous), or nil when it was not there: who removed it, and whom it was.
 */
export const LEAVE_SCRIPT = `${USER_KEY_LUA}
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return nil end
redis.call('HDEL', KEYS[1], ARGV[1])
local oldKey = userKey(old)
if oldKey then
  if redis.call('HINCRBY', KEYS[2], oldKey, -1) <= 0 then redis.call('HDEL', KEYS[2], oldKey) end
end
return old`;

/**
 * Publishes and counts in one round trip. KEYS: members, users. ARGV: pub/sub channel,
 * payload, then the recipients' user ids (none: every member counts). Returns the number
 * of connections the message is addressed to, cluster-wide.
 */
export const PUBLISH_SCRIPT = `
redis.call('PUBLISH', ARGV[1], ARGV[2])
if #ARGV == 2 then return redis.call('HLEN', KEYS[1]) end
local total = 0
for i = 3, #ARGV do
  local count = redis.call('HGET', KEYS[2], ARGV[i])
  if count then total = total + tonumber(count) end
end
return total`;

/**
 * Refreshes a node's liveness key. KEYS: alive, resync flag. ARGV: value, TTL in ms.
 * Returns 0 when the node must register everything again: its key had expired (others
 * may have cleaned it out) or a cleaner flagged it; 1 otherwise.
 */
export const HEARTBEAT_SCRIPT = `
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local flagged = redis.call('DEL', KEYS[2])
if existed == 1 and flagged == 0 then return 1 end
return 0`;

/**
 * Ends the cleanup of a dead node. KEYS: alive, members, resync flag. ARGV: flag TTL in ms.
 * When the node turned out to be alive after all, its entries may have been removed
 * under it: it is flagged to register again (0). Otherwise its index goes (1).
 */
export const FORGET_NODE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])
  return 0
end
redis.call('DEL', KEYS[2], KEYS[3])
return 1`;

/** A Redis server (or Sentinel's master) or a Redis Cluster, with the scripts above defined as commands. */
export type ScriptedRedis = (Redis | Cluster) & ScriptCommands & HistoryCommands;

interface ScriptCommands {
  switchboardJoin(members: string, users: string, connectionId: string, storedUserId: string): Promise<number>;
  /** The removed member's stored user id (decodeUserId), or null when it was not there. */
  switchboardLeave(members: string, users: string, connectionId: string): Promise<string | null>;
  switchboardPublish(members: string, users: string, pubChannel: string, payload: string | Buffer, ...recipients: string[]): Promise<number>;
  switchboardHeartbeat(alive: string, resyncFlag: string, value: string, ttlMs: number): Promise<number>;
  switchboardForgetNode(alive: string, members: string, resyncFlag: string, flagTtlMs: number): Promise<number>;
}

/**
 * Defines the scripts on a connection; ioredis sends each by its SHA and loads it when
 * Redis lacks it. On a Cluster the scripts publish with SPUBLISH: the message goes to
 * the shard of the channel's slot, which is the slot of every key the script touches.
 */
export function withScripts<R extends Redis | Cluster>(redis: R, sharded: boolean): R & ScriptCommands & HistoryCommands {
  const publishing = (lua: string): string => (sharded ? lua.replaceAll("redis.call('PUBLISH',", "redis.call('SPUBLISH',") : lua);
  redis.defineCommand('switchboardJoin', { numberOfKeys: 2, lua: JOIN_SCRIPT });
  redis.defineCommand('switchboardLeave', { numberOfKeys: 2, lua: LEAVE_SCRIPT });
  redis.defineCommand('switchboardPublish', { numberOfKeys: 2, lua: publishing(PUBLISH_SCRIPT) });
  redis.defineCommand('switchboardHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT_SCRIPT });
  redis.defineCommand('switchboardForgetNode', { numberOfKeys: 3, lua: FORGET_NODE_SCRIPT });
  defineHistoryScripts(redis, publishing);
  return redis as R & ScriptCommands & HistoryCommands;
}
