#!/usr/bin/env node
// Fan-out load generator for the Socket.IO peer (server.js), shaped like Switchboard's
// `switchboard-load fanout`: N subscribers in one room, publishers alternating between nodes,
// delivered/expected, gaps, latency, deliveries per second.
//
//   node load.js --nodes 127.0.0.1:4101,127.0.0.1:4102 --subscribers 1000 --rate 100 --duration 10
//   node load.js --nodes ... --subscribers 100 --rate 0 --window 64 --duration 10
//
// --rate N      events per second (all publishers together); 0 = as fast as the window allows
// --window W    with --rate 0: at most W events published but not yet delivered to all subscribers
// --duration S  seconds of publishing; then up to 10 s more for stragglers
// --payload B   padding bytes per event (default 100)
// --server-pids P1,P2,...  optional: report these processes' CPU seconds over the run (Linux /proc)
//
// Prints one JSON line on stdout; progress goes to stderr.
"use strict";

const fs = require("node:fs");
const { io } = require("socket.io-client");

// ---------- arguments ----------
function parseArgs(argv) {
  const opts = {
    nodes: "127.0.0.1:4101,127.0.0.1:4102",
    subscribers: 1000,
    rate: 100,
    window: 64,
    duration: 10,
    payload: 100,
    room: "bench.0",
    concurrency: 100,
    "server-pids": "",
    target: "socket.io x2",
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    let key = a.slice(2);
    let val;
    const eq = key.indexOf("=");
    if (eq >= 0) {
      val = key.slice(eq + 1);
      key = key.slice(0, eq);
    } else {
      val = argv[++i];
    }
    if (!(key in opts)) throw new Error(`unknown option --${key}`);
    if (val === undefined) throw new Error(`--${key} needs a value`);
    opts[key] = typeof opts[key] === "number" ? Number(val) : val;
    if (Number.isNaN(opts[key])) throw new Error(`--${key}: not a number: ${val}`);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const nodes = opts.nodes.split(",").map((s) => s.trim()).filter(Boolean);
const N = opts.subscribers;
const log = (...a) => process.stderr.write(`[load] ${a.join(" ")}\n`);

// ---------- clock (µs, monotonic, same process for sender and receiver) ----------
const nowUs = () => {
  const t = process.hrtime();
  return t[0] * 1e6 + t[1] / 1e3;
};

// ---------- log-linear histogram (HDR-like: ~0.8 % precision, µs, O(1) per record) ----------
const SUB = 128; // sub-buckets per power of two
const LINEAR = 2 * SUB; // values below this are exact
const hist = new Float64Array(LINEAR + 40 * SUB);
let histCount = 0;
let histMax = 0;
function record(us) {
  let v = us < 0 ? 0 : Math.floor(us);
  if (v > histMax) histMax = v;
  histCount++;
  if (v < LINEAR) {
    hist[v]++;
    return;
  }
  const shift = 31 - Math.clz32(v > 0x7fffffff ? 0x7fffffff : v) - 7; // v >> shift in [128, 255]
  const idx = LINEAR + (shift - 1) * SUB + ((v >> shift) - SUB);
  hist[idx < hist.length ? idx : hist.length - 1]++;
}
function bucketHigh(idx) {
  if (idx < LINEAR) return idx;
  const shift = Math.floor((idx - LINEAR) / SUB) + 1;
  const m = ((idx - LINEAR) % SUB) + SUB;
  return (m + 1) * 2 ** shift - 1; // highest value the bucket stands for (like HdrHistogram)
}
function quantileUs(q) {
  if (histCount === 0) return 0;
  const want = Math.max(1, Math.ceil(q * histCount));
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i];
    if (seen >= want) return Math.min(bucketHigh(i), histMax);
  }
  return histMax;
}

// ---------- /proc CPU of the servers ----------
const serverPids = opts["server-pids"].split(",").map(Number).filter((p) => p > 0);
const CLK_TCK = 100;
function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime + stime
  } catch {
    return NaN;
  }
}
const serversCpu = () => serverPids.reduce((s, p) => s + cpuSeconds(p), 0);

// ---------- state ----------
let delivered = 0;
let gaps = 0; // times a subscriber saw a sequence number jump forward
let outOfOrder = 0; // sequence number not above the last one seen from that publisher
let published = 0;
let publishing = false;
const padding = "x".repeat(opts.payload);

function connect(node) {
  return new Promise((resolve, reject) => {
    const s = io(`ws://${node}`, {
      transports: ["websocket"],
      forceNew: true, // one WebSocket per client: no multiplexing over a shared Manager
      reconnection: false,
      timeout: 20000,
    });
    s.once("connect", () => resolve(s));
    s.once("connect_error", (e) => {
      s.close();
      reject(new Error(`connect ${node}: ${e.message}`));
    });
  });
}

function joinRoom(s, room) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("join timed out")), 20000);
    s.emit("join", room, () => {
      clearTimeout(t);
      resolve();
    });
  });
}

async function openSubscribers(onReady) {
  const subs = new Array(N);
  let next = 0;
  async function worker() {
    while (next < N) {
      const i = next++;
      const s = await connect(nodes[i % nodes.length]);
      const last = new Float64Array(nodes.length).fill(-1); // last seq per publisher
      s.on("ev", (p) => {
        const t = nowUs();
        delivered++;
        const pub = p.p;
        const prev = last[pub];
        if (p.s <= prev) outOfOrder++;
        else {
          if (p.s !== prev + 1) gaps++;
          last[pub] = p.s;
        }
        record(t - p.t);
        if (publishing && waiting) pumpSoon();
      });
      await joinRoom(s, opts.room);
      subs[i] = s;
    }
  }
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, N) }, worker));
  return subs;
}

// ---------- publishing ----------
let publishers = [];
const seqs = [];
let waiting = false; // window mode: the pump is waiting for deliveries
let pumpQueued = false;

function publishOne() {
  const k = published % publishers.length;
  const payload = { p: k, s: seqs[k]++, t: nowUs(), pad: padding };
  publishers[k].emit("pub", { room: opts.room, payload });
  published++;
}

function pumpSoon() {
  if (!pumpQueued) {
    pumpQueued = true;
    setImmediate(pumpWindow);
  }
}

function pumpWindow() {
  pumpQueued = false;
  if (!publishing) return;
  // same rule as the Rust generator: events fully delivered = delivered / subscribers
  let budget = Math.floor(delivered / N) + opts.window - published;
  // emit in slices so the event loop keeps reading deliveries
  let n = Math.min(budget, 64);
  while (n-- > 0) publishOne();
  budget = Math.floor(delivered / N) + opts.window - published;
  waiting = budget <= 0;
  if (!waiting) pumpSoon();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const t0 = Date.now();
  const subs = await openSubscribers();
  log(`${N} subscribers connected and joined ${opts.room} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  publishers = await Promise.all(nodes.map(connect));
  for (let k = 0; k < publishers.length; k++) seqs.push(0);
  await sleep(200);

  const cpu0 = process.cpuUsage();
  const srv0 = serversCpu();
  const start = nowUs();
  const durUs = opts.duration * 1e6;
  publishing = true;

  if (opts.rate > 0) {
    await new Promise((resolve) => {
      const tick = () => {
        const el = nowUs() - start;
        if (el >= durUs) return resolve();
        const due = Math.floor((el / 1e6) * opts.rate);
        while (published < due) publishOne();
        setTimeout(tick, 1);
      };
      tick();
    });
  } else {
    pumpSoon();
    await sleep(opts.duration * 1000);
  }
  publishing = false;
  const pubEnd = nowUs();

  const expected = published * N;
  const drainUntil = Date.now() + 10000;
  while (delivered < expected && Date.now() < drainUntil) await sleep(10);
  const end = nowUs();
  const elapsed = (end - start) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const srvCpu = serversCpu() - srv0;

  const r3 = (x) => Math.round(x * 1000) / 1000;
  const out = {
    target: opts.target,
    subscribers: N,
    nodes: nodes.length,
    mode: opts.rate > 0 ? `rate ${opts.rate}/s` : `window ${opts.window}`,
    published,
    expected,
    delivered,
    lost: Math.max(0, expected - delivered),
    gaps,
    out_of_order: outOfOrder,
    elapsed_s: r3(elapsed),
    publish_s: r3((pubEnd - start) / 1e6),
    deliveries_per_s: Math.round(delivered / elapsed),
    p50_ms: r3(quantileUs(0.5) / 1000),
    p99_ms: r3(quantileUs(0.99) / 1000),
    max_ms: r3(histMax / 1000),
    loadgen_cpu_pct: Math.round(((cpu.user + cpu.system) / 1e6 / elapsed) * 100),
  };
  if (serverPids.length) {
    out.server_cpu_s = r3(srvCpu);
    out.server_cpu_pct = Math.round((srvCpu / elapsed) * 100);
  }
  process.stdout.write(JSON.stringify(out) + "\n");

  for (const s of subs) s.close();
  for (const s of publishers) s.close();
  setTimeout(() => process.exit(0), 200);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
