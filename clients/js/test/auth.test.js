// Tokens against the real server: a refused one (close 1008) asks getToken once; an
// expired one is renewed at the reconnect; HTTP 401 asks once too.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, test } from "node:test";
import { Switchboard } from "../dist/index.js";
import { BIN, Server, sleep, waitFor } from "./helpers.js";

let server;
before(async () => (server = await Server.start()));
after(() => server.close());

test("a refused token is replaced by getToken, once", async () => {
  let calls = 0;
  const c = new Switchboard({ url: server.url, token: "not-a-token", getToken: () => (calls++, server.token("fresh", "--operator")) });
  const infos = [];
  c.on("state", (s, info) => infos.push([s, info.code]));
  c.connect();
  await waitFor(() => c.state == "connected", 10000);
  assert.equal(calls, 1);
  assert.deepEqual(infos.slice(0, 2), [["connecting", undefined], ["connecting", undefined]], "renewed at once, no backoff");
  assert.equal((await c.publish("session:a", "e", 1)).seq, 1);
  c.disconnect();
});

test("a getToken that keeps giving bad tokens stops after one retry: disconnected, unauthorized", async () => {
  let calls = 0;
  const c = new Switchboard({ url: server.url, getToken: () => (calls++, "still-bad") });
  let info;
  c.on("disconnected", (i) => (info = i));
  c.connect();
  await waitFor(() => info, 10000, "disconnected");
  assert.equal(info.code, 1008);
  assert.equal(info.error.code, "unauthorized");
  assert.equal(calls, 2, "the first token, then one renewal");
  await sleep(1500);
  assert.equal(calls, 2);
  assert.equal(c.state, "disconnected");
});

test("a static bad token is not retried", async () => {
  const c = new Switchboard({ url: server.url, token: "bad" });
  const states = [];
  c.on("state", (s) => states.push(s));
  c.connect();
  await waitFor(() => c.state == "disconnected", 10000);
  await sleep(1200);
  assert.deepEqual(states, ["connecting", "disconnected"]);
});

test("a token that expires while connected is renewed at the reconnect", async () => {
  const short = execFileSync(BIN, ["token", "create", "--sub", "short", "--data-dir", server.dir, "--ttl", "2s", "--operator"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  }).trim();
  let calls = 0;
  const c = await server.client({ token: short, getToken: () => (calls++, server.token("long", "--operator")) });
  assert.equal(calls, 0, "the given token is used first");
  await sleep(2100);
  await server.stop("SIGTERM");
  await server.start();
  c.connect();
  await waitFor(() => c.state == "connected" && calls == 1, 15000, "reconnected with a new token");
  assert.equal((await c.publish("session:exp", "e", 1)).seq, 1);
  c.disconnect();
});

test("HTTP 401 asks getToken once and retries", async () => {
  let calls = 0;
  const c = new Switchboard({ url: server.url, token: "bad", getToken: () => (calls++, server.token("h", "--operator")) });
  const stats = await c.get("/api/v1/stats");
  assert.equal(typeof stats.active_connections, "number");
  assert.equal(calls, 1);
});
