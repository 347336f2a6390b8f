// React bindings (`@switchboard/client/react`): a topic's recent events, and a run
// kept up to date. React is a peer dependency; the core does not import it.
import { useEffect, useRef, useState } from "react";
import type { Switchboard } from "./client.js";
import type { SwitchboardError } from "./errors.js";
import type { EventMessage, HistoryPage, WorkflowSnapshot } from "./protocol.js";
import { watchRun } from "./run.js";
import type { SubscriptionState } from "./subscription.js";

export interface UseTopicOptions<D> {
  /** Start after this seq (replaying history); changing it resubscribes. When the
   *  server cannot resume the topic (`recovered: false`: its history started over, or
   *  lost what was missed), its history is read again (the last `limit`): a log the
   *  server kept replaces `events`; a topic that started over adds its events after
   *  those shown, so nothing published meanwhile is missed and nothing shown twice. */
  since?: number;
  /** Events kept in `events`, newest last. Default 100. */
  limit?: number;
  /** Called with each event as well (the latest function given is used). */
  onEvent?: (ev: EventMessage<D>) => void;
}

export interface TopicView<D> {
  events: EventMessage<D>[];
  last?: EventMessage<D>;
  state: SubscriptionState;
  error?: SwitchboardError;
  /** The last `subscribed`'s: false when events may have been missed meanwhile. */
  recovered?: boolean;
  /** The epoch the events' seqs belong to. */
  epoch?: string;
}

/** Subscribes while mounted; re-renders with each event. `topic` null: nothing. */
export function useTopic<D = unknown>(client: Switchboard, topic: string | null, opts: UseTopicOptions<D> = {}): TopicView<D> {
  const [view, setView] = useState<TopicView<D>>({ events: [], state: "subscribing" });
  const latest = useRef(opts);
  latest.current = opts;
  useEffect(() => {
    if (!topic) return;
    setView({ events: [], state: "subscribing" });
    // with `since` the view is the topic's recent history: after a reset, read it again
    const reload = async (t: string) => {
      const limit = latest.current.limit ?? 100;
      const path = (since: number, n: number) => `/api/v1/topics/${t}/history?since=${since}&limit=${n}`;
      const now = await client.get<HistoryPage>(path(0, 0));
      const since = Math.max(0, now.seq - limit);
      const page = await client.get<HistoryPage>(path(since, now.seq - since));
      const events = page.events.filter((e) => e.seq <= now.seq) as EventMessage<D>[];
      setView((v) => {
        // the same log, kept (a durable topic after a crash): it replaces what is shown;
        // a topic that started over (one kept in memory): its events follow those shown
        const shown = new Map(v.events.map((e) => [e.seq, e]));
        const same = (e: EventMessage<D>, o?: EventMessage<D>) => o != null && o.event == e.event && JSON.stringify(o.data) == JSON.stringify(e.data);
        const kept = events.some((e) => same(e, shown.get(e.seq)));
        const merged = (kept ? events : [...v.events, ...events]).slice(-limit);
        return { ...v, events: merged, last: merged[merged.length - 1] };
      });
      return now.seq;
    };
    const sub = client.subscribe<D>(topic, {
      since: opts.since,
      loadSnapshot: opts.since == null ? undefined : reload,
      onEvent: (ev) => {
        latest.current.onEvent?.(ev);
        setView((v) => ({ ...v, last: ev, events: [...v.events, ev].slice(-(latest.current.limit ?? 100)) }));
      },
      onState: (state, info) =>
        setView((v) => ({ ...v, state, error: info.error ?? v.error, recovered: info.recovered ?? v.recovered, epoch: info.epoch ?? v.epoch })),
      onError: (error) => setView((v) => ({ ...v, error })),
    });
    return () => sub.unsubscribe();
  }, [client, topic, opts.since]);
  return view;
}

export interface RunView {
  run?: WorkflowSnapshot;
  /** The event applied last. */
  last?: EventMessage;
  error?: SwitchboardError;
}

/** A run (snapshot over HTTP, then its `workflow:{id}` topic from the snapshot's seq),
 *  re-rendered at each change. `runId` null: nothing. */
export function useRun(client: Switchboard, runId: string | null): RunView {
  const [view, setView] = useState<RunView>({});
  useEffect(() => {
    setView({});
    if (!runId) return;
    return watchRun(client, runId, {
      onChange: (run, last) => setView({ run, last }),
      onError: (error) => setView((v) => ({ ...v, error })),
    });
  }, [client, runId]);
  return view;
}

export { applyRunEvent, watchRun } from "./run.js";
