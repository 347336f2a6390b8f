// The real server for the tests: one per test file, on a free port and a fresh data
// folder, stopped (or killed) and started again on both when a test asks.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Switchboard } from "../dist/index.js";

export const BIN = process.env.SWITCHBOARD_BIN ?? new URL("../../../target/debug/switchboard", import.meta.url).pathname;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export { sleep };

/** Polls `cond` until it is truthy (its value is returned) or `ms` pass. */
export async function waitFor(cond, ms = 10000, what = "condition") {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const running = new Set();
process.on("exit", () => running.forEach((p) => p.kill("SIGKILL")));

export class Server {
  static async start(extra = []) {
    const s = new Server(await freePort(), mkdtempSync(join(tmpdir(), "switchboard-js-")), extra);
    await s.start();
    return s;
  }

  constructor(port, dir, extra) {
    Object.assign(this, { port, dir, extra, log: "" });
    this.url = `ws://127.0.0.1:${port}/ws`;
    this.http = `http://127.0.0.1:${port}`;
  }

  async start() {
    const args = ["--port", String(this.port), "--data-dir", this.dir, "--log", "info", "--inline-pipelines", "on", ...this.extra];
    const p = spawn(BIN, args, { cwd: this.dir, stdio: ["ignore", "pipe", "pipe"] });
    this.proc = p;
    running.add(p);
    p.stdout.on("data", (d) => (this.log += d));
    p.stderr.on("data", (d) => (this.log += d));
    this.exited = new Promise((r) => p.on("exit", (code, signal) => (running.delete(p), r({ code, signal }))));
    let gone = false;
    this.exited.then(() => (gone = true));
    await waitFor(async () => {
      if (gone) throw new Error(`the server exited at start:\n${this.log}`);
      try {
        return (await fetch(`${this.http}/healthz`)).ok;
      } catch {
        return false;
      }
    }, 30000, "GET /healthz");
  }

  /** SIGTERM (a clean shutdown) or SIGKILL (a crash); resolves once it is gone. */
  async stop(signal = "SIGTERM") {
    if (!this.proc || this.proc.exitCode != null || this.proc.signalCode != null) return;
    this.proc.kill(signal);
    return this.exited;
  }

  async close() {
    await this.stop("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A token from `switchboard token create` (flags such as "--operator"). */
  token(sub, ...flags) {
    return execFileSync(BIN, ["token", "create", "--sub", sub, "--data-dir", this.dir, "--ttl", "1h", ...flags], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"], // not its "valid until" notice
    }).trim();
  }

  /** A connected client (an operator's unless `token` is given). */
  async client(opts = {}) {
    const c = new Switchboard({ url: this.url, token: opts.getToken ? undefined : this.token("test", "--operator"), ...opts });
    c.connect();
    await waitFor(() => c.state == "connected", 10000, "connected");
    return c;
  }
}

/** An inline pipeline of one stage running `run`. */
export const pipeline = (run, more = {}) => ({ pipeline: { name: "t", stages: [{ id: "s", run, ...more }] } });
