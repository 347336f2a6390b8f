//! `switchboard-load redis-restarts` (issue 16, on issue 15's cluster): two nodes on one
//! Redis (`--broker`), N subscribers spread over both on T topics and a publisher at R
//! events/s sending to the nodes in turn, while Redis is SIGKILLed and started again
//! empty, K times. A Redis that lost its data has lost the topics' streams, so each
//! topic starts a new epoch and the nodes close its subscribers (1012); they reconnect,
//! to the other node each time, and resume with `since` and `epoch`: `recovered: false`
//! with the new epoch, then live. Publishes while Redis is down are refused with 503
//! (retryable). What must hold, the protocol's promise: never a silent gap. Within an
//! epoch each subscriber's events are gapless and none comes twice, a jump happens only
//! across a `recovered: false`, every subscriber reaches the last seq of its topic's
//! last epoch, every refused publish was a 503, and the nodes end healthy.

use crate::chaos::{publish, Published};
use crate::child::{free_port, start, Server};
use crate::frames::read_event;
use futures::StreamExt;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct RedisRestartArgs {
    /// The server binary (started here, on loopback).
    #[arg(long, default_value = "target/release/switchboard")]
    switchboard: PathBuf,
    /// Debian's redis-server (started here, on a free port, nothing kept on disk).
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    #[arg(long, default_value_t = 2)]
    nodes: usize,
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,
    #[arg(long, default_value_t = 20)]
    topics: usize,
    /// Events per second, over all topics.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Redis restarts (SIGKILL, then started again empty).
    #[arg(long, default_value_t = 3)]
    restarts: u32,
    /// Seconds of publishing before, between and after restarts.
    #[arg(long, default_value_t = 20)]
    every: u64,
    /// Milliseconds Redis stays down at each restart.
    #[arg(long, default_value_t = 1_000)]
    down_ms: u64,
}

/// How long subscribers may take to reach the last events once publishing stops.
const CATCH_UP: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Tally {
    received: AtomicU64,
    /// Events of a new epoch read over HTTP after a `recovered: false`.
    reloaded: AtomicU64,
    duplicated: AtomicU64,
    /// Events skipped with no `recovered: false` to say so.
    silent_gaps: AtomicU64,
    resumed: AtomicU64,
    not_recovered: AtomicU64,
    closes_1012: AtomicU64,
    other_ends: AtomicU64,
    connect_failures: AtomicU64,
}

/// A redis-server child; SIGKILLed on drop.
pub(crate) struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) async fn start_redis(bin: &PathBuf, port: u16) -> anyhow::Result<Redis> {
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", bin.display()))?;
    let redis = Redis(child);
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(redis);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::bail!("redis-server did not listen on {port}")
}

/// Each topic's (epoch, last seq) once publishing is over.
type Finals = Arc<Mutex<Option<Vec<(String, u64)>>>>;

pub async fn run(args: RedisRestartArgs) -> anyhow::Result<()> {
    let redis_port = free_port()?;
    let mut redis = start_redis(&args.redis_server, redis_port).await?;
    let broker = format!("redis://127.0.0.1:{redis_port}/");
    let root = std::env::temp_dir().join(format!("switchboard-redis-restarts-{:x}", rand::random::<u32>()));
    let mut nodes: Vec<Server> = Vec::new();
    for i in 0..args.nodes.max(1) {
        let data = root.join(format!("node-{i}"));
        std::fs::create_dir_all(&data)?;
        nodes.push(start(&args.switchboard, &data, &["--broker", &broker, "--broker-prefix", "chaos:"]).await?.0);
    }
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let topics = args.topics.max(1);
    let (tally, finals): (Arc<Tally>, Finals) = Default::default();
    let subscribers: Vec<_> = (0..args.subscribers)
        .map(|i| tokio::spawn(subscriber(addrs.clone(), i, i % topics, tally.clone(), finals.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let duration = Duration::from_secs(args.every * (u64::from(args.restarts) + 1));
    let publisher = tokio::spawn({
        let addrs = addrs.clone();
        let rate = args.rate;
        async move { publish(&addrs, "bench", topics, rate, duration).await }
    });
    let begun = Instant::now();
    for _ in 0..args.restarts {
        tokio::time::sleep(Duration::from_secs(args.every)).await;
        drop(redis);
        tokio::time::sleep(Duration::from_millis(args.down_ms)).await;
        redis = start_redis(&args.redis_server, redis_port).await?;
    }
    let Published { count: published, refused, unavailable, acked, .. } = publisher.await?;
    // where each topic ended, as the first node tells it
    let http = crate::child::http();
    let mut ends = Vec::new();
    for t in 0..topics {
        let page: Value = http.get(format!("http://{}/api/v1/topics/bench.{t}/history?limit=0", addrs[0])).send().await?.error_for_status()?.json().await?;
        ends.push((page["epoch"].as_str().unwrap_or_default().to_owned(), page["seq"].as_u64().unwrap_or(0)));
    }
    *finals.lock().unwrap_or_else(|p| p.into_inner()) = Some(ends);
    let mut unfinished = 0;
    for s in subscribers {
        if !s.await? {
            unfinished += 1;
        }
    }
    let mut healthy = 0;
    for a in &addrs {
        healthy += usize::from(http.get(format!("http://{a}/healthz")).send().await.is_ok_and(|r| r.status().is_success()));
    }
    let t = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "redis-restarts: {} nodes on one Redis, {} subscribers on {topics} topics, {} events/s for {} s; Redis SIGKILLed and started empty {} times (down {} ms each) ({:.0} s)",
        addrs.len(), args.subscribers, args.rate, duration.as_secs(), args.restarts, args.down_ms, begun.elapsed().as_secs_f64()
    );
    println!("  published {published}; refused {refused} (503 with Retry-After: {unavailable})");
    println!("  subscribers: closed 1012 {}, other ends {}, resumes {} (recovered: false {}), connect failures {}", t(&tally.closes_1012), t(&tally.other_ends), t(&tally.resumed), t(&tally.not_recovered), t(&tally.connect_failures));
    // each acknowledged event was due to every subscriber of its topic
    let expected: u64 = acked.iter().enumerate().map(|(t, n)| n.load(Ordering::Relaxed) * (0..args.subscribers).filter(|i| i % topics == t).count() as u64).sum();
    let delivered = t(&tally.received) + t(&tally.reloaded);
    println!(
        "  events due {expected}, received {delivered} ({} live, {} read over HTTP after recovered: false), duplicated {}, skipped silently {}; \
         lost with Redis's data, each behind a recovered: false: {}",
        t(&tally.received), t(&tally.reloaded), t(&tally.duplicated), t(&tally.silent_gaps), expected.saturating_sub(delivered)
    );
    println!("  subscribers not at their topic's last event {unfinished}; nodes healthy {healthy} of {}", addrs.len());
    let mut failures = Vec::new();
    if delivered != expected {
        // an acknowledged event lost with Redis's data is allowed by the protocol (the
        // subscriber is told, recovered: false) but none was in the runs documented: a
        // loss is held up for a person to look at rather than averaged away
        failures.push("not every acknowledged event reached every subscriber of its topic");
    }
    if t(&tally.duplicated) + t(&tally.silent_gaps) > 0 {
        failures.push("an event came twice or a gap went unannounced");
    }
    if unfinished > 0 || healthy != addrs.len() {
        failures.push("a subscriber did not reach its topic's last event, or a node is not healthy");
    }
    if refused != unavailable {
        failures.push("a refused publish was not a 503 with Retry-After");
    }
    if args.restarts > 0 && t(&tally.not_recovered) == 0 {
        failures.push("no subscriber was told recovered: false, though Redis lost everything");
    }
    println!("  result: {}", if failures.is_empty() { "PASS: no event twice, no silent gap, every subscriber live at the end".to_owned() } else { format!("FAIL: {}", failures.join("; ")) });
    drop(nodes);
    drop(redis);
    let _ = std::fs::remove_dir_all(&root);
    anyhow::ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}

/// One subscriber of `bench.{topic}`, first on node `i`, on the next node after every
/// end, until it has its topic's last event of the last epoch (true) or the catch-up
/// time is over (false).
async fn subscriber(addrs: Vec<String>, i: usize, topic: usize, tally: Arc<Tally>, finals: Finals) -> bool {
    let name = format!("bench.{topic}");
    let http = crate::child::http();
    let (mut last, mut epoch): (u64, Option<String>) = (0, None);
    let mut over_at: Option<Instant> = None;
    let done = |last: u64, epoch: &Option<String>, over_at: &mut Option<Instant>| -> Option<bool> {
        let finals = finals.lock().unwrap_or_else(|p| p.into_inner());
        let (e, seq) = finals.as_ref()?.get(topic)?.clone();
        if epoch.as_deref() == Some(e.as_str()) && last >= seq {
            return Some(true);
        }
        (over_at.get_or_insert_with(Instant::now).elapsed() > CATCH_UP).then_some(false)
    };
    for attempt in 0.. {
        if let Some(result) = done(last, &epoch, &mut over_at) {
            return result;
        }
        let url = format!("ws://{}/ws", addrs[(i + attempt) % addrs.len()]);
        let Some(mut ws) = crate::chaos::resume(&url, &name, last, epoch.as_deref(), &tally.connect_failures).await else { continue };
        loop {
            if let Some(result) = done(last, &epoch, &mut over_at) {
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                return result;
            }
            let text = match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
                Err(_) => continue,
                Ok(Some(Ok(Message::Text(t)))) => t,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let counter = if frame.is_some_and(|f| u16::from(f.code) == 1012) { &tally.closes_1012 } else { &tally.other_ends };
                    counter.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Some(Ok(_))) => continue,
                Ok(_) => {
                    tally.other_ends.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            };
            if let Some((seq, _)) = read_event(text.as_str()) {
                if seq <= last {
                    tally.duplicated.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.silent_gaps.fetch_add(seq - last - 1, Ordering::Relaxed);
                    tally.received.fetch_add(1, Ordering::Relaxed);
                    last = seq;
                }
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
            match v["type"].as_str() {
                Some("subscribed") => {
                    if epoch.is_some() {
                        tally.resumed.fetch_add(1, Ordering::Relaxed);
                    }
                    let new_epoch = v["epoch"].as_str().map(str::to_owned);
                    if epoch.is_some() && v["recovered"] != true {
                        // announced: what the old epoch held past `last` is gone. As the
                        // protocol says, the new epoch up to the reply's seq is read over
                        // HTTP, then it goes on live
                        tally.not_recovered.fetch_add(1, Ordering::Relaxed);
                        let upto = v["seq"].as_u64().unwrap_or(0);
                        let node = &addrs[(i + attempt) % addrs.len()];
                        match reload(&http, node, &name, upto, new_epoch.as_deref().unwrap_or_default()).await {
                            Ok(n) => {
                                tally.reloaded.fetch_add(n, Ordering::Relaxed);
                                last = upto;
                            }
                            Err(_) => {
                                // the old epoch kept, so that the next try reloads too
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                break;
                            }
                        }
                    }
                    epoch = new_epoch;
                }
                // refused (Redis down while subscribing): dial again
                Some("error") => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
                _ => {}
            }
        }
    }
    false
}

/// Reads `topic` from seq 1 through `upto` over HTTP, gapless and all of epoch `epoch`:
/// how many events that was.
async fn reload(http: &reqwest::Client, node: &str, topic: &str, upto: u64, epoch: &str) -> anyhow::Result<u64> {
    let mut since = 0;
    while since < upto {
        let page: Value = http.get(format!("http://{node}/api/v1/topics/{topic}/history?since={since}&limit=1000")).send().await?.error_for_status()?.json().await?;
        anyhow::ensure!(page["epoch"] == epoch, "{topic} moved on to another epoch");
        let events = page["events"].as_array().cloned().unwrap_or_default();
        anyhow::ensure!(!events.is_empty(), "the history of {topic} stops at {since}, short of {upto}");
        for e in &events {
            let seq = e["seq"].as_u64().unwrap_or(0);
            anyhow::ensure!(seq == since + 1, "the history of {topic} skips from {since} to {seq}");
            since = seq;
        }
    }
    Ok(upto)
}
