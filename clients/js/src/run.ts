// A run kept up to date: its snapshot over HTTP (`GET /api/v1/workflows/{id}`), then
// its topic `workflow:{id}` from the snapshot's seq and epoch, each event applied to
// the snapshot as the dashboard does (app/src/model/workflow.rs). When the server
// cannot resume the topic (a crash, a new epoch), the snapshot is loaded again.
import type { Switchboard } from "./client.js";
import { SwitchboardError } from "./errors.js";
import type { EventMessage, Progress, StageStatus, WorkflowSnapshot, WorkflowStatus } from "./protocol.js";
import type { Subscription } from "./subscription.js";
import { workflowTopic } from "./validate.js";

const FINISHED = ["completed", "failed", "cancelled"];

/** The run after one event of its topic (a new object; the old one is not changed). */
export function applyRunEvent(run: WorkflowSnapshot, ev: EventMessage): WorkflowSnapshot {
  const r = { ...run, seq: ev.seq };
  if (ev.event == "workflow_status") {
    const s = ev.data as WorkflowStatus;
    Object.assign(r, { state: s.state, progress: s.progress, stage_index: s.stage_index, eta_s: s.eta_s });
    if (s.state == "running" && r.started_at == null) r.started_at = ev.ts;
    if (s.state == "pending") r.finished_at = r.error = null;
    if (FINISHED.includes(s.state)) r.finished_at = ev.ts;
  } else if (ev.event == "stage_status") {
    const s = ev.data as StageStatus;
    r.stages = run.stages.map((st) =>
      st.id != s.stage.id
        ? st
        : {
            ...st,
            status: s.stage.status,
            started_at: s.started_at,
            finished_at: s.finished_at,
            exit_code: s.exit_code,
            error: s.error,
            progress: s.stage.status == "pending" ? 0 : s.stage.status == "completed" || s.stage.status == "waiting_confirmation" ? 1 : st.progress,
          },
    );
  } else if (ev.event == "progress") {
    const p = ev.data as Progress;
    r.progress = p.progress;
    r.eta_s = p.eta_s;
    const n = Math.max(run.stages.length, 1);
    // the stage's own share, from the overall figure
    r.stages = run.stages.map((st) => (st.id == p.stage ? { ...st, progress: Math.min(1, Math.max(0, p.progress * n - st.index)) } : st));
  }
  return r;
}

export interface WatchRunOptions {
  /** The run now: after the snapshot, and after every event (with that event). */
  onChange?: (run: WorkflowSnapshot, ev?: EventMessage) => void;
  onError?: (err: SwitchboardError) => void;
}

/** Follows a run until the returned function is called. Throws a ValidationError for
 *  an id that makes no topic name. A snapshot that fails to load (other than 4xx) is
 *  tried again every 2 s. */
export function watchRun(client: Switchboard, id: string, opts: WatchRunOptions = {}): () => void {
  const topic = workflowTopic(id);
  let run: WorkflowSnapshot | undefined;
  let sub: Subscription | undefined;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const load = () =>
    client.get<WorkflowSnapshot>(`/api/v1/workflows/${encodeURIComponent(id)}`).then((s) => {
      if (!stopped) opts.onChange?.((run = s));
      return s;
    });
  const start = (): void =>
    void load().then(
      (s) => {
        if (stopped) return;
        sub = client.subscribe(topic, {
          since: s.seq,
          epoch: s.epoch,
          loadSnapshot: load,
          onEvent: (ev) => opts.onChange?.((run = applyRunEvent(run!, ev)), ev),
          onError: opts.onError,
        });
      },
      (e: SwitchboardError) => {
        if (stopped) return;
        opts.onError?.(e);
        if (!(e.status! < 500)) timer = setTimeout(start, 2000);
      },
    );
  start();
  return () => {
    stopped = true;
    clearTimeout(timer);
    sub?.unsubscribe();
  };
}
