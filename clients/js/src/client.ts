// The connection: connect, read, ping, and reconnect with backoff, resubscribing
// every topic with `since` and `epoch` so nothing is lost; requests answered by id;
// what is sent while offline queued (bounded) and flushed in order on `hello`. The
// model is the dashboard's own client (app/src/client/socket.rs).
import { Backoff } from "./backoff.js";
import { SwitchboardError } from "./errors.js";
import type { ClientMessage, ControlAction, Limits, ServerMessage } from "./protocol.js";
import { Channel, Subscription, type SnapshotLoader, type SubscribeOptions } from "./subscription.js";
import { checkEvent, checkTopic, DEFAULT_MAX_MESSAGE_BYTES, encode, workflowTopic } from "./validate.js";

export type ConnectionState = "disconnected" | "connecting" | "connected";

export interface StateInfo {
  /** The close code and reason of the connection that ended. */
  code?: number;
  reason?: string;
  /** While reconnecting: ms until the next attempt. */
  retryIn?: number;
  error?: SwitchboardError;
}

/** The part of the WebSocket API the client uses (the browser's, Node 22's, `ws`). */
export interface WebSocketLike {
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

export interface SwitchboardOptions {
  /** `ws://host:port/ws`; `http(s)://host:port` means its `/ws`. Query parameters
   *  (`session_id`, `user_id`) are kept; the token is added. */
  url: string;
  /** The access token; with `getToken`, the first one to try. */
  token?: string;
  /** Gives a (new) token: before the first connection without `token`, and once
   *  after a close 1008 (unauthorized) or an HTTP 401. */
  getToken?: () => string | Promise<string>;
  /** Default snapshot loader of every subscription that has none of its own. */
  loadSnapshot?: SnapshotLoader;
  /** The HTTP API's base, when not the WebSocket's host. */
  httpUrl?: string;
  WebSocket?: new (url: string) => WebSocketLike;
  fetch?: typeof fetch;
  /** Messages kept while offline; past it, calls throw `queue_full`. Default 100. */
  maxQueue?: number;
  /** App-level ping period (RTT, half-open connections). Default 10 s. */
  pingInterval?: number;
  /** A pong (or the `hello`) later than this ends the connection. Default 5 s. */
  pongTimeout?: number;
  minReconnectDelay?: number;
  maxReconnectDelay?: number;
}

type Reply = (m?: ServerMessage) => void;
type Listener = (...args: any[]) => void;
interface Queued {
  id: number;
  text: string;
  reply: Reply;
}

const now = () => globalThis.performance?.now() ?? Date.now();

export class Switchboard {
  state: ConnectionState = "disconnected";
  /** Round-trip time of the last ping, in ms. */
  rtt?: number;
  /** The server's limits (from `hello`). */
  limits?: Limits;
  clientId?: string;
  /** The token in use (the last one `getToken` gave). */
  token?: string;
  readonly httpUrl: string;

  private readonly o: SwitchboardOptions;
  private readonly wsUrl: string;
  private ws: WebSocketLike | null = null;
  private open = false; // `hello` received on `ws`
  private wanted = false;
  private attempt = 0; // stale async steps of an older attempt check it
  private retryTimer?: ReturnType<typeof setTimeout>;
  private pingTimer?: ReturnType<typeof setTimeout>;
  private deadline?: ReturnType<typeof setTimeout>;
  private refreshed = false;
  private nextId = 0;
  private replies = new Map<number, Reply>();
  private queue: Queued[] = [];
  private channels = new Map<string, Channel>();
  private listeners: Record<string, Set<Listener>> = {};
  private backoff: Backoff;
  private wake = () => this.retryTimer && this.connect();
  private visible = () => (globalThis as any).document?.visibilityState == "visible" && this.wake();

  constructor(options: SwitchboardOptions) {
    this.o = options;
    const u = new URL(options.url);
    if (u.protocol.startsWith("http")) {
      u.protocol = u.protocol == "https:" ? "wss:" : "ws:";
      if (u.pathname == "/") u.pathname = "/ws";
    }
    this.wsUrl = u.href;
    this.httpUrl = (options.httpUrl ?? u.origin.replace(/^ws/, "http")).replace(/\/$/, "");
    this.token = options.token;
    this.backoff = new Backoff(options.minReconnectDelay, options.maxReconnectDelay);
  }

  /** Messages waiting for the connection. */
  get queued(): number {
    return this.queue.length;
  }

  /** `state` (state, info), `connecting` / `connected` / `disconnected` (info),
   *  `error` (a server error no request owns, or a broken promise of the server). */
  on(name: "state", fn: (state: ConnectionState, info: StateInfo) => void): () => void;
  on(name: "connecting" | "connected" | "disconnected", fn: (info: StateInfo) => void): () => void;
  on(name: "error", fn: (err: SwitchboardError) => void): () => void;
  on(name: string, fn: Listener): () => void {
    (this.listeners[name] ??= new Set()).add(fn);
    return () => this.listeners[name].delete(fn);
  }

  private emit(name: string, ...args: unknown[]): void {
    this.listeners[name]?.forEach((fn) => fn(...args));
  }

  private setState(state: ConnectionState, info: StateInfo = {}): void {
    this.state = state;
    this.emit("state", state, info);
    this.emit(state, info);
  }

  /** Connects, and keeps reconnecting until `disconnect()`; while waiting out the
   *  backoff, tries again at once. Back online or a visible tab does the same. */
  connect(): void {
    if (!(this.o.WebSocket ?? (globalThis as any).WebSocket)) {
      throw new Error("no WebSocket here: pass the `WebSocket` option (Node 20: --experimental-websocket, or the `ws` package)");
    }
    this.wanted = true;
    if (this.ws) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const g = globalThis as any;
    g.addEventListener?.("online", this.wake);
    g.document?.addEventListener?.("visibilitychange", this.visible);
    this.dial();
  }

  /** Closes the connection for good (subscriptions are kept for a later `connect`);
   *  what was queued is rejected with `closed`. */
  disconnect(): void {
    this.wanted = false;
    const g = globalThis as any;
    g.removeEventListener?.("online", this.wake);
    g.document?.removeEventListener?.("visibilitychange", this.visible);
    this.rejectQueue("closed", "the client was disconnected");
    if (this.ws) this.drop(1000, "client disconnect");
    else {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      if (this.state != "disconnected") this.setState("disconnected", { code: 1000 });
    }
  }

  private async dial(): Promise<void> {
    const attempt = ++this.attempt;
    this.setState("connecting");
    let token = this.token;
    if (token == null && this.o.getToken) {
      try {
        token = this.token = await this.o.getToken();
      } catch (e) {
        if (attempt == this.attempt) this.ended(1006, `getToken failed: ${e}`);
        return;
      }
      if (attempt != this.attempt || !this.wanted) return;
    }
    const url = new URL(this.wsUrl);
    if (token) url.searchParams.set("token", token);
    let ws: WebSocketLike;
    try {
      ws = new (this.o.WebSocket ?? (globalThis as any).WebSocket)(url.href);
    } catch (e) {
      return this.ended(1006, String(e));
    }
    this.ws = ws;
    this.arm(() => this.drop(4000, "no hello in time"));
    ws.onmessage = (ev) => this.read(ev.data);
    ws.onclose = (ev) => this.ws == ws && this.ended(ev.code, ev.reason);
    // Node 20's WebSocket (undici 6) gives a refused connection an `error` and no
    // `close`: an error ends the attempt (a browser's `close` would follow; it is detached)
    ws.onerror = () => this.ws == ws && this.drop(1006, "connection failed");
  }

  /** Leaves the socket now (its close may never come on a dead link) and goes on. */
  private drop(code: number, reason: string): void {
    const ws = this.ws!;
    ws.onclose = ws.onmessage = ws.onerror = null; // closing may fire them at once
    try {
      ws.close(code >= 4000 ? code : 1000, reason); // a browser takes only 1000 and 3000-4999
    } catch {}
    this.ended(code, reason);
  }

  private arm(fn: () => void): void {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(fn, this.o.pongTimeout ?? 5000);
  }

  /** One connection ended: fail what awaited it, then retry, renew access or stop. */
  private ended(code: number, reason: string): void {
    const greeted = this.open;
    this.ws = null;
    this.open = false;
    clearTimeout(this.deadline);
    clearTimeout(this.pingTimer);
    const waiting = [...this.replies.values()];
    this.replies.clear();
    waiting.forEach((reply) => reply());
    if (greeted) this.channels.forEach((ch) => ch.down({ code, reason }));
    if (!this.wanted || code == 1000) {
      this.wanted = false;
      return this.setState("disconnected", { code, reason });
    }
    if (code == 1008) {
      if (this.o.getToken && (greeted || !this.refreshed)) {
        // a token that expired or was refused: ask for a new one, once
        this.refreshed = true;
        this.token = undefined;
        return void this.dial();
      }
      this.wanted = false;
      const error = new SwitchboardError("unauthorized", `the server refused the connection (1008): ${reason}`);
      this.rejectQueue("unauthorized", error.message);
      return this.setState("disconnected", { code, reason, error });
    }
    clearTimeout(this.retryTimer);
    const retryIn = this.backoff.next();
    this.setState("connecting", { code, reason, retryIn });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.dial();
    }, retryIn);
  }

  private rejectQueue(code: "closed" | "unauthorized", message: string): void {
    const q = this.queue;
    this.queue = [];
    q.forEach((m) => m.reply({ v: 1, type: "error", code: code as any, message, retryable: false }));
  }

  private read(data: unknown): void {
    let m: ServerMessage;
    try {
      m = JSON.parse(String(data));
    } catch {
      return this.emit("error", new SwitchboardError("bad_json", `the server sent a frame that is not JSON: ${String(data).slice(0, 200)}`));
    }
    if (m.v !== 1) return this.emit("error", new SwitchboardError("bad_request", `protocol version ${m.v} is not supported (expected 1)`));
    if (m.type == "hello") return this.hello(m);
    if (m.type == "event") {
      const gap = this.channels.get(m.topic)?.event(m);
      if (gap) this.emit("error", new SwitchboardError("internal", `the server skipped events: ${gap}`));
      return;
    }
    const id = "id" in m && typeof m.id == "number" ? m.id : undefined;
    const reply = id != null ? this.replies.get(id) : undefined;
    if (reply) {
      this.replies.delete(id!);
      reply(m);
    } else if (m.type == "error") this.emit("error", SwitchboardError.from(m));
  }

  private hello(m: Extract<ServerMessage, { type: "hello" }>): void {
    this.open = true;
    this.refreshed = false;
    this.backoff.reset();
    this.limits = m.limits;
    this.clientId = m.client_id;
    this.setState("connected");
    this.channels.forEach((ch) => this.sendSubscribe(ch));
    const q = this.queue;
    this.queue = [];
    q.forEach((item) => this.transmit(item));
    this.ping().catch(() => {});
  }

  private transmit({ id, text, reply }: Queued): void {
    this.replies.set(id, reply);
    try {
      this.ws!.send(text);
    } catch {
      // a socket already closing: its close event fails the reply
    }
  }

  /** Sends `msg` with a fresh id now or, offline, once connected; `reply` hears the
   *  answer, or nothing when the connection dropped first. Throws when not taken. */
  private send(msg: ClientMessage, reply: Reply): number {
    const id = ++this.nextId;
    const item = { id, text: encode({ v: 1, ...msg, id }, this.limits?.max_message_bytes ?? DEFAULT_MAX_MESSAGE_BYTES), reply };
    if (this.open) this.transmit(item);
    else {
      const max = this.o.maxQueue ?? 100;
      if (this.queue.length >= max) {
        throw new SwitchboardError("queue_full", `offline, and ${max} messages are already waiting to be sent: try again once connected`);
      }
      this.queue.push(item);
    }
    return id;
  }

  /** The ack's result (or the reply itself), or a SwitchboardError. */
  private ask<T>(msg: ClientMessage): Promise<T> {
    let settle!: Reply;
    const p = new Promise<T>((resolve, reject) => {
      settle = (m) =>
        !m
          ? reject(new SwitchboardError("disconnected", "the connection dropped before the server answered: check the state before retrying"))
          : m.type == "error"
            ? reject(SwitchboardError.from(m))
            : resolve((m.type == "ack" ? m.result : m) as T);
    });
    this.send(msg, settle);
    return p;
  }

  private sendSubscribe(ch: Channel): void {
    this.send({ type: "subscribe", topic: ch.topic, since: ch.last, epoch: ch.epoch }, (m) => {
      if (!m || this.channels.get(ch.topic) != ch) return; // resubscribed on the next `hello`
      if (m.type == "subscribed") return ch.subscribed(m);
      if (m.type != "error") return;
      const err = SwitchboardError.from(m);
      if (err.retryable) {
        setTimeout(() => this.open && this.channels.get(ch.topic) == ch && this.sendSubscribe(ch), 1000 + Math.random() * 1000);
      } else {
        this.channels.delete(ch.topic);
        ch.refused(err);
      }
    });
  }

  /** Subscribes to a topic (kept across reconnects until `unsubscribe()`). Throws a
   *  ValidationError for a bad topic name. Several handles on one topic share it. */
  subscribe<D = unknown>(topic: string, opts: SubscribeOptions<D> = {}): Subscription<D> {
    checkTopic(topic);
    let ch = this.channels.get(topic);
    const max = this.limits?.max_subscriptions;
    if (!ch && max != null && this.channels.size >= max) {
      throw new SwitchboardError("too_many_subscriptions", `at most ${max} topics per connection; ${JSON.stringify(topic)} would be one more`);
    }
    const sub = new Subscription<D>(topic, { loadSnapshot: this.o.loadSnapshot, ...opts }, (s) => this.leave(s));
    if (ch) {
      ch.subs.push(sub);
      // joins a topic already under way: from its position now on
      if (ch.live) sub._subscribed({ seq: ch.last, epoch: ch.epoch, recovered: opts.since == null || opts.since >= ch.last! }, ch.last);
    } else {
      ch = new Channel(topic, opts.since, opts.epoch);
      ch.subs.push(sub);
      this.channels.set(topic, ch);
      if (this.open) this.sendSubscribe(ch);
    }
    return sub;
  }

  private leave(sub: Subscription<any>): void {
    const ch = this.channels.get(sub.topic);
    if (!ch) return;
    ch.subs = ch.subs.filter((s) => s != sub);
    if (ch.subs.length) return;
    this.channels.delete(sub.topic);
    if (this.open) this.send({ type: "unsubscribe", topic: sub.topic }, () => {});
  }

  /** Publishes an event; resolves with its `{topic, seq}` once the server has it. */
  publish(topic: string, event: string, data: unknown = null): Promise<{ topic: string; seq: number }> {
    return this.ask({ type: "publish", topic: checkTopic(topic), event: checkEvent(event), data });
  }

  /** A round trip to the server; resolves with the RTT in ms (also `client.rtt`). */
  ping(): Promise<number> {
    const ts = now();
    if (this.open) {
      clearTimeout(this.pingTimer);
      this.pingTimer = setTimeout(() => this.ping().catch(() => {}), this.o.pingInterval ?? 10000);
      this.arm(() => this.drop(4000, "no pong in time"));
    }
    return this.ask({ type: "ping", ts }).then(() => {
      clearTimeout(this.deadline);
      return (this.rtt = now() - ts);
    });
  }

  private act(id: string, msg: ClientMessage): Promise<unknown> {
    workflowTopic(id);
    return this.ask({ ...msg, workflow_id: id } as ClientMessage);
  }

  private control(id: string, action: ControlAction) {
    return this.act(id, { type: "control", action });
  }

  pause(id: string) {
    return this.control(id, "pause");
  }
  resume(id: string) {
    return this.control(id, "resume");
  }
  cancel(id: string) {
    return this.control(id, "cancel");
  }
  /** Completes a stage that waits for confirmation. */
  confirm(id: string) {
    return this.act(id, { type: "confirm" });
  }
  chat(id: string, text: string) {
    if (typeof text != "string") throw new SwitchboardError("bad_request", `invalid chat text ${JSON.stringify(text)}: it must be a string`);
    return this.act(id, { type: "chat", text });
  }
  restartStage(id: string, stageId: string) {
    return this.act(id, { type: "command", command: "restart_stage", args: { stage_id: stageId } });
  }

  /** An HTTP call to the API with the token; the JSON answer, or a SwitchboardError
   *  with the API's `code` and the `status`. A 401 asks `getToken` once. */
  async http<T = unknown>(method: string, path: string, body?: unknown, renewed = false): Promise<T> {
    if (this.token == null && this.o.getToken) this.token = await this.o.getToken();
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = "Bearer " + this.token;
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await (this.o.fetch ?? fetch)(this.httpUrl + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new SwitchboardError("disconnected", `${method} ${path}: the server did not answer (${e})`, { retryable: true });
    }
    if (res.status == 401 && this.o.getToken && !renewed) {
      this.token = undefined;
      return this.http(method, path, body, true);
    }
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {}
    if (res.ok) return json;
    const status = res.status;
    throw new SwitchboardError(json?.error?.code ?? "http", json?.error?.message ?? `${method} ${path}: HTTP ${status}`, {
      status,
      retryable: status == 429 || status >= 500,
    });
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.http<T>("GET", path);
  }
  post<T = unknown>(path: string, body?: unknown): Promise<T> {
    return this.http<T>("POST", path, body);
  }
}

