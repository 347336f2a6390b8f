// (b) An external run that the backend executes: useRun keeps its snapshot live
// (state, stages, progress); the same topic's events give the terminal, the metrics
// and the artifacts. Confirm, pause, resume and cancel go over the client's socket.
import type { Artifact, EventMessage, LogLine, MetricScalar, TerminalOutput } from "@switchboard/client";
import { useRun, useTopic } from "@switchboard/client/react";
import { useState } from "react";
import { client, useArtifactUrl } from "./switchboard";

const FINISHED = ["completed", "failed", "cancelled"];

function lines(events: EventMessage[]): string[] {
  return events.flatMap((e) => {
    if (e.event == "terminal_output") return (e.data as TerminalOutput).output.replace(/\n$/, "").split("\n");
    if (e.event == "log_line") return [`[${(e.data as LogLine).level}] ${(e.data as LogLine).message}`];
    return [];
  });
}

function latestMetrics(events: EventMessage[]): Map<string, MetricScalar> {
  const out = new Map<string, MetricScalar>();
  for (const e of events) if (e.event == "metric_scalar") out.set((e.data as MetricScalar).name, e.data as MetricScalar);
  return out;
}

function ArtifactView({ artifact }: { artifact: Artifact }) {
  const url = useArtifactUrl(artifact.url);
  return (
    <figure className="artifact" data-testid="artifact" data-name={artifact.name}>
      {artifact.kind == "image" && url ? <img src={url} alt={artifact.name} /> : null}
      <figcaption>{artifact.name} ({artifact.bytes} bytes)</figcaption>
    </figure>
  );
}

export function RunPanel({ runId }: { runId: string }) {
  const { run, error } = useRun(client, runId);
  const topic = useTopic(client, `workflow:${runId}`, { since: 0, limit: 1000 });
  const [actionError, setActionError] = useState<string>();
  const act = (f: (id: string) => Promise<unknown>) => () => {
    setActionError(undefined);
    f.call(client, runId).catch((e: Error) => setActionError(e.message));
  };
  if (error && !run) return <p className="error" data-testid="error">{error.message}</p>;
  if (!run) return <p>loading {runId}…</p>;
  const artifacts = topic.events.filter((e) => e.event == "artifact").map((e) => e.data as Artifact);
  const metrics = [...latestMetrics(topic.events).values()];
  return (
    <div data-testid="run" data-run-id={run.id}>
      <p>
        <strong>{run.name}</strong> <code>{run.id}</code>: <span data-testid="run-state">{run.state}</span>{" "}
        <span className="muted">{Math.round(run.progress * 100)}%</span>
      </p>
      <progress data-testid="run-progress" max={1} value={run.progress} />
      <ul className="stages">
        {run.stages.map((st) => (
          <li key={st.id} data-testid="stage" data-stage={st.id} data-status={st.status}>
            <span>{st.name}</span>
            <span data-testid="stage-status">{st.status}{st.error ? `: ${st.error}` : ""}</span>
            <progress max={1} value={st.progress} />
          </li>
        ))}
      </ul>
      <p>
        <button data-testid="confirm" disabled={run.state != "waiting_confirmation"} onClick={act(client.confirm)}>Confirm</button>
        <button data-testid="pause" disabled={run.state != "running"} onClick={act(client.pause)}>Pause</button>
        <button data-testid="resume" disabled={run.state != "paused"} onClick={act(client.resume)}>Resume</button>
        <button data-testid="cancel" disabled={FINISHED.includes(run.state)} onClick={act(client.cancel)}>Cancel</button>
      </p>
      {actionError && <p className="error" data-testid="action-error">{actionError}</p>}
      {metrics.length > 0 && (
        <p>
          {metrics.map((m) => (
            <span key={m.name} data-testid="metric" data-name={m.name}>{m.name} {m.value} (step {m.step}){" "}</span>
          ))}
        </p>
      )}
      <div className="terminal" data-testid="terminal">
        {lines(topic.events).map((line, i) => (
          <div key={i} data-testid="terminal-line">{line}</div>
        ))}
      </div>
      {artifacts.map((a) => (
        <ArtifactView key={a.name} artifact={a} />
      ))}
    </div>
  );
}
