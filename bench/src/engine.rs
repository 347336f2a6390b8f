//! The job engine under load (issue 4): a stage printing 10,000 lines a second, a
//! hundred runs submitted at once behind a concurrency limit, and the engine's own
//! cost to start a stage. Each has a baseline measured in the same run: the same
//! emitter read straight from its pipe, and a bare `sh -c` spawn.

use crate::frames::now_us;
use crate::scenario::{Target, Ws};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

/// `emit`: prints `rate` lines a second for `secs` seconds, each `line N t=MICROS`
/// and padding, paced in 1 ms steps; the stage the line benchmark runs.
pub fn emit(rate: u64, secs: u64, pad: usize) -> std::io::Result<()> {
    let total = rate * secs;
    let padding = "x".repeat(pad);
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out.lock());
    let start = Instant::now();
    let mut n = 0u64;
    while n < total {
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while n < due {
            writeln!(out, "line {n} t={} {padding}", now_us())?;
            n += 1;
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(1));
    }
    out.flush()
}

/// (line number, send time) of an emitted line.
fn read_line(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("line ")?;
    let (n, rest) = rest.split_once(" t=")?;
    let t = rest.split(' ').next()?;
    Some((n.parse().ok()?, t.parse().ok()?))
}

/// Every line seen once? Counts of missing and duplicated lines, and latencies.
struct LineTally {
    seen: Vec<u8>,
    hist: Histogram<u64>,
    duplicates: u64,
}

impl LineTally {
    fn new(total: u64) -> LineTally {
        LineTally {
            seen: vec![0; total as usize],
            hist: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            duplicates: 0,
        }
    }

    fn record(&mut self, line: &str, now: u64) {
        let Some((n, t)) = read_line(line) else { return };
        let Some(slot) = self.seen.get_mut(n as usize) else { return };
        if *slot > 0 {
            self.duplicates += 1;
        }
        *slot = slot.saturating_add(1);
        let _ = self.hist.record(now.saturating_sub(t).max(1));
    }

    fn received(&self) -> u64 {
        self.seen.iter().filter(|s| **s > 0).count() as u64
    }

    fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

#[derive(Debug)]
pub struct LinesReport {
    pub expected: u64,
    pub received: u64,
    pub duplicates: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub server_cpu_percent: f64,
    pub elapsed_s: f64,
    pub events: u64,
}

async fn connect(target: &Target) -> anyhow::Result<Ws> {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", target.addr)).await?;
    Ok(ws)
}

pub(crate) async fn submit(http: &reqwest::Client, target: &Target, pipeline: Value) -> anyhow::Result<String> {
    let url = format!("http://{}/api/v1/workflows", target.addr);
    let resp = http.post(url).json(&json!({ "pipeline": pipeline })).send().await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    anyhow::ensure!(status.as_u16() == 201, "submit failed: {status} {body}");
    body["id"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("no id in {body}"))
}

/// One stage printing `rate` lines/s for `secs` s through the engine (on an agent with
/// `runs_on`, if any): every line must reach a subscriber once; latency from print to
/// receipt; the server's CPU.
pub async fn lines(target: &Target, emitter: &str, rate: u64, secs: u64, runs_on: &[&str]) -> anyhow::Result<LinesReport> {
    let http = reqwest::Client::new();
    let total = rate * secs;
    let run = format!("'{emitter}' emit --rate {rate} --duration {secs}");
    let before = target.proc();
    let start = Instant::now();
    let id = submit(&http, target, json!({"name":"bench-lines","stages":[{"id":"emit","run":run,"runs_on":runs_on}]})).await?;
    let mut ws = connect(target).await?;
    // since 0: the replay covers whatever was printed before this subscription
    let sub = json!({"type":"subscribe","topic":format!("workflow:{id}"),"since":0});
    ws.send(Message::text(sub.to_string())).await?;
    let mut tally = LineTally::new(total);
    let mut events = 0u64;
    let deadline = Instant::now() + Duration::from_secs(secs + 60);
    loop {
        let msg = tokio::time::timeout_at(deadline.into(), ws.next()).await;
        let Ok(Some(Ok(Message::Text(text)))) = msg else {
            match msg {
                Ok(Some(Ok(_))) => continue,
                _ => anyhow::bail!("the line benchmark's subscription ended early"),
            }
        };
        let now = now_us();
        let v: Value = serde_json::from_str(text.as_str())?;
        if v["type"] != "event" {
            continue;
        }
        events += 1;
        match v["event"].as_str() {
            Some("terminal_output") => {
                for line in v["data"]["output"].as_str().unwrap_or("").lines() {
                    tally.record(line, now);
                }
            }
            Some("workflow_status") if v["data"]["state"] != "running" && v["data"]["state"] != "pending" => break,
            _ => {}
        }
    }
    let elapsed = start.elapsed();
    let after = target.proc();
    let _ = ws.close(None).await;
    Ok(LinesReport {
        expected: total,
        received: tally.received(),
        duplicates: tally.duplicates,
        p50_ms: tally.ms(0.5),
        p99_ms: tally.ms(0.99),
        max_ms: tally.hist.max() as f64 / 1000.0,
        server_cpu_percent: 100.0 * after.cpu.saturating_sub(before.cpu).as_secs_f64() / elapsed.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        events,
    })
}

/// The baseline: the same emitter read straight from its stdout pipe, here.
pub async fn lines_direct(emitter: &str, rate: u64, secs: u64) -> anyhow::Result<LinesReport> {
    let start = Instant::now();
    let mut child = tokio::process::Command::new(emitter)
        .args(["emit", "--rate", &rate.to_string(), "--duration", &secs.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut reader = BufReader::new(stdout).lines();
    let mut tally = LineTally::new(rate * secs);
    while let Some(line) = reader.next_line().await? {
        tally.record(&line, now_us());
    }
    child.wait().await?;
    Ok(LinesReport {
        expected: rate * secs,
        received: tally.received(),
        duplicates: tally.duplicates,
        p50_ms: tally.ms(0.5),
        p99_ms: tally.ms(0.99),
        max_ms: tally.hist.max() as f64 / 1000.0,
        server_cpu_percent: 0.0,
        elapsed_s: start.elapsed().as_secs_f64(),
        events: 0,
    })
}

/// One run as its snapshot tells it, for checking the metrics samples.
#[derive(Debug, Clone)]
struct Timeline {
    created: i64,
    started: Option<i64>,
    finished: Option<i64>,
}

/// (pending, running) at instant `t`, from every run's timeline.
fn truth(runs: &[Timeline], t: i64) -> (u64, u64) {
    let mut f = (0, 0);
    for r in runs {
        let done = r.finished.is_some_and(|x| x <= t);
        if r.created > t || done {
            continue;
        }
        match r.started {
            Some(s) if s <= t => f.1 += 1,
            _ => f.0 += 1,
        }
    }
    f
}

#[derive(Debug, Default)]
pub struct QueueReport {
    pub submitted: usize,
    pub completed: usize,
    pub samples: usize,
    /// Samples that match the queue's true state at an instant of their last `window_ms`.
    pub samples_consistent: usize,
    pub window_ms: i64,
    pub max_running: u64,
    pub logs_intact: usize,
    pub log_problems: Vec<String>,
    pub elapsed_s: f64,
}

/// Reads `metrics` samples until every run has finished (or the deadline passes).
async fn watch_queue(ws: &mut Ws, http: &reqwest::Client, target: &Target, ids: &[String]) -> anyhow::Result<Vec<(i64, u64, u64)>> {
    let mut samples = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last_poll = Instant::now();
    while Instant::now() < deadline {
        if let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
            let v: Value = serde_json::from_str(t.as_str())?;
            if v["type"] == "event" && v["topic"] == "metrics" {
                let d = &v["data"];
                samples.push((v["ts"].as_i64().unwrap_or(0), d["pending_count"].as_u64().unwrap_or(0), d["running_count"].as_u64().unwrap_or(0)));
            }
        }
        if last_poll.elapsed() > Duration::from_millis(500) {
            last_poll = Instant::now();
            let list: Value = http.get(format!("http://{}/api/v1/workflows", target.addr)).send().await?.json().await?;
            let open = list["workflows"].as_array().map_or(0, |l| {
                l.iter().filter(|w| ids.iter().any(|i| w["id"] == i.as_str()) && w["finished_at"].is_null()).count()
            });
            if open == 0 {
                // one more sample, taken after the last run ended
                tokio::time::sleep(Duration::from_millis(300)).await;
                while let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(Duration::from_millis(50), ws.next()).await {
                    let v: Value = serde_json::from_str(t.as_str())?;
                    if v["type"] == "event" && v["topic"] == "metrics" {
                        let d = &v["data"];
                        samples.push((v["ts"].as_i64().unwrap_or(0), d["pending_count"].as_u64().unwrap_or(0), d["running_count"].as_u64().unwrap_or(0)));
                    }
                }
                return Ok(samples);
            }
        }
    }
    anyhow::bail!("the runs did not all finish within 300 s")
}

/// Checks one run's durable log: seqs 1..N once each, its stage lines once each, and
/// the run completed.
async fn check_log(http: &reqwest::Client, target: &Target, id: &str) -> Result<(), String> {
    let url = format!("http://{}/api/v1/topics/workflow:{id}/history?since=0&limit=1000", target.addr);
    let page: Value = http.get(url).send().await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
    let events = page["events"].as_array().cloned().unwrap_or_default();
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    if seqs != (1..=seqs.len() as u64).collect::<Vec<_>>() || page["seq"].as_u64() != Some(seqs.len() as u64) {
        return Err(format!("{id}: seqs are not 1..{} once each: {seqs:?}", seqs.len()));
    }
    let output: String = events
        .iter()
        .filter(|e| e["event"] == "terminal_output")
        .filter_map(|e| e["data"]["output"].as_str())
        .collect();
    for line in [format!("start {id}"), "done".into(), "second".into()] {
        let n = output.lines().filter(|l| *l == line).count();
        if n != 1 {
            return Err(format!("{id}: the line {line:?} is in the log {n} times"));
        }
    }
    let last = events.iter().rev().find(|e| e["event"] == "workflow_status");
    if last.map(|e| e["data"]["state"].clone()) != Some(json!("completed")) {
        return Err(format!("{id}: the last workflow_status is not completed"));
    }
    Ok(())
}

/// `runs` workflows submitted at once to a server whose concurrency is `concurrency`:
/// all complete, every `metrics` sample is true to the queue, every log is whole.
pub async fn queue(target: &Target, runs: usize, concurrency: u64) -> anyhow::Result<QueueReport> {
    let http = reqwest::Client::new();
    let mut ws = connect(target).await?;
    ws.send(Message::text(json!({"type":"subscribe","topic":"metrics"}).to_string())).await?;
    let pipeline = json!({"name":"bench-queue","stages":[
        {"id":"a","run":"echo start $SWITCHBOARD_WORKFLOW_ID; sleep 0.1; echo ::progress 0.5 half; echo done"},
        {"id":"b","run":"echo second"}
    ]});
    let start = Instant::now();
    let submits = (0..runs).map(|_| submit(&http, target, pipeline.clone()));
    let ids: Vec<String> = futures::future::try_join_all(submits).await?;
    let samples = watch_queue(&mut ws, &http, target, &ids).await?;
    let elapsed = start.elapsed();
    let mut timelines = Vec::new();
    let mut completed = 0;
    for id in &ids {
        let s: Value = http.get(format!("http://{}/api/v1/workflows/{id}", target.addr)).send().await?.json().await?;
        completed += usize::from(s["state"] == "completed");
        timelines.push(Timeline {
            created: s["created_at"].as_i64().unwrap_or(0),
            started: s["started_at"].as_i64(),
            finished: s["finished_at"].as_i64(),
        });
    }
    let first = timelines.iter().map(|t| t.created).min().unwrap_or(0);
    let window_ms = 20;
    // samples from before the first submission are trivially 0/0: skip them
    let checked: Vec<_> = samples.iter().filter(|(ts, _, _)| *ts >= first).collect();
    let consistent = checked
        .iter()
        .filter(|(ts, p, r)| (ts - window_ms..=*ts).any(|t| truth(&timelines, t) == (*p, *r)))
        .count();
    let mut report = QueueReport {
        submitted: runs,
        completed,
        samples: checked.len(),
        samples_consistent: consistent,
        window_ms,
        max_running: samples.iter().map(|s| s.2).max().unwrap_or(0),
        elapsed_s: elapsed.as_secs_f64(),
        ..Default::default()
    };
    if report.max_running > concurrency {
        report.log_problems.push(format!("a sample showed {} running, over the limit of {concurrency}", report.max_running));
    }
    for id in &ids {
        match check_log(&http, target, id).await {
            Ok(()) => report.logs_intact += 1,
            Err(e) => report.log_problems.push(e),
        }
    }
    let _ = ws.close(None).await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_emitted_lines() {
        assert_eq!(read_line("line 42 t=1234 xxxx"), Some((42, 1234)));
        assert_eq!(read_line("line 7 t=99"), Some((7, 99)));
        assert_eq!(read_line("epoch 1"), None);
    }

    #[test]
    fn truth_counts_pending_and_running() {
        let runs = [
            Timeline { created: 0, started: Some(10), finished: Some(20) },
            Timeline { created: 0, started: Some(20), finished: None },
            Timeline { created: 5, started: None, finished: None },
        ];
        assert_eq!(truth(&runs, 0), (2, 0));
        assert_eq!(truth(&runs, 10), (2, 1));
        assert_eq!(truth(&runs, 20), (1, 1));
    }

    #[test]
    fn tally_counts_duplicates_and_missing() {
        let mut t = LineTally::new(3);
        t.record("line 0 t=1", 10);
        t.record("line 2 t=1", 10);
        t.record("line 2 t=1", 10);
        assert_eq!((t.received(), t.duplicates), (2, 1));
    }
}
