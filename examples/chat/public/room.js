/**
 * What the page knows of one room, and the rules for changing it: no DOM here. Messages
 * are kept by offset, so that live ones, replayed ones and history pages can arrive in any
 * order and overlap, and each is still shown once, in order.
 */

/** A fresh state for a visit to `name` through `subscription`. */
export function createRoom(name, subscription) {
  return {
    name,
    subscription,
    /** offset -> { offset, user, text, time }: the one place a message lives. */
    messages: new Map(),
    /** target offset -> { at, text }: the latest edit of each message (`at`: the edit's own offset). */
    edits: new Map(),
    /** user_id -> Set of connection ids: one line per person, however many tabs. */
    members: new Map(),
    /** Presence events seen while a presence() answer is on its way, to replay over it; null otherwise. */
    presenceLog: null,
    /** The epoch of the server's history of the room, as the last subscribe said. */
    epoch: undefined,
    /**
     * Messages of histories the server lost (another epoch: it restarted without Redis),
     * oldest first, one array per loss; still shown, above a line saying so.
     */
    earlier: [],
    /** Counts history loads: only the latest one's answer is used. */
    historyLoads: 0,
    /** user_id -> timer hiding their "typing…". */
    typing: new Map(),
  };
}

/**
 * After a subscribe that does not replay everything missed: the messages are forgotten, to
 * be reloaded from the server. Returns true when the server's history is another one (a
 * new epoch) than the one the messages held came from: those are then set aside in
 * `earlier`, since the server no longer has them. In the same epoch (only too many
 * missed) the reload brings them back.
 */
export function startOver(room, epoch) {
  const lost = room.messages.size > 0 && room.epoch !== undefined && epoch !== undefined && epoch !== room.epoch;
  if (lost) room.earlier.push(messagesInOrder(room));
  if (epoch !== undefined) room.epoch = epoch;
  room.messages.clear();
  room.edits.clear();
  return lost;
}

/**
 * Adds a delivered or stored message. Returns what changed: 'text' (a new message),
 * 'edit', or null (a duplicate, or nothing to keep).
 */
export function keepMessage(room, frame) {
  const { message, offset } = frame;
  // Everything worth keeping has an offset; without one it was sent live only.
  if (typeof offset !== 'number') return null;
  // Edits come from the server alone (sender null), which checked that the editor wrote the message.
  if (message?.type === 'edit' && frame.sender === null) {
    const latest = room.edits.get(message.offset);
    // History and live delivery may bring edits out of order: the newest one wins.
    if (latest !== undefined && latest.at >= offset) return null;
    room.edits.set(message.offset, { at: offset, text: message.text });
    return 'edit';
  }
  if (message?.type !== 'text' || room.messages.has(offset)) return null;
  room.messages.set(offset, { offset, user: String(frame.user_id), text: message.text, time: frame.time });
  return 'text';
}

/** The messages, oldest first, each with its current text and whether it was edited. */
export function messagesInOrder(room) {
  return [...room.messages.values()]
    .sort((a, b) => a.offset - b.offset)
    .map((message) => {
      const edit = room.edits.get(message.offset);
      return { ...message, text: edit?.text ?? message.text, edited: edit !== undefined };
    });
}

/** `user`'s newest message in the room, with its current text; null when they wrote none. */
export function lastMessageOf(room, user) {
  let last = null;
  for (const message of room.messages.values()) {
    if (message.user === user && (last === null || message.offset > last.offset)) last = message;
  }
  return last === null ? null : { ...last, text: room.edits.get(last.offset)?.text ?? last.text };
}

/** Replaces the members with a presence() answer, then replays `log`, the events seen while it was coming. */
export function resetMembers(room, members, log) {
  room.members = new Map();
  for (const member of members) addMember(room, member);
  // The events may be newer than the answer; replaying older ones in order changes nothing.
  for (const [kind, event] of log) applyPresence(room, kind, event);
}

/** A join or leave event; returns the user it was about. */
export function applyPresence(room, kind, event) {
  if (kind === 'join') addMember(room, event);
  else removeMember(room, event);
  return String(event.user_id);
}

function addMember(room, { connection_id: connectionId, user_id: userId }) {
  // Nobody here is anonymous (the server wants a token), but a member without an id is no one to list.
  if (userId === null || userId === undefined) return;
  const user = String(userId);
  if (!room.members.has(user)) room.members.set(user, new Set());
  room.members.get(user).add(connectionId);
}

function removeMember(room, { connection_id: connectionId, user_id: userId }) {
  const user = String(userId);
  const connectionIds = room.members.get(user);
  if (connectionIds === undefined) return;
  connectionIds.delete(connectionId);
  if (connectionIds.size === 0) room.members.delete(user);
}

/** Who is online, by name, with how many connections each. */
export function membersInOrder(room) {
  return [...room.members.entries()].map(([user, connectionIds]) => ({ user, connections: connectionIds.size })).sort((a, b) => a.user.localeCompare(b.user));
}
