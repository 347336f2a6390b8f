//! `switchboard-load soak` (issue 16): N connections subscribed over T topics, an HTTP
//! publisher at R events/s and a run started every S seconds, for a long time, on a
//! server started here. Every 10 s the server's RSS and open file descriptors are
//! read from /proc; delivery latency is kept per minute of publishing. What must hold:
//! RSS drift under 5 % over the last 5 minutes, descriptors flat, the last minute's
//! p99 within 1.2x the first's, and every subscriber with every event of its topic once.

use crate::child::{start, Server};
use crate::frames::{now_us, read_event};
use crate::scenario::{open_subscribers, Target, Ws};
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct SoakArgs {
    /// The server binary (started here, on loopback).
    #[arg(long, default_value = "target/release/switchboard")]
    switchboard: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    #[arg(long, default_value_t = 100)]
    topics: usize,
    /// Events per second, over all topics.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Seconds between two run starts.
    #[arg(long, default_value_t = 2)]
    run_every: u64,
    /// Seconds of the soak.
    #[arg(long, default_value_t = 600)]
    duration: u64,
}

const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// What the subscribers saw, kept per minute of publishing.
pub(crate) struct Seen {
    started_us: AtomicU64,
    minutes: Vec<Mutex<Histogram<u64>>>,
    pub received: AtomicU64,
    pub duplicated: AtomicU64,
    pub missing: AtomicU64,
    pub stop: AtomicBool,
}

impl Seen {
    /// Latency kept for `minutes` minutes from now.
    pub(crate) fn new(minutes: usize) -> Arc<Seen> {
        Arc::new(Seen {
            started_us: AtomicU64::new(now_us()),
            minutes: (0..minutes).map(|_| Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"))).collect(),
            received: AtomicU64::new(0),
            duplicated: AtomicU64::new(0),
            missing: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        })
    }
}

struct Sample {
    at: f64,
    rss_mib: f64,
    fds: usize,
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let data = std::env::temp_dir().join(format!("switchboard-soak-{:x}", rand::random::<u32>()));
    std::fs::create_dir_all(&data)?;
    let (server, _) = start(&args.switchboard, &data, &["--concurrency", "8"]).await?;
    let pid = server.child.id();
    let target = Target { name: "switchboard".into(), addr: server.addr.clone(), pids: vec![pid], full_protocol: true, also: Vec::new() };
    let topics = args.topics.max(1);
    // spread evenly: bench.{i % topics}
    let sockets = open_subscribers(&target, args.connections, topics, 200).await?;
    let minutes = (args.duration / 60 + 2) as usize;
    let seen = Seen::new(minutes);
    let finals: Arc<Vec<AtomicU64>> = Arc::new((0..topics).map(|_| AtomicU64::new(0)).collect());
    let readers: Vec<_> = sockets.into_iter().map(|ws| tokio::spawn(read(ws, seen.clone(), finals.clone()))).collect();
    let duration = Duration::from_secs(args.duration);
    let begun = Instant::now();
    seen.started_us.store(now_us(), Ordering::Relaxed);
    let sampler = tokio::spawn(sample(pid, duration));
    let runs = tokio::spawn(start_runs(server.addr.clone(), args.run_every, duration));
    let crate::chaos::Published { count: published, refused, last, .. } = crate::chaos::publish(std::slice::from_ref(&server.addr), "bench", topics, args.rate, duration).await;
    for (f, l) in finals.iter().zip(&last) {
        f.store(l.load(Ordering::Relaxed).max(1), Ordering::Relaxed);
    }
    let samples = sampler.await?;
    let (started, refused_runs, ids) = runs.await?;
    let caught_up = caught_up(readers, &seen).await;
    let completed = count_completed(&server, &ids).await;
    let verdict = report(&args, &seen, &samples, &last, published, refused, (started, refused_runs, completed), caught_up, begun.elapsed());
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    println!("{}", if verdict.is_ok() { "PASS" } else { "FAIL" });
    verdict
}

/// How many readers have their topic's last event within a minute of the last publish;
/// those that have not by then are told to stop, and count as not caught up.
pub(crate) async fn caught_up(readers: Vec<tokio::task::JoinHandle<bool>>, seen: &Arc<Seen>) -> usize {
    let stopper = {
        let seen = seen.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            seen.stop.store(true, Ordering::Relaxed);
        })
    };
    let caught_up = futures::future::join_all(readers).await.into_iter().filter(|r| matches!(r, Ok(true))).count();
    stopper.abort();
    seen.stop.store(true, Ordering::Relaxed);
    caught_up
}

/// The N of a `bench.N` event frame.
fn topic_of(frame: &str) -> Option<usize> {
    const KEY: &str = r#""topic":"bench."#;
    let rest = &frame[frame.find(KEY)? + KEY.len()..];
    rest[..rest.find('"')?].parse().ok()
}

/// Reads its topic (known from its first event: the sockets come back from
/// `open_subscribers` in the order they finished subscribing) until it has the topic's
/// last event (true) or is told to stop.
pub(crate) async fn read(mut ws: Ws, seen: Arc<Seen>, finals: Arc<Vec<AtomicU64>>) -> bool {
    let (mut last, mut topic) = (0u64, None::<usize>);
    loop {
        let done = topic.and_then(|t| finals.get(t)).map_or(0, |f| f.load(Ordering::Relaxed));
        if (done > 0 && last >= done) || seen.stop.load(Ordering::Relaxed) {
            let _ = ws.close(None).await;
            return done > 0 && last >= done;
        }
        let msg = match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
            Err(_) => continue,
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return false,
        };
        let Some((seq, sent)) = read_event(msg.as_str()) else { continue };
        if topic.is_none() {
            topic = topic_of(msg.as_str());
        }
        if seq <= last {
            seen.duplicated.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        seen.missing.fetch_add(seq - last - 1, Ordering::Relaxed);
        seen.received.fetch_add(1, Ordering::Relaxed);
        last = seq;
        let minute = (sent.saturating_sub(seen.started_us.load(Ordering::Relaxed)) / 60_000_000) as usize;
        if let Some(h) = seen.minutes.get(minute) {
            if let Ok(mut h) = h.lock() {
                let _ = h.record(now_us().saturating_sub(sent).max(1));
            }
        }
    }
}

async fn sample(pid: u32, duration: Duration) -> Vec<Sample> {
    let begun = Instant::now();
    let mut samples = Vec::new();
    while begun.elapsed() < duration {
        let rss = crate::procstat::sample(pid).map(|s| s.rss_kib as f64 / 1024.0).unwrap_or(f64::NAN);
        samples.push(Sample { at: begun.elapsed().as_secs_f64(), rss_mib: rss, fds: open_fds(pid) });
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    samples
}

/// A short run every `every` seconds: (started, refused, their ids).
async fn start_runs(addr: String, every: u64, duration: Duration) -> (u64, u64, Vec<String>) {
    let http = reqwest::Client::new();
    let pipeline = json!({"name": "soak", "stages": [{"id": "work", "run": "seq 1 200 | sed 's/^/line /'; echo '::progress 1.0'"}]});
    let begun = Instant::now();
    let (mut refused, mut ids) = (0, Vec::new());
    while begun.elapsed() < duration {
        let reply = async { http.post(format!("http://{addr}/api/v1/workflows")).json(&json!({"pipeline": pipeline})).send().await?.error_for_status()?.json::<Value>().await };
        match reply.await.ok().and_then(|v| v["id"].as_str().map(str::to_owned)) {
            Some(id) => ids.push(id),
            None => refused += 1,
        }
        tokio::time::sleep(Duration::from_secs(every)).await;
    }
    (ids.len() as u64, refused, ids)
}

/// How many of `ids` completed, waiting up to 30 s for the last ones to finish.
async fn count_completed(server: &Server, ids: &[String]) -> u64 {
    let http = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(30);
    let mut pending: Vec<&String> = ids.iter().collect();
    let mut completed = 0;
    loop {
        let mut still = Vec::new();
        for id in pending {
            let state = async { http.get(format!("http://{}/api/v1/workflows/{id}", server.addr)).send().await?.json::<Value>().await };
            match state.await.ok().and_then(|v| v["state"].as_str().map(str::to_owned)).as_deref() {
                Some("completed") => completed += 1,
                Some("failed" | "cancelled") => {}
                _ => still.push(id),
            }
        }
        if still.is_empty() || Instant::now() >= until {
            return completed;
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[allow(clippy::too_many_arguments)]
fn report(args: &SoakArgs, seen: &Seen, samples: &[Sample], last: &[AtomicU64], published: u64, refused: u64, runs: (u64, u64, u64), caught_up: usize, took: Duration) -> anyhow::Result<()> {
    let per_topic: Vec<u64> = last.iter().map(|l| l.load(Ordering::Relaxed)).collect();
    let topics = per_topic.len();
    let expected: u64 = (0..args.connections).map(|i| per_topic[i % topics]).sum();
    let t = |a: &AtomicU64| a.load(Ordering::Relaxed);
    // the last 5 minutes (or the second half of a shorter soak)
    let window = (args.duration as f64 - 300.0).max(args.duration as f64 / 2.0);
    let tail: Vec<&Sample> = samples.iter().filter(|s| s.at >= window).collect();
    let (lo, hi) = tail.iter().fold((f64::MAX, 0f64), |(lo, hi), s| (lo.min(s.rss_mib), hi.max(s.rss_mib)));
    let drift = (tail.last().map_or(f64::NAN, |s| s.rss_mib) - tail.first().map_or(f64::NAN, |s| s.rss_mib)) / tail.first().map_or(f64::NAN, |s| s.rss_mib);
    let (fd_lo, fd_hi) = samples.iter().fold((usize::MAX, 0), |(lo, hi), s| (lo.min(s.fds), hi.max(s.fds)));
    let full_minutes = (args.duration / 60) as usize;
    let p99 = |m: usize| seen.minutes.get(m).and_then(|h| h.lock().ok().map(|h| h.value_at_quantile(0.99) as f64 / 1000.0)).unwrap_or(f64::NAN);
    println!("soak: {} connections on {topics} topics, {} events/s over HTTP, a run every {} s, for {} s ({:.0} s in all)", args.connections, args.rate, args.run_every, args.duration, took.as_secs_f64());
    println!("  published {published} ({refused} refused); runs started {} ({} refused), completed {}", runs.0, runs.1, runs.2);
    println!("  events expected {expected}, received {}, duplicated {}, missing {}; subscribers caught up {caught_up} of {}", t(&seen.received), t(&seen.duplicated), t(&seen.missing), args.connections);
    println!("  RSS over the last {:.0} s: first {:.1} MiB, last {:.1} MiB, range {lo:.1}..{hi:.1} MiB: drift {:+.2} %", args.duration as f64 - window, tail.first().map_or(f64::NAN, |s| s.rss_mib), tail.last().map_or(f64::NAN, |s| s.rss_mib), drift * 100.0);
    println!("  open file descriptors: {fd_lo}..{fd_hi}");
    let mut line = String::from("  delivery p99 per minute (ms):");
    for m in 0..full_minutes {
        line.push_str(&format!(" {:.2}", p99(m)));
    }
    let p99_ratio = p99(full_minutes.saturating_sub(1)) / p99(0);
    println!("{line}; last / first = {p99_ratio:.2}x");
    let mut line = String::from("  RSS every minute (MiB):");
    for s in samples.iter().filter(|s| (s.at as u64) % 60 < 10) {
        line.push_str(&format!(" {:.0}s={:.1}/{}fd", s.at, s.rss_mib, s.fds));
    }
    println!("{line}");
    let (received, duplicated, missing) = (t(&seen.received), t(&seen.duplicated), t(&seen.missing));
    anyhow::ensure!(received == expected && duplicated == 0 && missing == 0, "events: expected {expected}, received {received}, duplicated {duplicated}, missing {missing}");
    anyhow::ensure!(caught_up == args.connections, "{caught_up} of {} subscribers caught up", args.connections);
    anyhow::ensure!(runs.2 == runs.0, "{} of {} runs completed", runs.2, runs.0);
    anyhow::ensure!(drift.abs() < 0.05, "RSS drift {:+.2} % (bound 5 %)", drift * 100.0);
    anyhow::ensure!(fd_hi.saturating_sub(fd_lo) <= 32, "open file descriptors {fd_lo}..{fd_hi} (bound: a range of 32)");
    anyhow::ensure!(p99_ratio <= 1.2, "delivery p99 last / first minute {p99_ratio:.2}x (bound 1.2x)");
    Ok(())
}
