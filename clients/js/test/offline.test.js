// What is sent while offline waits (bounded) and goes out, in order, after the
// reconnect. (A request on the wire when the link drops: unit.test.js.)
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Switchboard, SwitchboardError } from "../dist/index.js";
import { Server, waitFor } from "./helpers.js";

let server;
before(async () => (server = await Server.start()));
after(() => server.close());

test("publishes made while disconnected are sent after the reconnect, in order", async () => {
  const c = await server.client();
  const got = [];
  await c.subscribe("session:q", { onEvent: (ev) => got.push(ev.data) }).ready();
  const states = [];
  c.on("state", (s, info) => states.push([s, info.code]));
  await server.stop("SIGTERM");
  await waitFor(() => c.state == "connecting", 5000, "connecting");
  assert.equal(states[0][0], "connecting");
  assert.equal(states[0][1], 1001, "a server going away closes with 1001");
  const sent = [1, 2, 3].map((i) => c.publish("session:q", "e", i));
  assert.equal(c.queued, 3);
  await server.start();
  c.connect(); // retry now, not at the end of the backoff
  const acks = await Promise.all(sent);
  assert.equal(c.queued, 0);
  assert.deepEqual(acks.map((a) => a.seq), [1, 2, 3], "a memory topic starts over after a restart");
  // the topic was resubscribed before the queue was flushed: its own events come back
  await waitFor(() => got.length == 3, 5000, "the queued events");
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal(states.at(-1)[0], "connected");
  c.disconnect();
});

test("the offline queue is bounded, and disconnect() rejects what waits", async () => {
  const c = new Switchboard({ url: server.url, token: server.token("q", "--operator"), maxQueue: 2 });
  const a = c.publish("session:b", "e", 1);
  const b = c.pause("some-run");
  assert.equal(c.queued, 2);
  assert.throws(() => c.publish("session:b", "e", 3), (e) => {
    assert.ok(e instanceof SwitchboardError);
    assert.equal(e.code, "queue_full");
    assert.equal(e.retryable, true);
    return true;
  });
  c.disconnect();
  await assert.rejects(a, { code: "closed" });
  await assert.rejects(b, { code: "closed" });
  assert.equal(c.queued, 0);
});
