// Subscribe, publish, receive in order; every reply as a Promise.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { SwitchboardError, watchRun } from "../dist/index.js";
import { pipeline, Server, waitFor } from "./helpers.js";

let server;
before(async () => (server = await Server.start()));
after(() => server.close());

test("events arrive once each, in publish order, with gapless seqs", async () => {
  const [pub, sub] = [await server.client(), await server.client()];
  const got = [];
  const s = sub.subscribe("session:order", { onEvent: (ev) => got.push(ev) });
  await s.ready();
  // 50 publishes in flight at once: acks come back in order, one seq each
  const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => pub.publish("session:order", "tick", { i })));
  assert.deepEqual(acks.map((a) => a.seq), Array.from({ length: 50 }, (_, i) => i + 1));
  assert.deepEqual(acks[0], { topic: "session:order", seq: 1 });
  await waitFor(() => got.length == 50, 5000, "50 events");
  assert.deepEqual(got.map((e) => e.seq), acks.map((a) => a.seq));
  assert.deepEqual(got.map((e) => e.data.i), Array.from({ length: 50 }, (_, i) => i));
  assert.ok(got.every((e) => e.topic == "session:order" && e.event == "tick" && typeof e.ts == "number"));
  pub.disconnect();
  sub.disconnect();
});

test("since replays history first, then live events; two handles share a topic", async () => {
  const c = await server.client();
  for (let i = 1; i <= 5; i++) await c.post("/api/v1/publish", { topic: "session:hist", event: "e", data: i });
  const a = [];
  const b = [];
  const sa = c.subscribe("session:hist", { since: 2, onEvent: (ev) => a.push(ev.seq) });
  await sa.ready();
  await waitFor(() => a.length == 3, 5000, "replayed history");
  const sb = c.subscribe("session:hist", { onEvent: (ev) => b.push(ev.seq) });
  assert.equal(sb.state, "subscribed", "joins the live topic at once");
  await c.publish("session:hist", "e", 6);
  await waitFor(() => a.length == 4 && b.length == 1);
  assert.deepEqual(a, [3, 4, 5, 6]);
  assert.deepEqual(b, [6]);
  sa.unsubscribe();
  await c.publish("session:hist", "e", 7);
  await waitFor(() => b.length == 2);
  assert.deepEqual(a, [3, 4, 5, 6], "an unsubscribed handle hears nothing more");
  sb.unsubscribe();
  c.disconnect();
});

test("pings resolve with the round trip and set client.rtt", async () => {
  const c = await server.client();
  const rtt = await c.ping();
  assert.ok(rtt >= 0 && rtt < 1000, `rtt ${rtt}`);
  assert.equal(c.rtt, rtt);
  c.disconnect();
});

test("run controls answer as Promises: ack, or the server's error", async () => {
  const c = await server.client();
  const run = await c.post("/api/v1/workflows", {
    pipeline: {
      name: "gate",
      stages: [
        { id: "a", run: "echo first", confirm: true },
        { id: "b", run: "sleep 0.3; echo done" },
      ],
    },
  });
  assert.equal(typeof run.id, "string");
  let now;
  const chats = [];
  const stop = watchRun(c, run.id, { onChange: (r, ev) => ((now = r), ev?.event == "chat" && chats.push(ev.data)) });
  await waitFor(() => now?.state == "waiting_confirmation", 10000, "the gate");
  assert.equal(await c.chat(run.id, "looks good"), undefined, "an ack without result");
  await waitFor(() => chats.length == 1);
  assert.equal(chats[0].text, "looks good");
  await c.confirm(run.id);
  await waitFor(() => now?.state == "running" || now?.state == "completed");
  await waitFor(() => now?.state == "completed", 10000, "completed");
  const snap = await c.get(`/api/v1/workflows/${run.id}`);
  assert.deepEqual(
    now.stages.map((s) => [s.id, s.status, s.exit_code]),
    snap.stages.map((s) => [s.id, s.status, s.exit_code]),
    "events applied to the snapshot give what the server has",
  );
  assert.equal(now.seq, snap.seq);

  const conflict = await c.confirm(run.id).catch((e) => e);
  assert.ok(conflict instanceof SwitchboardError, String(conflict));
  assert.equal(conflict.code, "conflict");
  assert.equal(conflict.retryable, false);
  assert.equal(conflict.originalMessage.type, "confirm");
  assert.equal(conflict.originalMessage.workflow_id, run.id);
  await assert.rejects(c.pause(run.id), { code: "conflict" }, "pausing a finished run");
  await assert.rejects(c.pause("no-such-run"), { code: "not_found" });
  await assert.rejects(c.restartStage(run.id, "zzz"), { code: "not_found" });
  stop();
  c.disconnect();
});
