// The client against a scripted socket, for what a real server cannot be made to do
// on cue: a reply lost to a dropped link, a duplicate or skipped seq, a silent peer.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Backoff, Switchboard } from "../dist/index.js";
import { waitFor } from "./helpers.js";

class FakeWS {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    FakeWS.all.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code, reason) {
    this.closed = [code, reason];
    this.onerror?.({}); // as undici may, at once: must not re-enter the client
  }
  recv(m) {
    this.onmessage({ data: JSON.stringify({ v: 1, ...m }) });
  }
  hello() {
    this.recv({ type: "hello", client_id: "c1", server_ts: 0, heartbeat_ms: 10000, limits: { max_subscriptions: 3, max_message_bytes: 1000, rate_per_min: 100 } });
  }
  last(type) {
    return this.sent.findLast((m) => m.type == type);
  }
  hangup(code = 1006, reason = "") {
    this.onclose({ code, reason });
  }
}

const ev = (topic, seq, data = seq) => ({ type: "event", topic, seq, ts: 1, event: "e", data });

function setup(opts = {}) {
  FakeWS.all = [];
  const c = new Switchboard({ url: "http://sb.test:3000", token: "tok", WebSocket: FakeWS, minReconnectDelay: 1, pingInterval: 1e6, ...opts });
  c.connect();
  const ws = () => FakeWS.all.at(-1);
  return { c, ws };
}

test("the URL, the token and the HTTP base come from the options", () => {
  const { c, ws } = setup();
  assert.equal(ws().url, "ws://sb.test:3000/ws?token=tok");
  assert.equal(c.httpUrl, "http://sb.test:3000");
  c.disconnect();
});

test("resubscribes with since and epoch and drops the duplicates of a replay", async () => {
  const { c, ws } = setup();
  const got = [];
  const sub = c.subscribe("t", { onEvent: (e) => got.push(e.seq) });
  ws().hello();
  const s1 = ws().last("subscribe");
  assert.deepEqual(s1, { v: 1, type: "subscribe", topic: "t", id: s1.id });
  ws().recv(ev("t", 9)); // before `subscribed`: not this subscription's
  ws().recv({ type: "subscribed", topic: "t", seq: 0, epoch: "e1", recovered: true, id: s1.id });
  assert.equal(sub.state, "subscribed");
  [1, 2].forEach((n) => ws().recv(ev("t", n)));
  ws().hangup();
  assert.equal(sub.state, "subscribing");
  await waitFor(() => FakeWS.all.length == 2);
  ws().hello();
  const s2 = ws().last("subscribe");
  assert.equal(s2.since, 2);
  assert.equal(s2.epoch, "e1");
  ws().recv({ type: "subscribed", topic: "t", seq: 3, epoch: "e1", recovered: true, id: s2.id });
  [2, 3, 3, 4].forEach((n) => ws().recv(ev("t", n)));
  assert.deepEqual(got, [1, 2, 3, 4]);
  c.disconnect();
});

test("a skipped seq is reported as the server's fault, not hidden", () => {
  const { c, ws } = setup();
  const errors = [];
  c.on("error", (e) => errors.push(e));
  c.subscribe("t");
  ws().hello();
  ws().recv({ type: "subscribed", topic: "t", seq: 0, epoch: "e", recovered: true, id: ws().last("subscribe").id });
  ws().recv(ev("t", 1));
  ws().recv(ev("t", 3));
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /seq 2 to 2 of t never arrived/);
  c.disconnect();
});

test("a new epoch reloads the snapshot; events it reflects are dropped", async () => {
  const { c, ws } = setup();
  const got = [];
  let release;
  const loads = [];
  c.subscribe("t", {
    since: 5,
    epoch: "old",
    onEvent: (e) => got.push(e.data),
    loadSnapshot: (topic) => (loads.push(topic), new Promise((r) => (release = r))),
  });
  ws().hello();
  const s = ws().last("subscribe");
  assert.deepEqual([s.since, s.epoch], [5, "old"]);
  ws().recv({ type: "subscribed", topic: "t", seq: 3, epoch: "new", recovered: true, id: s.id });
  await waitFor(() => loads.length);
  assert.deepEqual(loads, ["t"], "recovered, but in another epoch: reload");
  [4, 5, 6].forEach((n) => ws().recv(ev("t", n, `new${n}`)));
  assert.deepEqual(got, [], "held while the snapshot loads");
  release({ seq: 5 });
  await waitFor(() => got.length == 1);
  ws().recv(ev("t", 7, "new7"));
  assert.deepEqual(got, ["new6", "new7"]);
  c.disconnect();
});

test("a request on the wire when the link drops rejects; a queued one waits for the next", async () => {
  const { c, ws } = setup();
  ws().hello();
  const onWire = c.publish("a", "e", 1);
  ws().hangup();
  await assert.rejects(onWire, { code: "disconnected", message: /check the state before retrying/ });
  const queued = c.publish("a", "e", 2);
  assert.equal(c.queued, 1);
  await waitFor(() => FakeWS.all.length == 2);
  ws().hello();
  const m = ws().last("publish");
  assert.equal(m.data, 2);
  ws().recv({ type: "ack", id: m.id, result: { topic: "a", seq: 7 } });
  assert.deepEqual(await queued, { topic: "a", seq: 7 });
  c.disconnect();
});

test("the server's limits apply from its hello", () => {
  const { c, ws } = setup();
  ws().hello();
  assert.throws(() => c.publish("a", "e", "x".repeat(1000)), { field: "message size" });
  ["a", "b", "c"].forEach((t) => c.subscribe(t));
  assert.throws(() => c.subscribe("d"), { code: "too_many_subscriptions" });
  c.subscribe("a"); // a second handle on a topic is not one more
  c.disconnect();
});

test("no hello, or no pong, in time ends the connection and retries", async () => {
  const { c, ws } = setup({ pongTimeout: 30 });
  await waitFor(() => FakeWS.all.length == 2, 2000, "a retry after no hello");
  assert.deepEqual(FakeWS.all[0].closed, [4000, "no hello in time"]);
  ws().hello();
  assert.equal(c.state, "connected");
  const ping = ws().last("ping");
  assert.equal(typeof ping.ts, "number");
  await waitFor(() => FakeWS.all.length == 3, 2000, "a retry after no pong");
  assert.deepEqual(FakeWS.all[1].closed, [4000, "no pong in time"]);
  c.disconnect();
});

test("an error with no close (Node 20's WebSocket on a refused connection) still retries", async () => {
  const { c, ws } = setup();
  ws().onerror({});
  assert.equal(c.state, "connecting");
  await waitFor(() => FakeWS.all.length == 2, 2000, "a retry");
  assert.deepEqual(FakeWS.all[0].closed, [1000, "connection failed"]);
  c.disconnect();
});

test("close 1000 and 1008 do not reconnect; 1008 asks getToken once", async () => {
  let a = setup();
  a.ws().hangup(1000);
  assert.equal(a.c.state, "disconnected");
  a = setup();
  const seen = [];
  a.c.on("disconnected", (info) => seen.push(info));
  a.ws().hangup(1008, "unauthorized");
  assert.equal(a.c.state, "disconnected");
  assert.equal(seen[0].error.code, "unauthorized");
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(FakeWS.all.length, 1, "no retry without a way to a new token");

  let calls = 0;
  const b = setup({ token: "old", getToken: () => `new${++calls}` });
  b.ws().hangup(1008, "expired");
  await waitFor(() => FakeWS.all.length == 2);
  assert.match(b.ws().url, /token=new1/);
  b.ws().hangup(1008, "expired");
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(calls, 1, "one retry, not a loop");
  assert.equal(b.c.state, "disconnected");
  // once connected, a later 1008 may renew again
  b.c.connect();
  await waitFor(() => FakeWS.all.length == 3);
  b.ws().hello();
  b.ws().hangup(1008, "expired");
  await waitFor(() => FakeWS.all.length == 4);
  assert.equal(calls, 2);
  b.c.disconnect();
});

test("coming back online skips the backoff", async () => {
  const target = new EventTarget();
  globalThis.addEventListener = target.addEventListener.bind(target);
  globalThis.removeEventListener = target.removeEventListener.bind(target);
  try {
    const { c, ws } = setup({ minReconnectDelay: 60000 });
    ws().hello();
    ws().hangup();
    assert.equal(c.state, "connecting");
    assert.equal(FakeWS.all.length, 1);
    target.dispatchEvent(new Event("online"));
    assert.equal(FakeWS.all.length, 2);
    c.disconnect();
  } finally {
    delete globalThis.addEventListener;
    delete globalThis.removeEventListener;
  }
});

test("backoff: full jitter under a doubling ceiling, first delay in [base/2, base)", () => {
  const b = new Backoff(1000, 30000);
  assert.equal(b.next(0), 500);
  assert.ok(b.next(0.999) < 2000);
  assert.equal(b.next(0), 0);
  for (let i = 0; i < 100; i++) assert.ok(b.next(0.9999) <= 30000);
  b.reset();
  assert.ok(b.next(0.999) < 1000);
});
