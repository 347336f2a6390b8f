//! `switchboard-load crashes`: the server SIGKILLed and restarted while runs go on and
//! subscribers watch them (issue 16). Runs start at a steady pace, each watched by W
//! subscribers of its `workflow:{id}` topic from seq 1; K times the server is killed
//! with SIGKILL and started again on the same data directory and port. Subscribers
//! reconnect and resume with `since` and `epoch`; after a crash the topics have a new
//! epoch (`recovered: false`: events delivered just before the kill may not have been
//! stored), so a subscriber reloads the log over HTTP, as the protocol says, and goes on
//! live. At the end every run must be finished, its log gapless from seq 1 with its
//! stage's lines in order and none twice, and every subscriber's copy equal to the log.

use crate::child::{free_port, start_on, Server};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct CrashArgs {
    /// The server binary (started here, on loopback).
    #[arg(long, default_value = "target/release/switchboard")]
    switchboard: PathBuf,
    /// SIGKILL restarts.
    #[arg(long, default_value_t = 10)]
    kills: u32,
    /// Seconds between two kills.
    #[arg(long, default_value_t = 8)]
    every: u64,
    #[command(flatten)]
    runs: WatchedRuns,
    /// Runs at once on the server.
    #[arg(long, default_value_t = 8)]
    concurrency: u32,
}

/// The watched runs of the scenarios that break something under them.
#[derive(clap::Args)]
pub struct WatchedRuns {
    /// Milliseconds between two run starts.
    #[arg(long, default_value_t = 500)]
    pub start_every: u64,
    /// Subscribers per run.
    #[arg(long, default_value_t = 3)]
    pub watchers: usize,
    /// Lines the run's first stage prints (50 a second).
    #[arg(long, default_value_t = 200)]
    pub lines: u32,
}

/// How long runs and subscribers may take to settle once the last restart is up.
const SETTLE: Duration = Duration::from_secs(120);
const TERMINAL: [&str; 3] = ["completed", "failed", "cancelled"];

#[derive(Default)]
pub(crate) struct Tally {
    pub started: AtomicU64,
    pub refused_starts: AtomicU64,
    /// Of those, refused with 503 and a retryable error (the database took no writes).
    pub unavailable: AtomicU64,
    pub resumed: AtomicU64,
    pub not_recovered: AtomicU64,
    pub reloads: AtomicU64,
    /// Events a subscriber had that the reloaded log did not: delivered, never stored.
    pub unstored: AtomicU64,
    pub duplicated: AtomicU64,
    pub missing: AtomicU64,
    pub errors: AtomicU64,
}

pub(crate) struct Run {
    id: String,
    /// The log's last seq once the run is over (0 until then).
    last: watch::Sender<u64>,
    watchers: Vec<tokio::task::JoinHandle<Vec<Value>>>,
}

pub async fn run(args: CrashArgs) -> anyhow::Result<()> {
    let data = std::env::temp_dir().join(format!("switchboard-crashes-{:x}", rand::random::<u32>()));
    std::fs::create_dir_all(&data)?;
    let port = free_port()?;
    let conc = args.concurrency.to_string();
    let extra = ["--concurrency", conc.as_str()];
    let (mut server, _) = start_on(&args.switchboard, &data, port, &extra).await?;
    let base = format!("http://{}", server.addr);
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let starter = tokio::spawn(start_runs(vec![base.clone()], args.runs.start_every, args.runs.watchers, pipeline(args.runs.lines, &[]), stop.clone(), tally.clone()));
    let begun = Instant::now();
    let mut down = Vec::new();
    for _ in 0..args.kills {
        tokio::time::sleep(Duration::from_secs(args.every)).await;
        let killed = Instant::now();
        kill9(&mut server);
        drop(server);
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 500)).await;
        server = start_on(&args.switchboard, &data, port, &extra).await?.0;
        down.push(killed.elapsed());
    }
    tokio::time::sleep(Duration::from_secs(args.every)).await;
    stop.store(true, Ordering::Relaxed);
    let runs = starter.await?;
    let verdict = check(&base, runs, args.runs.lines).await?;
    let t = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let worst = down.iter().max().copied().unwrap_or_default();
    println!("crashes: {} SIGKILL restarts, one every {} s, runs started every {} ms, {} subscribers each ({:.0} s)", args.kills, args.every, args.runs.start_every, args.runs.watchers, begun.elapsed().as_secs_f64());
    println!("  runs started {} ({} starts refused while the server was down); down at most {:.0} ms per kill", t(&tally.started), t(&tally.refused_starts), worst.as_secs_f64() * 1000.0);
    println!("  runs: {} completed, {} failed ('server restarted'), {} unfinished, {} lost (acknowledged, then unknown)", verdict.completed, verdict.failed, verdict.unfinished, verdict.lost);
    println!("  logs: {} events, {} runs with a gap or a line twice", verdict.events, verdict.broken_logs);
    println!("  resumes {} (recovered: false {}, each followed by a reload over HTTP: {}); events delivered but never stored, replaced by the reload: {}", t(&tally.resumed), t(&tally.not_recovered), t(&tally.reloads), t(&tally.unstored));
    println!("  subscribers {}: {} with a copy equal to the log; live events duplicated {}, missing {}; protocol errors {}", verdict.copies, verdict.equal, t(&tally.duplicated), t(&tally.missing), t(&tally.errors));
    let whole = verdict.lost == 0 && verdict.unfinished == 0 && verdict.broken_logs == 0 && verdict.equal == verdict.copies && t(&tally.duplicated) == 0 && t(&tally.missing) == 0;
    println!("  result: {}", if whole { "PASS: every run's log is whole and every subscriber's copy equals it" } else { "FAIL" });
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    anyhow::ensure!(whole, "a run or a subscriber's copy is not whole");
    Ok(())
}

pub(crate) fn kill9(server: &mut Server) {
    use nix::sys::signal::{kill, Signal};
    let _ = kill(nix::unistd::Pid::from_raw(server.child.id() as i32), Signal::SIGKILL);
    let _ = server.child.wait();
}

/// The watched runs' pipeline: a stage printing `line 1` to `line {lines}` at 50 a
/// second (on an agent with all of `runs_on`, when given), then a second stage.
pub(crate) fn pipeline(lines: u32, runs_on: &[&str]) -> Value {
    let script = format!("for i in $(seq 1 {lines}); do echo \"line $i\"; sleep 0.02; done");
    let mut print = json!({"id": "print", "run": script});
    if !runs_on.is_empty() {
        print["runs_on"] = json!(runs_on);
    }
    json!({"name": "crashes", "stages": [print, {"id": "after", "run": "echo done"}]})
}

/// Starts a run of `pipeline` every `every` ms until `stop`, through the nodes of
/// `bases` in turn, each with `watchers` subscribers (who dial the nodes in turn too).
pub(crate) async fn start_runs(bases: Vec<String>, every: u64, watchers: usize, pipeline: Value, stop: Arc<AtomicBool>, tally: Arc<Tally>) -> Vec<Run> {
    let http = crate::child::http();
    let mut runs = Vec::new();
    let mut asked = 0usize;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(every)).await;
        asked += 1;
        let reply = async {
            let base = &bases[asked % bases.len()];
            let resp = http.post(format!("{base}/api/v1/workflows")).json(&json!({"pipeline": pipeline})).send().await?;
            if resp.status().as_u16() == 503 && resp.headers().contains_key("retry-after") {
                tally.unavailable.fetch_add(1, Ordering::Relaxed);
            }
            resp.error_for_status()?.json::<Value>().await
        };
        let Some(id) = reply.await.ok().and_then(|v| v["id"].as_str().map(str::to_owned)) else {
            tally.refused_starts.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        tally.started.fetch_add(1, Ordering::Relaxed);
        let (last, rx) = watch::channel(0);
        let watchers = (0..watchers).map(|w| tokio::spawn(watch_run(bases.clone(), w, id.clone(), rx.clone(), tally.clone()))).collect();
        runs.push(Run { id, last, watchers });
    }
    runs
}

/// The frames of `topic` from seq `from` + 1 through `to`, over HTTP.
async fn history(http: &reqwest::Client, base: &str, topic: &str, from: u64, to: u64) -> anyhow::Result<Vec<Value>> {
    let mut frames: Vec<Value> = Vec::new();
    let mut since = from;
    while since < to {
        let page: Value = http.get(format!("{base}/api/v1/topics/{topic}/history?since={since}&limit=1000")).send().await?.error_for_status()?.json().await?;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        anyhow::ensure!(!events.is_empty(), "history of {topic} stops at {since}, short of {to}");
        since = events.last().and_then(|e| e["seq"].as_u64()).unwrap_or(to);
        frames.extend(events);
    }
    Ok(frames)
}

/// One subscriber of `workflow:{id}` from seq 1, through every crash, until it has the
/// log's last seq (or the settle time is over); its copy of the log.
async fn watch_run(bases: Vec<String>, first: usize, id: String, last: watch::Receiver<u64>, tally: Arc<Tally>) -> Vec<Value> {
    let topic = format!("workflow:{id}");
    let mut dials = first;
    let http = crate::child::http();
    let mut copy: Vec<Value> = Vec::new();
    let mut epoch: Option<String> = None;
    let mut over_at: Option<Instant> = None;
    'connect: loop {
        let done = *last.borrow();
        if done > 0 && (copy.len() as u64 >= done || over_at.get_or_insert_with(Instant::now).elapsed() > SETTLE) {
            return copy;
        }
        let base = &bases[dials % bases.len()];
        dials += 1;
        let url = format!("ws://{}/ws", base.trim_start_matches("http://"));
        let Ok(Ok((mut ws, _))) = tokio::time::timeout(Duration::from_secs(2), tokio_tungstenite::connect_async(&url)).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut sub = json!({"type": "subscribe", "topic": topic, "since": copy.len()});
        if let Some(e) = &epoch {
            sub["epoch"] = json!(e);
        }
        if !matches!(tokio::time::timeout(Duration::from_secs(5), ws.send(Message::text(sub.to_string()))).await, Ok(Ok(()))) {
            continue;
        }
        let mut ignore_upto = 0u64;
        loop {
            let done = *last.borrow();
            if done > 0 && (copy.len() as u64 >= done || over_at.get_or_insert_with(Instant::now).elapsed() > SETTLE) {
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                return copy;
            }
            let msg = match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
                Err(_) => continue,
                Ok(Some(Ok(Message::Text(t)))) => t,
                Ok(Some(Ok(_))) => continue,
                Ok(_) => continue 'connect,
            };
            let Ok(v) = serde_json::from_str::<Value>(msg.as_str()) else { continue };
            match v["type"].as_str() {
                Some("event") => {
                    let seq = v["seq"].as_u64().unwrap_or(0);
                    let next = copy.len() as u64 + 1;
                    if seq == next {
                        copy.push(v);
                    } else if seq > next {
                        tally.missing.fetch_add(seq - next, Ordering::Relaxed);
                        copy.resize(seq as usize - 1, Value::Null);
                        copy.push(v);
                    } else if seq > ignore_upto {
                        tally.duplicated.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some("subscribed") => {
                    let resumed = epoch.is_some();
                    if resumed {
                        tally.resumed.fetch_add(1, Ordering::Relaxed);
                    }
                    if v["recovered"] != true {
                        tally.not_recovered.fetch_add(1, Ordering::Relaxed);
                        // the protocol's answer: reload over HTTP, ignore events not above it
                        let upto = v["seq"].as_u64().unwrap_or(0);
                        let Ok(log) = history(&http, base, &topic, 0, upto).await else {
                            // the old epoch kept, so that the next try reloads too
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue 'connect;
                        };
                        tally.reloads.fetch_add(1, Ordering::Relaxed);
                        let unstored = copy.iter().enumerate().filter(|(i, f)| log.get(*i) != Some(f)).count();
                        tally.unstored.fetch_add(unstored as u64, Ordering::Relaxed);
                        copy = log;
                        ignore_upto = copy.len() as u64;
                    }
                    epoch = v["epoch"].as_str().map(str::to_owned);
                }
                Some("error") => {
                    // a refused subscribe would leave this socket idle: dial again
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue 'connect;
                }
                _ => {}
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct Verdict {
    pub completed: u64,
    pub failed: u64,
    pub unfinished: u64,
    pub lost: u64,
    pub events: u64,
    pub broken_logs: u64,
    pub copies: u64,
    pub equal: u64,
    /// Runs that went to another node for a free agent (several nodes).
    pub moved_for_agent: u64,
    /// Runs an agent brought to another node mid-stage (several nodes).
    pub brought_by_agent: u64,
}

/// Waits for every run to finish, then holds each log and each subscriber's copy to it.
pub(crate) async fn check(base: &str, runs: Vec<Run>, lines: u32) -> anyhow::Result<Verdict> {
    let http = crate::child::http();
    let mut v = Verdict::default();
    let mut logs = Vec::new();
    let deadline = Instant::now() + SETTLE;
    for run in &runs {
        let state = loop {
            let s = match http.get(format!("{base}/api/v1/workflows/{}", run.id)).send().await {
                Ok(r) if r.status().as_u16() == 404 => break "lost".to_owned(),
                Ok(r) => r.json::<Value>().await.unwrap_or_default()["state"].as_str().unwrap_or("").to_owned(),
                Err(_) => String::new(),
            };
            if TERMINAL.contains(&s.as_str()) || Instant::now() > deadline {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        match state.as_str() {
            "completed" => v.completed += 1,
            "failed" | "cancelled" => v.failed += 1,
            "lost" => v.lost += 1,
            _ => v.unfinished += 1,
        }
        let topic = format!("workflow:{}", run.id);
        let seq = http.get(format!("{base}/api/v1/topics/{topic}/history?limit=0")).send().await?.json::<Value>().await?["seq"].as_u64().unwrap_or(0);
        let log = history(&http, base, &topic, 0, seq).await.unwrap_or_default();
        v.events += log.len() as u64;
        let said = |what: &str| log.iter().any(|e| e["event"] == "log_line" && e["data"]["message"].as_str().is_some_and(|m| m.starts_with("moved from node") && m.contains(what)));
        v.moved_for_agent += u64::from(said("needs an agent with"));
        v.brought_by_agent += u64::from(said("which runs stage"));
        if !log_is_whole(&log, seq, &state, lines) {
            v.broken_logs += 1;
        }
        let _ = run.last.send(seq.max(1));
        logs.push(log);
    }
    for (run, log) in runs.into_iter().zip(logs) {
        for w in run.watchers {
            let copy = w.await?;
            v.copies += 1;
            if copy == log {
                v.equal += 1;
            }
        }
    }
    Ok(v)
}

/// Seqs 1..=last in order; the first stage's lines 1, 2, 3, ... with none twice (all of
/// them when the run completed); the last `workflow_status` says how the run ended.
fn log_is_whole(log: &[Value], last: u64, state: &str, lines: u32) -> bool {
    let gapless = log.len() as u64 == last && log.iter().enumerate().all(|(i, f)| f["seq"].as_u64() == Some(i as u64 + 1));
    let mut next = 1u64;
    let mut in_order = true;
    for f in log.iter().filter(|f| f["event"] == "terminal_output" && f["data"]["stage_id"] == "print") {
        for l in f["data"]["output"].as_str().unwrap_or("").lines() {
            if let Some(n) = l.strip_prefix("line ").and_then(|n| n.trim().parse::<u64>().ok()) {
                in_order &= n == next;
                next = n + 1;
            }
        }
    }
    let ended = log.iter().rev().find(|f| f["event"] == "workflow_status").and_then(|f| f["data"]["state"].as_str()) == Some(state);
    gapless && in_order && ended && (state != "completed" || next == u64::from(lines) + 1)
}

/// Failed runs whose snapshot says `needle` (a stage's error), from the run list (every
/// run the server knows: the scenarios start theirs on a fresh one).
pub(crate) async fn failed_with(base: &str, needle: &str) -> anyhow::Result<u64> {
    let http = crate::child::http();
    let (mut n, mut cursor) = (0, None::<String>);
    loop {
        let mut url = format!("{base}/api/v1/workflows?state=failed&limit=200");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: serde_json::Value = http.get(url).send().await?.error_for_status()?.json().await?;
        let items = page["workflows"].as_array().cloned().unwrap_or_default();
        for id in items.iter().filter_map(|w| w["id"].as_str()) {
            let run = http.get(format!("{base}/api/v1/workflows/{id}")).send().await?.text().await?;
            n += u64::from(run.contains(needle));
        }
        match page["next_cursor"].as_str() {
            Some(c) if !items.is_empty() => cursor = Some(c.to_owned()),
            _ => return Ok(n),
        }
    }
}
