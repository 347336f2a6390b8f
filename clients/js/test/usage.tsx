// The README's examples, type-checked (not run) against the published types: the
// package as a user imports it, by its name and sub-path.
import * as React from "react";
import { Switchboard, SwitchboardError, ValidationError, type EventMessage, type Progress, type WorkflowSnapshot } from "@switchboard/client";
import { useRun, useTopic } from "@switchboard/client/react";

const client = new Switchboard({
  url: "ws://127.0.0.1:3000/ws",
  getToken: async () => (await fetch("/my-backend/switchboard-token")).text(),
});
client.on("state", (state, info) => console.log(state, info.code, info.retryIn));
client.on("error", (err: SwitchboardError) => console.warn(err.code, err.message));
client.connect();

const sub = client.subscribe<{ progress: number }>("session:abc", {
  since: 0,
  onEvent: (ev) => console.log(ev.seq, ev.event, ev.data.progress),
  onState: (state, info) => state == "subscribed" && console.log(info.recovered),
  onError: (err) => console.warn(err.code),
});
sub.unsubscribe();

async function controls(runId: string): Promise<void> {
  const { seq }: { topic: string; seq: number } = await client.publish("session:abc", "ai_progress", { progress: 0.5 });
  console.log(seq, client.rtt, client.queued, client.state);
  await client.pause(runId);
  await client.resume(runId);
  await client.confirm(runId);
  await client.chat(runId, "looks good");
  await client.restartStage(runId, "train");
  await client.cancel(runId);
  try {
    client.subscribe("Bad Topic");
  } catch (e) {
    if (e instanceof ValidationError) console.log(e.field, e.value, e.code);
  }
  const run = await client.get<WorkflowSnapshot>(`/api/v1/workflows/${runId}`);
  console.log(run.stages[0].status, run.seq, run.epoch);
}
void controls;

export function RunPage({ id }: { id: string }) {
  const { run, error } = useRun(client, id);
  const { events } = useTopic<Progress>(client, `workflow:${id}`, { limit: 20 });
  const last: EventMessage<Progress> | undefined = events.at(-1);
  if (error) return <p>{error.message}</p>;
  if (!run) return <p>loading</p>;
  return (
    <p>
      {run.name}: {run.state} {Math.round(run.progress * 100)}% {last?.data.message}
    </p>
  );
}
