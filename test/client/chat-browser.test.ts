/**
 * The demo chat (examples/chat) in a real headless Chromium: two people in two browser
 * contexts sign in, talk, see each other online and typing, edit a message, and one of
 * them is cut off and comes back to every message missed, each exactly once, in order.
 * Then a server restart without Redis: the page says the server is out of reach, and
 * afterwards keeps what it showed above a line saying that the server lost it.
 * The page uses the real client (GET /client.js) against the real server. Every wait polls
 * the page's DOM with a generous timeout; nothing asserts on timing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { startChat, type Chat } from '../../examples/chat/server.mjs';
import { closeBrowser, openPage } from '../helpers/browser.js';
import { TestClient } from '../helpers/client.js';
import { refusedHandshake } from '../helpers/http.js';

/** The little of the DOM the functions run in the page use: the project compiles without lib "dom". */
interface PageElement {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  querySelector(selector: string): PageElement | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
};
declare function getComputedStyle(element: PageElement): { opacity: string };

const API_KEY = `test-key-${randomBytes(16).toString('hex')}`;
/** For things that must happen, on a noisy machine: long, and never what the test measures. */
const GENEROUS_MS = 20_000;
const WAIT = { timeout: GENEROUS_MS, polling: 100 } as const;

const STATE = '[data-testid="state"]';
const INPUT = '[data-testid="message-input"]';

let chat: Chat | null = null;

before(async () => {
  chat = await startChat({ port: 0, apiKey: API_KEY });
});

after(async () => {
  await closeBrowser();
  await chat?.close();
});

function chatUrl(): string {
  assert.ok(chat !== null, 'the chat started');
  return chat.url;
}

async function signIn(page: Page, name: string, url = chatUrl()): Promise<void> {
  const response = await page.goto(url);
  assert.equal(response?.status(), 200);
  await page.fill('[data-testid="login-input"]', name);
  await page.click('[data-testid="login-button"]');
  await page.waitForSelector(`${STATE}[data-state="connected"]`, { timeout: GENEROUS_MS });
}

async function enterRoom(page: Page, room: string): Promise<void> {
  await page.click(`[data-testid="room-${room}"]`);
  await page.waitForSelector(`[data-testid="room-${room}"][aria-current="true"]`, { timeout: GENEROUS_MS });
}

/** Waits until `user` is listed online on `page`. */
async function waitForMember(page: Page, user: string): Promise<void> {
  await page.waitForSelector(`[data-testid="presence-item"][data-user="${user}"]`, { timeout: GENEROUS_MS });
}

/** The messages on screen, top to bottom. */
function shownMessages(page: Page): Promise<Array<{ offset: number; user: string; text: string; edited: boolean }>> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll('[data-testid="message"]'), (item) => ({
      offset: Number(item.dataset.offset),
      user: item.dataset.user ?? '',
      text: item.querySelector('[data-testid="message-text"]')?.textContent ?? '',
      edited: item.querySelector('[data-testid="edited"]') !== null,
    })),
  );
}

/** Waits until a message by `user` reads `text`; resolves with its offset. */
async function waitForMessage(page: Page, user: string, text: string): Promise<number> {
  try {
    const handle = await page.waitForFunction(
      ([user, text]) => {
        for (const item of Array.from(document.querySelectorAll(`[data-testid="message"][data-user="${user}"]`))) {
          if (item.querySelector('[data-testid="message-text"]')?.textContent === text) return Number(item.dataset.offset);
        }
        return false;
      },
      [user, text] as const,
      WAIT,
    );
    return (await handle.jsonValue()) as number;
  } catch (error) {
    throw new Error(`no message by ${user} reading ${JSON.stringify(text)}; shown: ${JSON.stringify(await shownMessages(page))}`, { cause: error });
  }
}

async function send(page: Page, text: string): Promise<void> {
  await page.fill(INPUT, text);
  await page.press(INPUT, 'Enter');
}

function assertInOrderOnce(messages: ReadonlyArray<{ offset: number }>, who: string): void {
  const offsets = messages.map((message) => message.offset);
  for (let index = 1; index < offsets.length; index++) {
    assert.ok((offsets[index] as number) > (offsets[index - 1] as number), `${who} shows offsets in order, each once: ${offsets.join(', ')}`);
  }
}

test('alice and bob chat: presence, typing, an edit, and bob cut off comes back to every message once, in order', async (t) => {
  const alice = await openPage(t);
  if (!alice) return;
  const bob = await openPage(t);
  if (!bob) return;

  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  // Both start in #general; bob goes elsewhere and back, which unsubscribes and subscribes again.
  await enterRoom(alice, 'general');
  await enterRoom(bob, 'random');
  await enterRoom(bob, 'general');

  await waitForMember(alice, 'bob');
  await waitForMember(bob, 'alice');
  await waitForMember(alice, 'alice');
  await waitForMember(bob, 'bob');
  assert.equal(await bob.locator('[data-testid="presence-item"]').count(), 2, 'bob sees two people online');
  assert.equal(await bob.textContent('[data-testid="presence-room"]'), '#general', 'the list is of the room on screen');

  // Typing: one keystroke's worth of input tells bob, before anything is sent.
  await alice.fill(INPUT, 'hello bob');
  await bob.waitForFunction(() => document.querySelector('[data-testid="typing"]')?.textContent === 'alice is typing…', null, WAIT);
  await alice.press(INPUT, 'Enter');
  const first = await waitForMessage(bob, 'alice', 'hello bob');
  assert.equal(await waitForMessage(alice, 'alice', 'hello bob'), first, 'both see it at the same offset');

  // Her last message has an Edit button that shows without hovering; bob's page has none.
  const editButton = '[data-testid="edit-button"]';
  const opacity = await alice.$eval(editButton, (button) => Number(getComputedStyle(button as PageElement).opacity));
  assert.ok(opacity >= 0.5, `the Edit button is visible without hover (opacity ${opacity})`);
  assert.equal(await bob.locator(editButton).count(), 0);

  // Edit: ArrowUp in the empty input takes alice's last message back into it.
  await alice.press(INPUT, 'ArrowUp');
  await alice.waitForSelector('[data-testid="edit-banner"]', { state: 'visible', timeout: GENEROUS_MS });
  assert.equal(await alice.inputValue(INPUT), 'hello bob');
  assert.equal(await alice.textContent('[data-testid="send-button"]'), 'Save');
  await alice.fill(INPUT, 'hello bob, how are you?');
  await alice.press(INPUT, 'Enter');
  assert.equal(await waitForMessage(bob, 'alice', 'hello bob, how are you?'), first, 'the edit changed the message in place');
  // A "typing" sent while editing would have come before the edit, over the same socket.
  assert.equal(await bob.textContent('[data-testid="typing"]'), '', 'editing is not typing');
  await bob.waitForSelector(`[data-testid="message"][data-offset="${first}"] [data-testid="edited"]`, { timeout: GENEROUS_MS });
  await alice.waitForSelector('[data-testid="edit-banner"]', { state: 'hidden', timeout: GENEROUS_MS });
  assert.equal(await alice.textContent('[data-testid="send-button"]'), 'Send');
  assert.deepEqual(
    (await shownMessages(bob)).map(({ offset, text, edited }) => ({ offset, text, edited })),
    [{ offset: first, text: 'hello bob, how are you?', edited: true }],
    'the edit is not a line of its own',
  );

  // Cut bob off. His page asks /token before reconnecting; holding that request keeps him
  // away for certain while alice writes.
  let letBobBackIn = (): void => {};
  const bobMayReconnect = new Promise<void>((resolve) => (letBobBackIn = resolve));
  t.after(() => letBobBackIn());
  await bob.route('**/token', async (route) => {
    await bobMayReconnect;
    await route.continue();
  });
  const cut = await fetch(`${chatUrl()}/api/disconnect`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user_id: 'bob' }),
  });
  assert.equal(cut.status, 200);
  assert.deepEqual(await cut.json(), { success: true, disconnected: 1 });
  await bob.waitForSelector(`${STATE}:not([data-state="connected"])`, { timeout: GENEROUS_MS });
  await bob.waitForSelector('[data-testid="presence-list"].stale', { timeout: GENEROUS_MS });
  await alice.waitForSelector('[data-testid="presence-item"][data-user="bob"]', { state: 'detached', timeout: GENEROUS_MS });

  const missed = ['are you there?', 'guess not', 'talk later'];
  for (const text of missed) {
    await send(alice, text);
    await waitForMessage(alice, 'alice', text);
  }
  assert.notEqual(await bob.getAttribute(STATE, 'data-state'), 'connected', 'bob was away while alice wrote');

  letBobBackIn();
  await bob.waitForSelector(`${STATE}[data-state="connected"][data-connections="2"]`, { timeout: GENEROUS_MS });
  for (const text of missed) await waitForMessage(bob, 'alice', text);
  assert.equal(await bob.locator('[data-testid="presence-list"].stale').count(), 0, 'connected again: the list is not greyed out');
  await waitForMember(alice, 'bob');
  await waitForMember(bob, 'alice');

  // Bob can write again, and one more message after the replay: a duplicate would have come before it.
  await send(bob, 'sorry, back now');
  await waitForMessage(alice, 'bob', 'sorry, back now');
  await send(alice, 'welcome back');
  await waitForMessage(bob, 'alice', 'welcome back');
  // Alice's own copy comes over her own socket, maybe after bob's: wait for it before comparing.
  await waitForMessage(alice, 'alice', 'welcome back');
  const seenByBob = await shownMessages(bob);
  assertInOrderOnce(seenByBob, 'bob');
  assert.deepEqual(
    seenByBob.map((message) => message.text),
    ['hello bob, how are you?', ...missed, 'sorry, back now', 'welcome back'],
  );
  assert.deepEqual(
    seenByBob.map((message) => message.offset),
    (await shownMessages(alice)).map((message) => message.offset),
    'bob and alice show the same messages at the same offsets',
  );

  // Back from another room the page starts over from the history: the same lines, the edit applied, none twice.
  await enterRoom(bob, 'random');
  await bob.waitForSelector('[data-testid="message"]', { state: 'detached', timeout: GENEROUS_MS });
  await enterRoom(bob, 'general');
  await waitForMessage(bob, 'alice', 'welcome back');
  assert.deepEqual(await shownMessages(bob), seenByBob, 'the history shows what bob saw live');

  const screenshot = process.env.CHAT_SCREENSHOT ?? join(mkdtempSync(join(tmpdir(), 'chat-')), 'bob.png');
  await bob.screenshot({ path: screenshot });
  t.diagnostic(`screenshot of bob's page: ${screenshot}`);
});

/** A token from the chat's development endpoint, as the page gets one. */
async function tokenFor(name: string): Promise<string> {
  const response = await fetch(`${chatUrl()}/token`, { method: 'POST', body: JSON.stringify({ name }) });
  assert.equal(response.status, 200);
  return ((await response.json()) as { token: string }).token;
}

async function connectAs(t: TestContext, name: string): Promise<TestClient> {
  const client = await TestClient.connect(`${chatUrl().replace(/^http/, 'ws')}/ws`, { headers: { Authorization: `Bearer ${await tokenFor(name)}` } });
  t.after(() => client.close());
  return client;
}

test('the server refuses what the page never sends: bad names, anonymous sockets, other rooms, forged and foreign edits', async (t) => {
  for (const name of ['', 'a b', 'x'.repeat(25), '<b>']) {
    const response = await fetch(`${chatUrl()}/token`, { method: 'POST', body: JSON.stringify({ name }) });
    assert.equal(response.status, 400, `name ${JSON.stringify(name)}`);
  }
  assert.equal((await refusedHandshake(`${chatUrl().replace(/^http/, 'ws')}/ws`)).status, 401, 'no anonymous connections');

  const carol = await connectAs(t, 'carol');
  const dave = await connectAs(t, 'dave');
  const room = 'chat.room.help';
  assert.equal((await carol.subscribe('news')).code, 'FORBIDDEN', 'only chat rooms exist');
  assert.equal((await carol.subscribe(room)).success, true);
  assert.equal((await dave.subscribe(room)).success, true);
  const sent = await carol.publish(room, { type: 'text', text: 'hi' });
  const offset = sent.offset as number;
  assert.equal(typeof offset, 'number');

  assert.equal((await carol.publish(room, { type: 'edit', offset, text: 'forged', user: 'carol' })).code, 'FORBIDDEN', 'edits come from the server only');
  assert.equal((await carol.publish(room, { type: 'text', text: 'hi', extra: 1 })).code, 'FORBIDDEN');
  assert.equal((await dave.request('edit', { channel: room, offset, text: 'mine now' })).code, 'FORBIDDEN', "dave cannot edit carol's message");
  assert.equal((await carol.request('edit', { channel: room, offset: offset + 100, text: 'x' })).code, 'INVALID_MESSAGE', 'no message there');
  assert.equal((await carol.request('edit', { channel: 'chat.room.random', offset, text: 'x' })).code, 'NOT_SUBSCRIBED');
  assert.equal((await carol.request('edit', { channel: 'news', offset, text: 'x' })).code, 'INVALID_CHANNEL');
  assert.equal((await carol.request('edit', { channel: room, offset, text: '' })).code, 'INVALID_MESSAGE');

  const edited = await carol.request('edit', { channel: room, offset, text: 'hi there' });
  assert.deepEqual(edited.data, { edited: offset });
  const edit = await dave.next((frame) => frame.action === 'message' && (frame.message as { type?: string }).type === 'edit');
  assert.deepEqual(edit.message, { type: 'edit', offset, text: 'hi there', user: 'carol' });
  assert.equal(edit.sender, null, 'published by the server');
});

test('a restart without Redis: "server unreachable" once, then the old messages above a line saying the server lost them', async (t) => {
  const page = await openPage(t);
  if (!page) return;
  // A server of its own, to restart on the same port; memory history, as without Redis.
  let own = await startChat({ port: 0 });
  t.after(() => own.close());
  const url = own.url;
  await signIn(page, 'erin', url);
  await send(page, 'before the restart');
  await waitForMessage(page, 'erin', 'before the restart');

  await own.close();
  await page.waitForSelector(`${STATE}:not([data-state="connected"])`, { timeout: GENEROUS_MS });
  // Every retry fails to get a token: one plain notice, not the client's errors.
  await page.waitForFunction(() => document.querySelector('[data-testid="notice"]')?.textContent === 'Server unreachable — reconnecting…', null, WAIT);

  own = await startChat({ port: Number(new URL(url).port) });
  await page.waitForSelector(`${STATE}[data-state="connected"][data-connections="2"]`, { timeout: GENEROUS_MS });
  await page.waitForSelector('[data-testid="history-lost"]', { timeout: GENEROUS_MS });
  await page.waitForSelector('[data-testid="notice"]', { state: 'hidden', timeout: GENEROUS_MS });
  await send(page, 'after the restart');
  await waitForMessage(page, 'erin', 'after the restart');
  const lines = await page.evaluate(() =>
    Array.from(document.querySelectorAll('[data-testid="message-list"] > li'), (item) => [item.dataset.testid, item.querySelector('[data-testid="message-text"]')?.textContent ?? '']),
  );
  assert.deepEqual(lines, [
    ['earlier-message', 'before the restart'],
    ['history-lost', ''],
    ['message', 'after the restart'],
  ]);
  assert.match(await page.textContent('[data-testid="history-lost"]') ?? '', /lost the earlier history/);
});
