/**
 * The connection to a Switchboard server, kept up: it connects, authenticates with the token,
 * answers the server's pings, notices a server gone silent, reconnects with backoff after any
 * close it did not ask for, subscribes again to every channel (recovering what was missed),
 * renews the token before it expires, and matches requests to their replies.
 */
import { backoffDelay } from './backoff.js';
import { Emitter } from './emitter.js';
import { SwitchboardError } from './errors.js';
import { errorOf, Requests } from './requests.js';
import { Subscription, type Link } from './subscription.js';
import { tokenExpiry } from './token.js';
import type { ClientEvents, ClientOptions, Frame, State, UserId, WebSocketConstructor, WebSocketLike, Welcome } from './types.js';

/** A connection that lived this long (ms) was a success: the backoff starts over after it. */
const STABLE = 5000;
/** The longest delay setTimeout takes (ms); a longer one fires at once. */
const MAX_TIMER = 2 ** 31 - 1;

export class Client extends Emitter<ClientEvents> implements Link {
  state: State = 'disconnected';
  /** This connection's id on the server (from its welcome); null while not connected. */
  connectionId: string | null = null;
  /** The user the server authenticated (null: anonymous). */
  userId: UserId = null;
  private _subscriptions = new Map<string, Subscription>();
  private _requests: Requests;
  private _socket: WebSocketLike | null = null;
  /** The token the current connection was opened with. */
  private _token: string | null = null;
  /** Counts connection attempts: a stale one (closed meanwhile) gives up. */
  private _attempts = 0;
  /** Failed attempts in a row, for the backoff. */
  private _failures = 0;
  /** Handshakes refused with 401 in a row. */
  private _refused = 0;
  private _openedAt = 0;
  /** How long the server may stay silent (ms) before the connection is taken for dead. */
  private _silence: number;
  private _lastFrame = 0;
  private _watchdog?: ReturnType<typeof setTimeout>;
  private _reconnect?: ReturnType<typeof setTimeout>;
  private _renewal?: ReturnType<typeof setTimeout>;

  constructor(
    private _url: string,
    private _options: ClientOptions = {},
  ) {
    super();
    this._silence = _options.requestTimeout ?? 10_000;
    this._requests = new Requests(this._silence);
    if (_options.autoConnect !== false) this.connect();
  }

  /** Connects now (it does at construction unless `autoConnect: false`), also after `close()`. */
  connect(): void {
    if (this.state === 'connecting' || this.state === 'connected') return;
    clearTimeout(this._reconnect);
    void this._open();
  }

  /** Closes the connection for good: no reconnect after this (until `connect()`). */
  close(): void {
    this._attempts++;
    clearTimeout(this._reconnect);
    this._drop(1000, 'closed by the client');
    this._shut(new SwitchboardError('CLOSED', 'the client was closed'));
  }

  /** Follows a channel: subscribes now, or as soon as connected, and again after every reconnect. */
  subscribe(channel: string): Subscription {
    let subscription = this._subscriptions.get(channel);
    if (subscription === undefined) {
      subscription = new Subscription(this, channel);
      this._subscriptions.set(channel, subscription);
      if (this.state === 'connected') subscription._subscribe();
    }
    return subscription;
  }

  /** The subscription to `channel`, if the client follows it. */
  subscription(channel: string): Subscription | undefined {
    return this._subscriptions.get(channel);
  }

  /** A custom action (the server's `onAction`): resolves with the reply's `data`. */
  async request<T = unknown>(action: string, data?: unknown): Promise<T> {
    return (await this._call(action, data)).data as T;
  }

  /** @internal */
  _call(action: string, data?: unknown): Promise<Frame> {
    return new Promise((resolve, reject) => this._send(action, data, (error, frame) => (error === null ? resolve(frame as Frame) : reject(error))));
  }

  /** @internal Sends a frame; with `done`, as a request matched to its reply. Refused at once while not connected. */
  _send(action: string, data?: unknown, done?: (error: SwitchboardError | null, frame?: Frame) => void): void {
    const socket = this._socket;
    if (this.state !== 'connected' || socket === null) {
      done?.(new SwitchboardError('DISCONNECTED', `${action}: not connected (${this.state})`));
      return;
    }
    const id = done === undefined ? undefined : this._requests.add(action, done);
    socket.send(JSON.stringify({ action, data, id }));
  }

  /** @internal */
  _forget(subscription: Subscription): void {
    if (this._subscriptions.get(subscription.channel) === subscription) this._subscriptions.delete(subscription.channel);
  }

  private async _open(): Promise<void> {
    const attempt = ++this._attempts;
    this._setState('connecting');
    // Until the welcome says how often the server pings, it has this long to say it.
    this._silence = this._options.requestTimeout ?? 10_000;
    const { token: source, WebSocket: Socket = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket } = this._options;
    let token: string | null | undefined;
    try {
      token = typeof source === 'function' ? await source() : source;
    } catch (cause) {
      if (attempt !== this._attempts) return;
      this._emit('error', new SwitchboardError('TOKEN', `the token function failed: ${String(cause)}`));
      return this._lost(1006, 'no token');
    }
    if (attempt !== this._attempts) return;
    if (Socket === undefined) return this._shut(new SwitchboardError('NO_WEBSOCKET', 'no WebSocket in this runtime: pass one as the WebSocket option'), true);
    if (token && !/^[\w!#$%&'*+.^`|~-]+$/.test(token)) {
      // A subprotocol cannot carry it (an error page instead of a token?): no server would take it.
      const error = new SwitchboardError('TOKEN', 'the token has characters a token cannot have');
      if (typeof source !== 'function') return this._shut(error, true);
      this._emit('error', error);
      return this._lost(1006, 'bad token');
    }
    this._token = token ?? null;
    let socket: WebSocketLike;
    try {
      socket = new Socket(this._url, token ? ['bearer', token] : undefined);
    } catch (cause) {
      // A URL the WebSocket refuses: no retry makes it better.
      return this._shut(new SwitchboardError('INVALID_URL', String(cause)), true);
    }
    this._socket = socket;
    this._watch();
    let opened = false;
    let status = 0;
    let ended = false;
    // Ends this attempt once, whichever event says so first.
    const end = (code: number, reason: string): void =>
      void (async () => {
        if (ended || this._socket !== socket) return;
        ended = true;
        if (!opened && !status && token) {
          status = await refusalStatus(this._url, token);
          if (this._socket !== socket) return;
        }
        if (!opened && status === 401) return this._unauthorized();
        // Deno reports a failed handshake with code 0.
        this._lost(code || 1006, reason);
      })();
    socket.onopen = () => (opened = true);
    socket.onerror = (event) => {
      // ws, Bun and Deno name the status of a refused handshake in the error; a browser never does.
      const { message, error } = event as { message?: unknown; error?: { message?: unknown } };
      status = Number(/(?:server response|status code):? (\d{3})/.exec(String(message ?? error?.message))?.[1] ?? 0);
      // Node 22's WebSocket (undici 6) fires no close after a failed handshake: the error ends it.
      if (!opened) end(1006, '');
    };
    socket.onmessage = (event) => this._receive(event.data);
    socket.onclose = ({ code, reason }) => end(code, reason);
  }

  private _receive(data: unknown): void {
    this._lastFrame = Date.now();
    let frame: Frame;
    try {
      frame = JSON.parse(String(data)) as Frame;
    } catch {
      return;
    }
    if (frame === null || typeof frame !== 'object' || this._requests.reply(frame)) return;
    const { action, channel } = frame;
    if (frame.type === 'error') this._emit('error', errorOf(frame));
    else if (action === 'welcome') this._welcome(frame as unknown as Welcome);
    else if (action === 'ping') this._send('pong');
    else if (channel !== undefined) this._subscriptions.get(channel)?._frame(frame);
  }

  private _welcome(welcome: Welcome): void {
    this.connectionId = welcome.connection_id;
    this.userId = welcome.user_id;
    if (welcome.heartbeat_interval > 0) this._silence = welcome.heartbeat_interval * 2000;
    // The deadline for the welcome becomes the deadline for the next ping.
    clearTimeout(this._watchdog);
    this._watch();
    this._refused = 0;
    this._openedAt = Date.now();
    // The subscribes go out before anyone hears of the connection: a publish sent from a
    // `state` listener then reaches the server after them, not before (NOT_SUBSCRIBED).
    this.state = 'connected';
    for (const subscription of [...this._subscriptions.values()]) subscription._subscribe();
    this._emit('state', 'connected');
    this._emit('connected', welcome);
    this._renew();
  }

  /** Takes the connection for dead when the server says nothing for too long (before its welcome too). */
  private _watch(): void {
    this._lastFrame = Date.now();
    const check = (): void => {
      const quiet = Date.now() - this._lastFrame;
      if (quiet < this._silence) this._watchdog = setTimeout(check, Math.min(MAX_TIMER, this._silence - quiet));
      else this._lost(1006, 'the server went silent');
    };
    this._watchdog = setTimeout(check, Math.min(MAX_TIMER, this._silence));
  }

  /** With a token function and a token with `exp`: sends a fresh one with `auth` shortly before expiry. */
  private _renew(): void {
    const source = this._options.token;
    const expiry = this._token === null ? null : tokenExpiry(this._token);
    if (typeof source !== 'function' || expiry === null) return;
    const left = expiry - Date.now();
    this._renewal = setTimeout(
      () => {
        void (async () => {
          const token = await source();
          if (!token || this.state !== 'connected') return;
          await this._call('auth', { token });
          this._token = token;
          this._renew();
        })().catch((error: unknown) => this._emit('error', error instanceof SwitchboardError ? error : new SwitchboardError('TOKEN', String(error))));
      },
      Math.min(MAX_TIMER, Math.max(0, left - Math.min(60_000, left / 4))),
    );
  }

  /** A handshake refused with 401: ask the token function once more, then give up. */
  private _unauthorized(): void {
    this._drop(1006, '');
    if (++this._refused > 1 || typeof this._options.token !== 'function') {
      this._refused = 0;
      return this._shut(new SwitchboardError('UNAUTHORIZED', 'the server refused the token (HTTP 401)'), true);
    }
    void this._open();
  }

  /** The connection ended without `close()`: reconnect after a backoff, unless told not to. */
  private _lost(code: number, reason: string): void {
    const stable = this._openedAt > 0 && Date.now() - this._openedAt >= STABLE;
    this._drop(code, reason);
    this._failures = stable ? 0 : this._failures + 1;
    this._setState('disconnected');
    const { reconnect } = this._options;
    if (reconnect === false) return;
    const delay = backoffDelay(this._failures - 1, reconnect?.minDelay ?? 500, reconnect?.maxDelay ?? 20_000);
    const attempt = this._attempts;
    this._reconnect = setTimeout(() => attempt === this._attempts && this._open(), delay);
  }

  /** Lets go of the socket: nothing more from it counts, requests in flight fail. */
  private _drop(code: number, reason: string): void {
    const socket = this._socket;
    const connected = this._openedAt > 0;
    clearTimeout(this._watchdog);
    clearTimeout(this._renewal);
    this._openedAt = 0;
    this.connectionId = null;
    if (socket === null) return;
    this._socket = null;
    socket.onopen = socket.onmessage = socket.onclose = null;
    // Not null: `ws` reports the close of a socket still connecting as an error, and an error
    // nobody listens to would end a Node process.
    socket.onerror = () => undefined;
    try {
      socket.close(1000);
    } catch {
      // Closing a socket that never opened can throw in some runtimes; it is gone either way.
    }
    this._requests.failAll(new SwitchboardError('DISCONNECTED', 'the connection was lost before the reply'));
    // Only a connection that was up is lost; a failed attempt is not news.
    if (connected) this._emit('disconnected', { code, reason });
  }

  /** Closed for good: subscriptions still waiting for their first ack are told why (`ready` rejects). */
  private _shut(error: SwitchboardError, emit?: boolean): void {
    if (emit) this._emit('error', error);
    this._setState('closed');
    for (const subscription of this._subscriptions.values()) subscription._closed(error);
  }

  private _setState(state: State): void {
    if (this.state === state) return;
    this.state = state;
    this._emit('state', state);
  }
}

/**
 * The status a handshake with `token` got, for a WebSocket that does not say (a browser's): the
 * server answers a plain GET on its WebSocket path with the 401 the handshake got, or 426.
 * 0 when it cannot be asked (the server is down too).
 */
function refusalStatus(url: string, token: string): Promise<number> {
  const probe = `${url.replace(/^ws/, 'http')}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
  return typeof fetch === 'function' ? fetch(probe).then((response) => response.status, () => 0) : Promise.resolve(0);
}
