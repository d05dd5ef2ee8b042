/**
 * The chat page: sign in with a name, talk in three rooms, see who is online and who is
 * typing, edit your last message, and ride out disconnections. Switchboard's client does
 * the hard part (reconnect, resubscribe, replay what was missed); room.js keeps what the
 * page knows of the room, and this file connects the two and draws it.
 */
import { Client } from '/client.js';
import { byId, clock, element, noticeLine } from './dom.js';
import { applyPresence, createRoom, keepMessage, lastMessageOf, membersInOrder, messagesInOrder, resetMembers, startOver } from './room.js';

const HISTORY_PAGE = 50;
const TYPING_SHOWN_MS = 3000;
const TYPING_SENT_EVERY_MS = 2000;
const NOTICE_SHOWN_MS = 6000;
const UNREACHABLE = 'Server unreachable — reconnecting…';
const HISTORY_LOST = 'The server lost the earlier history of this room (it restarted without Redis, or Redis lost its data). Newer messages follow.';

const ui = {
  loginForm: byId('login-form'),
  loginName: byId('login-name'),
  loginError: byId('login-error'),
  chat: byId('chat'),
  me: byId('me'),
  state: byId('state'),
  rooms: byId('rooms'),
  roomTitle: byId('room-title'),
  presenceRoom: byId('presence-room'),
  onlineCount: byId('online-count'),
  presence: byId('presence'),
  messages: byId('messages'),
  typing: byId('typing'),
  notice: byId('notice'),
  composer: byId('composer'),
  input: byId('message-input'),
  send: byId('send-button'),
  editBanner: byId('edit-banner'),
  cancelEdit: byId('cancel-edit'),
};

/** @type {Client | null} */
let client = null;
/** Our name, which the token carries as user_id. */
let me = null;
/**
 * The room on screen. A fresh object per visit: callbacks of a room we left compare theirs
 * with this one and drop what they bring.
 */
let room = null;
/** The offset of the message being edited, or null. */
let editing = null;
let lastTypingSent = 0;
/** How many times the connection came up; on the badge, so that one can tell a reconnect happened. */
let connections = 0;
const notice = noticeLine(ui.notice, NOTICE_SHOWN_MS);
/** Whether the last token request failed for want of an answer, rather than with one. */
let tokenUnanswered = false;

// ---- signing in ---------------------------------------------------------------------------

/** A fresh token for `name`: the client asks for one at every (re)connect, so an expired one is never reused. */
async function fetchToken(name) {
  // Until an answer comes: a fetch that fails before one means the server is out of reach.
  tokenUnanswered = true;
  const response = await fetch('/token', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) });
  tokenUnanswered = false;
  const body = await response.json().catch(() => ({}));
  if (!response.ok || typeof body.token !== 'string') throw new Error(body.error ?? `the token endpoint answered ${response.status}`);
  return body.token;
}

ui.loginForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = ui.loginName.value.trim();
  ui.loginError.textContent = '';
  // Asking once here tells a bad name apart from a connection problem, before any socket is opened.
  fetchToken(name).then(
    () => signIn(name),
    (error) => {
      ui.loginError.textContent = error.message;
    },
  );
});

function signIn(name) {
  me = name;
  ui.loginForm.hidden = true;
  ui.chat.hidden = false;
  ui.me.hidden = false;
  ui.me.textContent = name;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  client = new Client(`${scheme}//${location.host}/ws`, { token: () => fetchToken(me) });
  client.on('state', showState);
  client.on('error', onClientError);
  showState(client.state);
  enterRoom('general');
  ui.input.focus();
}

function showState(state) {
  if (state === 'connected') {
    connections += 1;
    notice.persist(null);
  }
  ui.state.textContent = state;
  ui.state.dataset.state = state;
  ui.state.dataset.connections = String(connections);
  // Who is online is only known while connected: greyed out, it is what was last known.
  ui.presence.classList.toggle('stale', state !== 'connected');
  ui.presence.title = state === 'connected' ? '' : 'Not connected: who was online when last connected';
}

/**
 * While the server cannot be reached, every retry fails to get a token (or to send): one
 * notice says so instead, until connected again. A token endpoint that answered with an
 * error is another matter, and other errors are shown as they are.
 */
function onClientError(error) {
  const lostTouch = (error.code === 'TOKEN' && tokenUnanswered) || error.code === 'DISCONNECTED';
  // Shown once, whatever the number of retries; cleared when connected again.
  if (lostTouch && client?.state !== 'connected') notice.persist(UNREACHABLE);
  else notice.show(describe(error));
}

/** An error as `CODE: message`, readable for a person. */
function describe(error) {
  return error.code === undefined ? error.message : `${error.code}: ${error.message}`;
}

// ---- rooms --------------------------------------------------------------------------------

ui.rooms.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-room]');
  if (button !== null && client !== null) enterRoom(button.dataset.room);
});

function enterRoom(name) {
  if (room?.name === name) return;
  if (room !== null) leaveRoom();
  const subscription = client.subscribe(`chat.room.${name}`);
  const current = createRoom(name, subscription);
  room = current;
  // Every callback checks that its room is still the one on screen.
  const live = (fn) => (event) => {
    if (room === current) fn(current, event);
  };
  subscription.on('subscribed', live(onSubscribed));
  subscription.on('message', live(onMessage));
  subscription.on('join', live((state, event) => onPresenceEvent(state, 'join', event)));
  subscription.on('leave', live((state, event) => onPresenceEvent(state, 'leave', event)));
  subscription.on('error', live((_state, error) => notice.show(`left #${name}: ${describe(error)}`)));
  for (const button of ui.rooms.querySelectorAll('button[data-room]')) {
    button.setAttribute('aria-current', String(button.dataset.room === name));
  }
  ui.roomTitle.textContent = `#${name}`;
  ui.presenceRoom.textContent = `#${name}`;
  renderAll();
}

function leaveRoom() {
  for (const timer of room.typing.values()) clearTimeout(timer);
  room.subscription.unsubscribe();
  room = null;
  stopEditing();
}

/**
 * After every (re)subscribe. Unless everything missed is being replayed, reload the room.
 * When the server's history is another one than before (it restarted without Redis), what
 * we held stays on screen above a line saying the server lost it.
 */
function onSubscribed(current, { recovered, epoch }) {
  if (recovered !== true) {
    // An edit in progress would name an offset of the lost history: keep the text, as a new message.
    if (startOver(current, epoch)) stopEditing(true);
    renderMessages();
    loadHistory(current);
  }
  // Members may have come and gone while we were away: ask again, every time.
  loadPresence(current);
}

async function loadHistory(current) {
  // A newer load (after another recovered:false) supersedes this one, whose page may be of a lost history.
  const load = ++current.historyLoads;
  try {
    const page = await current.subscription.history({ limit: HISTORY_PAGE });
    if (room !== current || load !== current.historyLoads) return;
    current.epoch ??= page.epoch;
    // Live messages may already be in: the map keeps one of each.
    for (const message of page.messages) keepMessage(current, message);
    renderMessages();
  } catch (error) {
    if (room === current) notice.show(`could not load the history: ${describe(error)}`);
  }
}

// ---- messages -----------------------------------------------------------------------------

function onMessage(current, frame) {
  if (frame.message?.type === 'typing') {
    if (String(frame.user_id) !== me) showTyping(current, String(frame.user_id));
    return;
  }
  const change = keepMessage(current, frame);
  // Their message is what they were typing.
  if (change === 'text') hideTyping(current, String(frame.user_id));
  if (change !== null) renderMessages();
}

ui.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  if (room === null) return;
  const text = ui.input.value.trim();
  if (text === '') return;
  if (editing !== null) {
    saveEdit(editing, text);
    return;
  }
  ui.input.value = '';
  // The next keystroke may say "typing" again at once: this message cleared it for the others.
  lastTypingSent = 0;
  room.subscription.publish({ type: 'text', text }).catch((error) => {
    // Give the text back rather than lose it (publishing fails at once while disconnected).
    if (ui.input.value === '') ui.input.value = text;
    if (error.code === 'DISCONNECTED') notice.show('not sent: not connected (your text is back in the box)');
    else notice.show(`not sent: ${describe(error)}`);
  });
});

ui.input.addEventListener('keydown', (event) => {
  if (event.key === 'ArrowUp' && ui.input.value === '' && editing === null) {
    const last = lastMessageOf(room, me);
    if (last !== null) {
      event.preventDefault();
      startEditing(last);
    }
  } else if (event.key === 'Escape' && editing !== null) {
    event.preventDefault();
    stopEditing();
  }
});

ui.messages.addEventListener('click', (event) => {
  if (event.target.closest('button[data-action="edit"]') === null) return;
  const last = lastMessageOf(room, me);
  if (last !== null) startEditing(last);
});

ui.cancelEdit.addEventListener('click', () => stopEditing());

function startEditing(message) {
  editing = message.offset;
  ui.input.value = message.text;
  ui.editBanner.hidden = false;
  ui.composer.classList.add('editing');
  ui.send.textContent = 'Save';
  ui.input.focus();
}

function stopEditing(keepText = false) {
  if (editing === null) return;
  editing = null;
  if (!keepText) ui.input.value = '';
  ui.editBanner.hidden = true;
  ui.composer.classList.remove('editing');
  ui.send.textContent = 'Send';
}

function saveEdit(offset, text) {
  const current = room;
  if (text === (current.edits.get(offset)?.text ?? current.messages.get(offset)?.text)) {
    stopEditing();
    return;
  }
  // The edit shows when the server publishes it to the room, for us as for everyone else.
  client.request('edit', { channel: current.subscription.channel, offset, text }).then(
    () => {
      if (room === current && editing === offset) stopEditing();
    },
    (error) => notice.show(`not edited: ${describe(error)}`),
  );
}

// ---- typing -------------------------------------------------------------------------------

ui.input.addEventListener('input', () => {
  // Editing an old message is not typing a new one: the others hear nothing of it.
  if (room === null || editing !== null || client?.state !== 'connected' || ui.input.value.trim() === '') return;
  const now = Date.now();
  if (now - lastTypingSent < TYPING_SENT_EVERY_MS) return;
  lastTypingSent = now;
  // Ephemeral: delivered live, never kept or replayed. A lost one costs nothing.
  room.subscription.publish({ type: 'typing' }, { ephemeral: true }).catch(() => {});
});

function showTyping(current, user) {
  clearTimeout(current.typing.get(user));
  current.typing.set(
    user,
    setTimeout(() => hideTyping(current, user), TYPING_SHOWN_MS),
  );
  renderTyping();
}

function hideTyping(current, user) {
  if (!current.typing.has(user)) return;
  clearTimeout(current.typing.get(user));
  current.typing.delete(user);
  if (room === current) renderTyping();
}

// ---- presence -----------------------------------------------------------------------------

async function loadPresence(current) {
  // Join and leave events from now on are noted, to be replayed over the answer.
  const log = [];
  current.presenceLog = log;
  try {
    const { members } = await current.subscription.presence();
    if (room !== current || current.presenceLog !== log) return;
    resetMembers(current, members, log);
    renderPresence();
  } catch (error) {
    if (room === current) notice.show(`could not load who is online: ${describe(error)}`);
  } finally {
    if (current.presenceLog === log) current.presenceLog = null;
  }
}

function onPresenceEvent(current, kind, event) {
  current.presenceLog?.push([kind, event]);
  const user = applyPresence(current, kind, event);
  // Gone means no longer typing, whatever the last "typing" said.
  if (!current.members.has(user)) hideTyping(current, user);
  renderPresence();
}

// ---- drawing ------------------------------------------------------------------------------

function renderAll() {
  renderMessages();
  renderPresence();
  renderTyping();
}

function renderMessages() {
  const list = ui.messages;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const own = lastMessageOf(room, me);
  // Messages of a lost history first, each loss followed by a line saying so; they cannot be edited.
  const earlier = room.earlier.flatMap((messages) => [
    ...messages.map((message) => messageItem(message, null, 'earlier-message')),
    element('li', { className: 'history-lost', text: HISTORY_LOST, testid: 'history-lost' }),
  ]);
  const items = messagesInOrder(room).map((message) => messageItem(message, own, 'message'));
  list.replaceChildren(...earlier, ...items);
  if (items.length === 0 && earlier.length === 0) list.append(element('li', { className: 'empty', text: 'No messages yet. Say hello!' }));
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function messageItem(message, own, testid) {
  const item = element('li', { className: `message${message.user === me ? ' mine' : ''}${testid === 'message' ? '' : ' earlier'}` });
  Object.assign(item.dataset, { testid, offset: String(message.offset), user: message.user });
  const meta = element('div', { className: 'meta' });
  meta.append(element('span', { className: 'author', text: message.user }), element('time', { text: clock(message.time) }));
  if (message.edited) meta.append(element('span', { className: 'edited', text: '(edited)', testid: 'edited' }));
  if (own !== null && own.offset === message.offset) {
    const button = element('button', { className: 'edit', text: 'Edit', testid: 'edit-button' });
    Object.assign(button, { type: 'button', title: 'Edit your last message (↑)' });
    button.dataset.action = 'edit';
    meta.append(button);
  }
  item.append(meta, element('div', { className: 'text', text: message.text, testid: 'message-text' }));
  return item;
}

function renderPresence() {
  const members = membersInOrder(room);
  ui.onlineCount.textContent = String(members.length);
  ui.presence.replaceChildren(
    ...members.map(({ user, connections: tabs }) => {
      const item = element('li', { className: user === me ? 'member me' : 'member', text: user === me ? `${user} (you)` : user, testid: 'presence-item' });
      item.dataset.user = user;
      item.dataset.connections = String(tabs);
      if (tabs > 1) item.append(element('span', { className: 'tabs', text: `×${tabs}`, title: `${tabs} connections` }));
      return item;
    }),
  );
}

function renderTyping() {
  const users = [...room.typing.keys()];
  ui.typing.textContent = users.length === 0 ? '' : `${users.join(', ')} ${users.length === 1 ? 'is' : 'are'} typing…`;
}
