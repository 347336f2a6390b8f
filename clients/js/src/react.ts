// React bindings (`@switchboard/client/react`): a topic's recent events, and a run
// kept up to date. React is a peer dependency; the core does not import it.
import { useEffect, useRef, useState } from "react";
import type { Switchboard } from "./client.js";
import type { SwitchboardError } from "./errors.js";
import type { EventMessage, WorkflowSnapshot } from "./protocol.js";
import { watchRun } from "./run.js";
import type { SubscriptionState } from "./subscription.js";

export interface UseTopicOptions<D> {
  /** Start after this seq (replaying history); changing it resubscribes. */
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
}

/** Subscribes while mounted; re-renders with each event. `topic` null: nothing. */
export function useTopic<D = unknown>(client: Switchboard, topic: string | null, opts: UseTopicOptions<D> = {}): TopicView<D> {
  const [view, setView] = useState<TopicView<D>>({ events: [], state: "subscribing" });
  const latest = useRef(opts);
  latest.current = opts;
  useEffect(() => {
    if (!topic) return;
    setView({ events: [], state: "subscribing" });
    const sub = client.subscribe<D>(topic, {
      since: opts.since,
      onEvent: (ev) => {
        latest.current.onEvent?.(ev);
        setView((v) => ({ ...v, last: ev, events: [...v.events, ev].slice(-(latest.current.limit ?? 100)) }));
      },
      onState: (state, info) => setView((v) => ({ ...v, state, error: info.error ?? v.error })),
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
