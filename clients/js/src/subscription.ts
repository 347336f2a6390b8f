// One topic on the wire (Channel) and the app's handles on it (Subscription).
// The channel keeps the cursor: the last seq taken from the wire and its epoch, what
// a resubscribe asks `since`, and what drops duplicates. A handle with a snapshot
// loader holds live events while the snapshot loads and then drops those the
// snapshot already reflects (PROTOCOL.md section 3, snapshot + delta).
import { SwitchboardError } from "./errors.js";
import type { EventMessage, Subscribed } from "./protocol.js";

export type SubscriptionState = "subscribing" | "subscribed" | "unsubscribed";

/** What `onState` is told. */
export interface SubscriptionInfo {
  /** On `subscribed`: the topic's last seq then, its epoch, and whether nothing was lost. */
  seq?: number;
  epoch?: string;
  recovered?: boolean;
  /** Why it is `subscribing` again (the connection dropped) or `unsubscribed` (refused). */
  code?: number;
  reason?: string;
  error?: SwitchboardError;
}

/** Brings the app's state to a seq of the topic over HTTP; resolves with that seq
 *  (or with the snapshot, whose `seq` is read). */
export type SnapshotLoader = (topic: string) => Promise<number | { seq: number }>;

export interface SubscribeOptions<D = unknown> {
  /** Deliver events after this seq (history first); without it, live from now on. */
  since?: number;
  /** The epoch `since` belongs to (a snapshot's `epoch`). */
  epoch?: string;
  onEvent?: (ev: EventMessage<D>, sub: Subscription<D>) => void;
  onState?: (state: SubscriptionState, info: SubscriptionInfo, sub: Subscription<D>) => void;
  /** A refusal (`forbidden`, ...) or a snapshot that failed to load. */
  onError?: (err: SwitchboardError, sub: Subscription<D>) => void;
  /** Runs on the first `subscribed` (unless `since` is given) and whenever the server
   *  cannot resume the topic (`recovered: false`, a new epoch). */
  loadSnapshot?: SnapshotLoader;
}

const RELOAD_RETRY_MS = 2000;

export class Channel {
  /** The last seq taken from the wire (or asked for), and its epoch. */
  last?: number;
  epoch?: string;
  /** Subscribed on the current connection: events are taken only then. */
  live = false;
  subs: Subscription<any>[] = [];

  constructor(
    readonly topic: string,
    since?: number,
    epoch?: string,
  ) {
    this.last = since;
    this.epoch = epoch;
  }

  subscribed(s: Subscribed): void {
    const recovered = s.recovered && (this.epoch == null || this.epoch === s.epoch);
    this.epoch = s.epoch;
    this.live = true;
    // live only, or history lost: the stream goes on from the topic's seq now
    if (!recovered || this.last == null) this.last = s.seq;
    for (const sub of [...this.subs]) sub._subscribed({ seq: s.seq, epoch: s.epoch, recovered });
  }

  /** Takes an event off the wire; returns a description of a gap, if there was one. */
  event(ev: EventMessage): string | undefined {
    if (!this.live || (this.last != null && ev.seq <= this.last)) return;
    const gap = this.last != null && ev.seq != this.last + 1 ? `seq ${this.last + 1} to ${ev.seq - 1} of ${this.topic} never arrived` : undefined;
    this.last = ev.seq;
    for (const sub of [...this.subs]) sub._deliver(ev);
    return gap;
  }

  down(info: SubscriptionInfo): void {
    this.live = false;
    for (const sub of [...this.subs]) sub._state("subscribing", info);
  }

  refused(err: SwitchboardError): void {
    for (const sub of [...this.subs]) sub._refused(err);
  }
}

export class Subscription<D = unknown> {
  state: SubscriptionState = "subscribing";
  /** Why the server refused it, once it has. */
  error?: SwitchboardError;
  /** Events at or below this seq are not delivered (a loaded snapshot has them). */
  private floor: number;
  private synced: boolean;
  private held: EventMessage<D>[] | null = null;
  private gen = 0;

  constructor(
    readonly topic: string,
    private opts: SubscribeOptions<D>,
    private leave: (sub: Subscription<D>) => void,
  ) {
    this.floor = opts.since ?? 0;
    // with `since`, the app's state is at that seq already
    this.synced = opts.since != null || !opts.loadSnapshot;
  }

  /** Stops delivering events; the last handle on a topic unsubscribes on the wire. */
  unsubscribe(): void {
    if (this.state == "unsubscribed") return;
    this.gen++;
    this.leave(this);
    this._state("unsubscribed", {});
  }

  /** Resolves once subscribed (at once if it is); rejects when the server refuses it. */
  ready(): Promise<SubscriptionInfo> {
    return new Promise((resolve, reject) => {
      if (this.state == "subscribed") return resolve({});
      if (this.state == "unsubscribed") return reject(this.error ?? new SwitchboardError("closed", "unsubscribed"));
      const prev = this.opts;
      this.opts = {
        ...prev,
        onState: (state, info, sub) => {
          prev.onState?.(state, info, sub);
          if (state == "subscribed") resolve(info);
          else if (state == "unsubscribed") reject(info.error ?? new SwitchboardError("closed", "unsubscribed"));
        },
      };
    });
  }

  _state(state: SubscriptionState, info: SubscriptionInfo): void {
    this.state = state;
    this.opts.onState?.(state, info, this);
  }

  _subscribed(info: SubscriptionInfo, joined?: number): void {
    if (joined != null) this.floor = Math.max(this.floor, joined);
    if (!info.recovered) {
      // events were lost, or the seqs start over (a new epoch): live from `seq` on
      this.floor = info.seq!;
      this.synced = !this.opts.loadSnapshot;
    }
    this._state("subscribed", info);
    if (!this.synced && this.state == "subscribed") this.load();
  }

  _deliver(ev: EventMessage): void {
    if (ev.seq <= this.floor || this.state == "unsubscribed") return;
    if (this.held) this.held.push(ev as EventMessage<D>);
    else this.opts.onEvent?.(ev as EventMessage<D>, this);
  }

  _refused(err: SwitchboardError): void {
    this.state = "unsubscribed";
    this.error = err;
    this.opts.onError?.(err, this);
    this.opts.onState?.("unsubscribed", { error: err }, this);
  }

  /** Loads the snapshot; live events wait for it, and a newer load supersedes it. */
  private load(): void {
    const gen = ++this.gen;
    this.held ??= [];
    Promise.resolve()
      .then(() => this.opts.loadSnapshot!(this.topic))
      .then(
        (r) => {
          if (gen != this.gen) return;
          this.floor = Math.max(this.floor, typeof r == "number" ? r : r.seq);
          const held = this.held!;
          this.held = null;
          this.synced = true;
          for (const ev of held) this._deliver(ev);
        },
        (e) => {
          if (gen != this.gen) return;
          const err = e instanceof SwitchboardError ? e : new SwitchboardError("internal", String(e?.message ?? e));
          this.opts.onError?.(err, this);
          setTimeout(() => gen == this.gen && this.state == "subscribed" && this.load(), RELOAD_RETRY_MS);
        },
      );
  }
}
