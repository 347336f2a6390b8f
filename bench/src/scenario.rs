//! The load scenarios, each run against one target (the hub or the baseline).

use crate::frames::{payload, read_event};
use crate::readers::{read_events, Shared};
use crate::procstat::{self, ProcSample};
use futures::stream::{self, StreamExt};
use futures::SinkExt;
use hdrhistogram::Histogram;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where to connect, and whether the far end speaks the whole protocol.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub addr: String,
    /// Server processes whose CPU and memory are reported (summed: a cluster's nodes).
    pub pids: Vec<u32>,
    /// The baseline has no topics, replies or resume: subscribe is skipped.
    pub full_protocol: bool,
    /// Other nodes of the same cluster (`--broker`): subscribers are spread over all,
    /// publishes alternate between them, and a resume happens on the last.
    pub also: Vec<String>,
}

impl Target {
    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    fn node(&self, i: usize) -> &str {
        match i % (1 + self.also.len()) {
            0 => &self.addr,
            n => &self.also[n - 1],
        }
    }

    fn ws_url_of(&self, i: usize) -> String {
        format!("ws://{}/ws", self.node(i))
    }

    pub fn proc(&self) -> ProcSample {
        self.pids.iter().filter_map(|p| procstat::sample(*p).ok()).fold(ProcSample::default(), |sum, s| ProcSample {
            cpu: sum.cpu + s.cpu,
            rss_kib: sum.rss_kib + s.rss_kib,
            peak_rss_kib: sum.peak_rss_kib + s.peak_rss_kib,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    Http,
    Ws,
}

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub target: String,
    pub scenario: String,
    pub expected: u64,
    pub delivered: u64,
    pub gaps: u64,
    pub published: u64,
    pub elapsed: Duration,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub server_cpu_s: f64,
    pub peak_rss_kib: u64,
    pub extra: Vec<(String, f64)>,
}

impl Report {
    pub fn deliveries_per_s(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn cpu_percent(&self) -> f64 {
        100.0 * self.server_cpu_s / self.elapsed.as_secs_f64().max(1e-9)
    }
}

async fn connect(url: &str) -> anyhow::Result<Ws> {
    // tungstenite zeroes its whole free read buffer before each read (128 KiB by
    // default): with hundreds of sockets each reading a few frames per wake, that
    // memset was a tenth of the generator's time. A browser's reads are its own cost.
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
    Ok(ws)
}

/// Opens `n` connections, `concurrency` at a time; on the hub each subscribes to its
/// topic (`bench.{i % topics}`) and waits for `subscribed` (with `topics` 0: reads
/// `hello` only).
pub async fn open_subscribers(target: &Target, n: usize, topics: usize, concurrency: usize) -> anyhow::Result<Vec<Ws>> {
    let full = target.full_protocol;
    let (wait_for, subscribe) = if topics == 0 { (r#""type":"hello""#, false) } else { (r#""type":"subscribed""#, true) };
    let results: Vec<anyhow::Result<Ws>> = stream::iter(0..n)
        .map(|i| {
            let url = target.ws_url_of(i);
            async move {
                let mut ws = connect(&url).await?;
                if full {
                    if subscribe {
                        let topic = format!("bench.{}", i % topics.max(1));
                        ws.send(Message::text(json!({"type":"subscribe","topic":topic}).to_string())).await?;
                    }
                    while let Some(msg) = ws.next().await {
                        if let Message::Text(t) = msg? {
                            if t.as_str().contains(wait_for) {
                                break;
                            }
                        }
                    }
                }
                Ok(ws)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

enum Publisher {
    Http(reqwest::Client, String),
    /// The sending half; a task drains the replies and counts errors (a producer that
    /// never reads would stall its own connection).
    Ws(futures::stream::SplitSink<Ws, Message>, Arc<AtomicU64>),
}

impl Publisher {
    async fn new(addr: &str, via: Via) -> anyhow::Result<Publisher> {
        Ok(match via {
            Via::Http => Publisher::Http(reqwest::Client::new(), format!("http://{addr}/api/v1/publish")),
            Via::Ws => {
                let (sink, mut stream) = connect(&format!("ws://{addr}/ws")).await?.split();
                let errors = Arc::new(AtomicU64::new(0));
                let counted = errors.clone();
                tokio::spawn(async move {
                    while let Some(Ok(msg)) = stream.next().await {
                        if matches!(&msg, Message::Text(t) if t.as_str().contains(r#""type":"error""#)) {
                            counted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
                Publisher::Ws(sink, errors)
            }
        })
    }

    async fn publish(&mut self, topic: &str, size: usize) -> anyhow::Result<()> {
        let body = json!({"topic": topic, "event": "bench", "data": payload(size)});
        match self {
            Publisher::Http(client, url) => {
                client.post(url.as_str()).json(&body).send().await?.error_for_status()?;
            }
            Publisher::Ws(sink, _) => {
                let mut msg = body;
                msg["type"] = json!("publish");
                sink.send(Message::text(msg.to_string())).await?;
            }
        }
        Ok(())
    }

    fn errors(&self) -> u64 {
        match self {
            Publisher::Http(..) => 0,
            Publisher::Ws(_, errors) => errors.load(Ordering::Relaxed),
        }
    }
}

/// How the publisher paces itself.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// A fixed rate, in events per second.
    Rate(u64),
    /// As fast as possible with at most this many events not yet delivered to all.
    Window(u64),
}

#[derive(Debug, Clone, Copy)]
pub struct FanoutSpec {
    pub subscribers: usize,
    pub topics: usize,
    pub pace: Pace,
    pub payload: usize,
    pub duration: Duration,
    pub via: Via,
    /// Extra subscribers that never read: they must not slow the others.
    pub stalled: usize,
}

/// N subscribers, one publisher: delivered/expected, latency, rates, server CPU.
pub async fn fanout(target: &Target, spec: &FanoutSpec) -> anyhow::Result<Report> {
    let topics = if target.full_protocol { spec.topics.max(1) } else { 1 };
    let sockets = open_subscribers(target, spec.subscribers, topics, 200).await?;
    let per_topic = spec.subscribers as u64 / topics as u64;
    let shared = Arc::new(Shared::default());
    let readers: Vec<_> = sockets.into_iter().map(|ws| tokio::spawn(read_events(ws, shared.clone()))).collect();
    // held open, never read: the server must close them (1013), not wait for them
    let stalled = crate::slow::open_stalled(target, spec.stalled, topics).await?;
    let mut publishers = Vec::new();
    for node in 0..=target.also.len() {
        publishers.push(Publisher::new(target.node(node), spec.via).await?);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = target.proc();
    let generator_before = procstat::sample(std::process::id()).unwrap_or_default();
    let start = Instant::now();
    let mut published = 0u64;
    while start.elapsed() < spec.duration {
        match spec.pace {
            Pace::Rate(rate) => {
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                if published >= due {
                    tokio::time::sleep(Duration::from_micros(500)).await;
                    continue;
                }
            }
            Pace::Window(window) => {
                // room for one more: published < delivered / per_topic + window
                if published >= window {
                    let target = (published + 1 - window) * per_topic.max(1);
                    tokio::select! {
                        _ = shared.until_delivered(target) => {}
                        _ = tokio::time::sleep(spec.duration.saturating_sub(start.elapsed())) => continue,
                    }
                }
            }
        }
        let topic = format!("bench.{}", published % topics as u64);
        let n = publishers.len();
        publishers[published as usize % n].publish(&topic, spec.payload).await?;
        published += 1;
    }
    let expected = published * per_topic;
    let drain_until = Instant::now() + Duration::from_secs(10);
    while shared.delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = start.elapsed();
    let after = target.proc();
    let generator_after = procstat::sample(std::process::id()).unwrap_or_default();
    shared.stop_readers();
    let publish_errors: u64 = publishers.iter().map(Publisher::errors).sum();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    for r in readers {
        hist.add(r.await?).ok();
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let fate = crate::slow::inspect(stalled).await;
    Ok(Report {
        target: target.name.clone(),
        scenario: String::new(),
        expected,
        delivered: shared.delivered.load(Ordering::Relaxed),
        gaps: shared.gaps.load(Ordering::Relaxed),
        published,
        elapsed,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: hist.max() as f64 / 1000.0,
        server_cpu_s: (after.cpu.saturating_sub(before.cpu)).as_secs_f64(),
        peak_rss_kib: after.peak_rss_kib,
        extra: vec![
            ("publish_errors".into(), publish_errors as f64),
            ("loadgen_cpu_pct".into(), 100.0 * generator_after.cpu.saturating_sub(generator_before.cpu).as_secs_f64() / elapsed.as_secs_f64().max(1e-9)),
            ("stalled_ended".into(), fate.ended as f64),
            ("stalled_closed_1013".into(), fate.closed_1013 as f64),
            ("stalled_gapless".into(), fate.gapless as f64),
            ("stalled_most_events".into(), fate.most_events as f64),
        ],
    })
}

/// Opens `n` idle connections: set-up rate and server memory per connection.
pub async fn idle(target: &Target, n: usize) -> anyhow::Result<Report> {
    let before = target.proc();
    let start = Instant::now();
    let sockets = open_subscribers(target, n, 0, 256).await?;
    let setup = start.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = target.proc();
    let per_conn = (after.rss_kib.saturating_sub(before.rss_kib)) as f64 / n as f64;
    drop(sockets);
    Ok(Report {
        target: target.name.clone(),
        scenario: format!("idle {n}"),
        elapsed: setup,
        peak_rss_kib: after.peak_rss_kib,
        server_cpu_s: (after.cpu.saturating_sub(before.cpu)).as_secs_f64(),
        extra: vec![
            ("connections_per_s".into(), n as f64 / setup.as_secs_f64()),
            ("rss_kib_per_connection".into(), per_conn),
        ],
        ..Default::default()
    })
}

/// A subscriber misses `missed` events, comes back with `since`: time to have them all.
pub async fn resume(target: &Target, missed: u64, rounds: usize) -> anyhow::Result<Report> {
    // HTTP publishes return once the event is in the topic's history: no sync needed
    let mut publisher = Publisher::new(&target.addr, Via::Http).await?;
    let resume_on = target.ws_url_of(target.also.len());
    let mut times = Vec::new();
    for round in 0..rounds {
        let topic = format!("resume.{round}");
        let mut ws = connect(&target.ws_url()).await?;
        ws.send(Message::text(json!({"type":"subscribe","topic":topic}).to_string())).await?;
        let (seq, epoch) = loop {
            if let Some(Ok(Message::Text(t))) = ws.next().await {
                let v: serde_json::Value = serde_json::from_str(t.as_str())?;
                if v["type"] == "subscribed" {
                    break (v["seq"].as_u64().unwrap_or(0), v["epoch"].clone());
                }
            }
        };
        ws.close(None).await.ok();
        for _ in 0..missed {
            publisher.publish(&topic, 100).await?;
        }
        let mut ws = connect(&resume_on).await?;
        let start = Instant::now();
        let sub = json!({"type":"subscribe","topic":topic,"since":seq,"epoch":epoch});
        ws.send(Message::text(sub.to_string())).await?;
        let mut got = 0;
        while got < missed {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) if read_event(t.as_str()).is_some() => got += 1,
                Ok(Some(Ok(_))) => {}
                _ => anyhow::bail!("resume stalled after {got} of {missed} events"),
            }
        }
        times.push(start.elapsed());
        ws.close(None).await.ok();
    }
    times.sort();
    let median = times[times.len() / 2];
    Ok(Report {
        target: target.name.clone(),
        scenario: format!("resume after {missed} missed"),
        expected: missed,
        delivered: missed,
        elapsed: median,
        max_ms: times.last().map(|t| t.as_secs_f64() * 1000.0).unwrap_or(0.0),
        p50_ms: median.as_secs_f64() * 1000.0,
        ..Default::default()
    })
}
