// A server restarted in the middle of a run, while a client follows the run's topic:
// after a clean stop (SIGTERM) the topic resumes (same epoch, recovered) and every
// event arrives exactly once; after a crash (SIGKILL) the topic has a new epoch, the
// client reloads the snapshot, and still nothing is delivered twice.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { applyRunEvent } from "../dist/index.js";
import { pipeline, Server, waitFor } from "./helpers.js";

let server;
// a 1 s shutdown grace: the stage is still running when the server stops (with the
// default 5 s the stage may end inside the grace: see the last test)
before(async () => (server = await Server.start(["--shutdown-grace-s", "1"])));
after(() => server.close());

const LINES = "for i in $(seq 1 50); do echo line $i; sleep 0.1; done";
const linesOf = (events) =>
  events.filter((e) => e.event == "terminal_output").flatMap((e) => e.data.output.split("\n").filter((l) => /^line \d+$/.test(l)));

/** Starts a run, follows it from its snapshot, restarts the server mid-run with
 *  `signal`, and returns what the client saw once the run has ended. */
async function followAcrossRestart(signal) {
  const c = await server.client();
  const errors = [];
  c.on("error", (e) => errors.push(e));
  const states = [];
  const began = Date.now();
  c.on("state", (s, info) => states.push([Date.now() - began, s, info.code, info.reason, info.retryIn]));
  const start = await c.post("/api/v1/workflows", pipeline(LINES));
  let run = await c.get(`/api/v1/workflows/${start.id}`);
  const got = [];
  const subscribed = [];
  let loads = 0;
  let epoch = run.epoch;
  const sub = c.subscribe(`workflow:${run.id}`, {
    since: run.seq,
    epoch: run.epoch,
    onState: (state, info) => state == "subscribed" && (subscribed.push(info), (epoch = info.epoch)),
    loadSnapshot: async () => {
      loads++;
      run = await c.get(`/api/v1/workflows/${start.id}`);
      return run;
    },
    onEvent: (ev) => {
      got.push({ ...ev, epoch });
      run = applyRunEvent(run, ev);
    },
  });
  await waitFor(() => linesOf(got).includes("line 8"), 15000, "line 8");
  const t0 = Date.now();
  const exit = await server.stop(signal);
  const stopMs = Date.now() - t0;
  assert.deepEqual(exit, signal == "SIGKILL" ? { code: null, signal } : { code: 0, signal: null });
  await waitFor(() => c.state == "connecting", 5000, "the client noticing");
  await server.start();
  c.connect(); // skips what is left of the backoff
  await waitFor(() => run.state == "failed", 15000, "the run failed by the restart");
  // let anything late or duplicated arrive
  await new Promise((r) => setTimeout(r, 500));
  const snap = await c.get(`/api/v1/workflows/${start.id}`);
  sub.unsubscribe();
  c.disconnect();
  return { c, got, loads, subscribed, snap, run, first: start, errors, states, stopMs };
}

function assertOncePerEpochInOrder(got) {
  const seen = new Set();
  let prev = { epoch: undefined, seq: 0 };
  for (const ev of got) {
    const key = `${ev.epoch}/${ev.seq}`;
    assert.ok(!seen.has(key), `seq ${ev.seq} of epoch ${ev.epoch} delivered twice`);
    seen.add(key);
    if (ev.epoch == prev.epoch) assert.ok(ev.seq > prev.seq, `seq ${ev.seq} after ${prev.seq}`);
    prev = ev;
  }
  const lines = linesOf(got);
  assert.equal(new Set(lines).size, lines.length, `a terminal line delivered twice: ${lines.join(",")}`);
}

test("a clean restart (SIGTERM) loses and repeats nothing: same epoch, recovered", async () => {
  const r = await followAcrossRestart("SIGTERM");
  assertOncePerEpochInOrder(r.got);
  assert.deepEqual(r.errors, []);
  assert.ok(r.stopMs < 3000, `a clean stop took ${r.stopMs} ms`);
  assert.equal(r.loads, 0, "no snapshot reload after a clean restart");
  const last = r.subscribed.at(-1);
  assert.equal(r.subscribed.length, 2, "subscribed, then resubscribed once");
  assert.equal(last.recovered, true);
  assert.equal(last.epoch, r.subscribed[0].epoch, "the topic kept its epoch");
  // exactly the stored history from the snapshot's seq on: no gap, nothing twice
  const history = await fetchHistory(r.c, r.first.id, r.got[0].seq - 1);
  assert.deepEqual(r.got.map((e) => e.seq), history.map((e) => e.seq));
  assert.deepEqual(r.got.map((e) => e.data), history.map((e) => e.data));
  assert.equal(r.got.at(-1).seq, r.snap.seq);
  // lines 1..k, each once, in order; the run fails "server restarted"
  const lines = linesOf(r.got).map((l) => +l.split(" ")[1]);
  assert.ok(lines.length >= 8, lines.join(","));
  assert.deepEqual(lines, lines.map((_, i) => lines[0] + i));
  assert.equal(r.snap.state, "failed");
  assert.equal(r.snap.stages[0].error, "server restarted");
  assert.deepEqual(
    r.run.stages.map((s) => [s.status, s.error]),
    r.snap.stages.map((s) => [s.status, s.error]),
  );
});

test("a crash (SIGKILL) gives a new epoch: the snapshot is reloaded, nothing delivered twice", async () => {
  const r = await followAcrossRestart("SIGKILL");
  assertOncePerEpochInOrder(r.got);
  assert.deepEqual(r.errors, []);
  const last = r.subscribed.at(-1);
  assert.equal(last.recovered, false, "a crash cannot be resumed");
  assert.notEqual(last.epoch, r.subscribed[0].epoch, "new epoch after a crash");
  assert.ok(r.loads >= 1, "the snapshot was reloaded");
  assert.equal(r.run.state, "failed");
  assert.equal(r.run.seq, r.snap.seq);
  assert.deepEqual(
    r.run.stages.map((s) => [s.status, s.error]),
    r.snap.stages.map((s) => [s.status, s.error]),
  );
});

// Found while writing these tests (the run came back failed "server restarted" with
// every stage completed); fixed in the server, kept so it stays fixed.
test("a run whose stage completes during the shutdown grace is not failed", async () => {
  const s = await Server.start();
  try {
    const c = await s.client();
    const run = await c.post("/api/v1/workflows", pipeline("sleep 1.5; echo done"));
    await waitFor(async () => (await c.get(`/api/v1/workflows/${run.id}`)).state == "running");
    c.disconnect();
    await s.stop("SIGTERM");
    await s.start();
    const c2 = await s.client();
    const snap = await c2.get(`/api/v1/workflows/${run.id}`);
    c2.disconnect();
    assert.equal(snap.stages[0].status, "completed");
    assert.equal(snap.stages[0].exit_code, 0);
    assert.notEqual(snap.state, "failed", `state ${snap.state}, error ${snap.error}, yet its only stage completed with exit 0`);
  } finally {
    await s.close();
  }
});

async function fetchHistory(c, id, since) {
  const events = [];
  for (;;) {
    const page = await c.get(`/api/v1/topics/workflow:${id}/history?since=${since}&limit=1000`);
    events.push(...page.events);
    if (!page.events.length || page.events.at(-1).seq >= page.seq) return events;
    since = page.events.at(-1).seq;
  }
}
