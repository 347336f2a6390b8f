// Bad input is refused before anything is sent, with the value named; what the
// server refuses becomes a SwitchboardError with its code, retryable and message.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Switchboard, SwitchboardError, ValidationError } from "../dist/index.js";
import { Server, waitFor } from "./helpers.js";

let server;
before(async () => (server = await Server.start()));
after(() => server.close());

const invalid = (field, value, re) => (e) => {
  assert.ok(e instanceof ValidationError && e instanceof SwitchboardError, String(e));
  assert.equal(e.code, "bad_request");
  assert.equal(e.retryable, false);
  assert.equal(e.field, field);
  assert.deepEqual(e.value, value);
  assert.match(e.message, re);
  return true;
};

test("every method checks its input before sending", async () => {
  const sent = [];
  const WebSocket = class extends globalThis.WebSocket {
    send(text) {
      sent.push(JSON.parse(text));
      super.send(text);
    }
  };
  const c = await server.client({ WebSocket, pingInterval: 60000 });
  await waitFor(() => c.rtt != null);
  sent.length = 0;
  assert.throws(() => c.subscribe("Bad"), invalid("topic", "Bad", /invalid topic "Bad": topic name has the character 'B'/));
  assert.throws(() => c.subscribe(""), invalid("topic", "", /topic name is empty/));
  const long = "x".repeat(129);
  assert.throws(() => c.subscribe(long), invalid("topic", long, /129 bytes long; at most 128/));
  assert.throws(() => c.subscribe("a b"), invalid("topic", "a b", /character ' '/));
  assert.throws(() => c.subscribe("é"), invalid("topic", "é", /character 'é'/));
  assert.throws(() => c.publish("Session:x", "e", 1), invalid("topic", "Session:x", /'S'/));
  assert.throws(() => c.publish("session:x", "", 1), invalid("event", "", /1 to 128 bytes/));
  assert.throws(() => c.publish("session:x", "a\nb", 1), invalid("event", "a\nb", /control characters/));
  assert.throws(() => c.publish("session:x", "e".repeat(129), 1), invalid("event", "e".repeat(129), /1 to 128/));
  assert.throws(() => c.pause("a/b"), invalid("workflow id", "a/b", /character '\/'/));
  assert.throws(() => c.confirm(""), invalid("workflow id", "", /non-empty/));
  assert.throws(() => c.chat("w:1", 42), { code: "bad_request" });
  // the limit is the server's, from its hello (64 KiB by default), counted in UTF-8
  assert.equal(c.limits.max_message_bytes, 65536);
  assert.throws(() => c.publish("session:x", "big", "é".repeat(33000)), (e) => {
    assert.ok(e instanceof ValidationError);
    assert.equal(e.field, "message size");
    assert.ok(e.value > 65536 && e.value < 70000, String(e.value));
    assert.match(e.message, /the server takes at most 65536/);
    return true;
  });
  assert.deepEqual(await c.publish("session:x", "fits", "x".repeat(60000)), { topic: "session:x", seq: 1 });
  assert.deepEqual(sent.map((m) => m.type), ["publish"], "only the valid publish was sent");
  c.disconnect();
});

test("a server error is a SwitchboardError with code, retryable and the original message", async () => {
  const narrow = await server.client({ token: server.token("narrow", "--sub-topics", "session:*", "--pub-topics", "session:*") });
  const states = [];
  const errors = [];
  const sub = narrow.subscribe("metrics", { onState: (s) => states.push(s), onError: (e) => errors.push(e) });
  const err = await sub.ready().catch((e) => e);
  assert.ok(err instanceof SwitchboardError, String(err));
  assert.equal(err.code, "forbidden");
  assert.equal(err.retryable, false);
  assert.equal(err.originalMessage.type, "subscribe");
  assert.equal(err.originalMessage.topic, "metrics");
  assert.match(err.message, /metrics/);
  assert.equal(sub.state, "unsubscribed");
  assert.deepEqual(states, ["unsubscribed"]);
  assert.equal(errors[0], err);
  await assert.rejects(sub.ready(), (e) => e == err, "ready() after the refusal rejects too");

  await assert.rejects(narrow.publish("user:1", "e", {}), { code: "forbidden", retryable: false });
  await assert.rejects(narrow.pause("some-run"), (e) => e.code == "forbidden" || e.code == "not_found");
  // the connection stays open, and what is allowed works
  assert.equal(narrow.state, "connected");
  assert.equal((await narrow.publish("session:ok", "e", 1)).seq, 1);

  // server-owned topics take no publish, whatever the token
  const op = await server.client();
  const owned = await op.publish("workflow:abc", "progress", {}).catch((e) => e);
  assert.equal(owned.code, "forbidden");
  assert.equal(owned.originalMessage.topic, "workflow:abc");
  narrow.disconnect();
  op.disconnect();
});

test("HTTP errors carry the API's code and the status", async () => {
  const c = await server.client();
  const e = await c.get("/api/v1/workflows/nope").catch((e) => e);
  assert.ok(e instanceof SwitchboardError);
  assert.equal(e.code, "not_found");
  assert.equal(e.status, 404);
  assert.equal(e.retryable, false);
  c.disconnect();
  const anon = new Switchboard({ url: server.url });
  await assert.rejects(anon.get("/api/v1/stats"), { status: 401 });
});

test("a closed server gives a disconnected error on HTTP, retryable", async () => {
  const c = new Switchboard({ url: "ws://127.0.0.1:9/ws", token: "t" });
  await assert.rejects(c.get("/healthz"), { code: "disconnected", retryable: true });
  c.connect();
  await waitFor(() => c.state == "connecting");
  c.disconnect();
  assert.equal(c.state, "disconnected");
});
