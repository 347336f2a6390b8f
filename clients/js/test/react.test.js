// The React hooks, rendered with react-test-renderer against the real server.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createElement as h } from "react";
import TestRenderer from "react-test-renderer";
import { useRun, useTopic } from "../dist/react.js";
import { pipeline, Server, waitFor } from "./helpers.js";

let server;
before(async () => (server = await Server.start()));
after(() => server.close());
globalThis.IS_REACT_ACT_ENVIRONMENT = false; // updates come from the socket, not from act()

function probe(hook) {
  const seen = { renders: 0 };
  const Probe = (props) => {
    seen.view = hook(props);
    seen.renders++;
    return null;
  };
  return { seen, Probe };
}

test("useTopic subscribes while mounted and keeps the last `limit` events", async () => {
  const c = await server.client();
  const heard = [];
  const { seen, Probe } = probe(({ topic }) => useTopic(c, topic, { limit: 3, onEvent: (ev) => heard.push(ev.seq) }));
  const r = TestRenderer.create(h(Probe, { topic: "session:react" }));
  await waitFor(() => seen.view.state == "subscribed", 5000, "subscribed");
  for (let i = 1; i <= 5; i++) await c.publish("session:react", "e", i);
  await waitFor(() => seen.view.events.length == 3 && seen.view.last?.data == 5, 5000, "events");
  assert.deepEqual(seen.view.events.map((e) => e.data), [3, 4, 5]);
  assert.deepEqual(heard, [1, 2, 3, 4, 5]);
  // another topic: a fresh view
  r.update(h(Probe, { topic: "session:other" }));
  await waitFor(() => seen.view.state == "subscribed" && seen.view.events.length == 0);
  r.unmount();
  await waitFor(() => c.channels.size == 0, 2000, "unmounting to unsubscribe");
  c.disconnect();
});

test("useTopic reports a refusal", async () => {
  const c = await server.client({ token: server.token("n", "--sub-topics", "session:*") });
  const { seen, Probe } = probe(() => useTopic(c, "metrics"));
  const r = TestRenderer.create(h(Probe));
  await waitFor(() => seen.view.state == "unsubscribed", 5000);
  assert.equal(seen.view.error.code, "forbidden");
  r.unmount();
  c.disconnect();
});

test("useRun follows a run from its snapshot to its end", async () => {
  const c = await server.client();
  const start = await c.post("/api/v1/workflows", pipeline("for i in 1 2 3; do echo ::progress $i/3; sleep 0.2; done"));
  const { seen, Probe } = probe(({ id }) => useRun(c, id));
  const r = TestRenderer.create(h(Probe, { id: start.id }));
  await waitFor(() => seen.view.run?.state == "completed", 15000, "completed");
  const snap = await c.get(`/api/v1/workflows/${start.id}`);
  const { run } = seen.view;
  assert.equal(run.seq, snap.seq);
  assert.equal(run.progress, snap.progress);
  assert.deepEqual(
    run.stages.map((s) => [s.id, s.status, s.exit_code, s.progress]),
    snap.stages.map((s) => [s.id, s.status, s.exit_code, s.progress]),
  );
  assert.ok(seen.renders > 3, "re-rendered as events came");
  r.unmount();
  await waitFor(() => c.channels.size == 0, 2000, "unmounting to unsubscribe");
  c.disconnect();
});

test("useRun reports an unknown run", async () => {
  const c = await server.client();
  const { seen, Probe } = probe(() => useRun(c, "no-such-run"));
  const r = TestRenderer.create(h(Probe));
  await waitFor(() => seen.view.error, 5000);
  assert.equal(seen.view.error.code, "not_found");
  assert.equal(seen.view.error.status, 404);
  r.unmount();
  c.disconnect();
});
