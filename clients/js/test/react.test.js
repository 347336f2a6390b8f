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

test("useTopic with `since` reads the topic's history again when its history started over", async () => {
  const c = await server.client();
  for (let i = 1; i <= 3; i++) await c.publish("session:reset", "e", i);
  const { seen, Probe } = probe(() => useTopic(c, "session:reset", { since: 0, limit: 10 }));
  const r = TestRenderer.create(h(Probe));
  await waitFor(() => seen.view.events.length == 3, 5000, "the history replayed");
  const epoch = seen.view.epoch;
  // a crash: the topic (in memory) starts over in a new epoch, and events are published
  // there before the client is back
  await server.stop("SIGKILL");
  await server.start();
  const producer = await server.client();
  for (let i = 10; i <= 12; i++) await producer.publish("session:reset", "e", i);
  await waitFor(() => seen.view.epoch && seen.view.epoch != epoch && seen.view.events.length == 6, 20000, "reloaded");
  assert.equal(seen.view.recovered, false);
  assert.deepEqual(
    seen.view.events.map((e) => [e.seq, e.data]),
    [[1, 1], [2, 2], [3, 3], [1, 10], [2, 11], [3, 12]],
    "what was shown, then what the new epoch holds, each once",
  );
  await producer.publish("session:reset", "e", 13);
  await waitFor(() => seen.view.last?.data == 13, 5000, "live again");
  assert.deepEqual(seen.view.events.map((e) => e.data), [1, 2, 3, 10, 11, 12, 13]);
  r.unmount();
  c.disconnect();
  producer.disconnect();
});

test("useTopic with `since` on a run's topic after a crash: the kept log replaces what was shown", async () => {
  const c = await server.client();
  const start = await c.post("/api/v1/workflows", pipeline("for i in $(seq 1 200); do echo line $i; sleep 0.02; done"));
  const topic = `workflow:${start.id}`;
  const { seen, Probe } = probe(() => useTopic(c, topic, { since: 0, limit: 1000 }));
  const r = TestRenderer.create(h(Probe));
  await waitFor(() => seen.view.events.some((e) => e.event == "terminal_output" && /line 20\n/.test(e.data.output)), 10000, "line 20");
  const epoch = seen.view.epoch;
  await server.stop("SIGKILL");
  await server.start();
  const failed = () => seen.view.events.some((e) => e.event == "workflow_status" && e.data.state == "failed");
  await waitFor(() => seen.view.epoch != epoch && failed(), 20000, "the run failed: server restarted");
  const page = await c.get(`/api/v1/topics/${topic}/history?since=0&limit=1000`);
  const key = (e) => `${e.seq} ${e.event} ${JSON.stringify(e.data)}`;
  assert.deepEqual(seen.view.events.map(key), page.events.map(key), "the page's events are the kept log, each once");
  r.unmount();
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
