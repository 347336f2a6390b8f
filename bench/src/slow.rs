//! `switchboard-load slow`: slow consumers at scale (issue 16). N subscribers read a
//! steady stream spread over T topics; in every other run S more subscribe to all T
//! and never read. Each pair of runs
//! (without, with) goes on fresh servers, R times. What must hold: every stalled one is
//! closed by the server (its slow-consumer counter, 1013, counts each once) having been
//! sent a gapless prefix of its topic, never more than its outbound queue held, and the
//! readers' p99 with them is within 1.1x of the p99 without them.

use crate::scenario::{self, FanoutSpec, Pace, Report, Via, Ws};
use futures::stream::{self, StreamExt};
use futures::SinkExt;
use std::path::PathBuf;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Bytes of kernel receive buffer of a subscriber that never reads.
const STALLED_RECV_BUFFER: u32 = 4_096;

#[derive(clap::Args)]
pub struct SlowArgs {
    /// The server binary (started here, on loopback).
    #[arg(long, default_value = "target/release/switchboard")]
    switchboard: PathBuf,
    /// Subscribers that read.
    #[arg(long, default_value_t = 4_900)]
    subscribers: usize,
    /// Subscribers that never read (in every other run).
    #[arg(long, default_value_t = 100)]
    stalled: usize,
    /// Topics; readers are spread over them, every stalled one takes them all.
    #[arg(long, default_value_t = 10)]
    topics: usize,
    /// Events per second, over all topics.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    #[arg(long, default_value_t = 1_024)]
    payload: usize,
    /// Seconds of publishing per run.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// The server's outbound queue per connection, in messages.
    #[arg(long, default_value_t = 256)]
    outbound_queue: u64,
    /// The server's heartbeat: a subscriber that never reads also never answers a Ping,
    /// and is dropped after two periods; long, so that what closes it is its queue.
    #[arg(long, default_value_t = 120_000)]
    heartbeat_ms: u64,
    /// Pairs of runs (without, with).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// What became of the subscribers that never read, read once the run is over.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stalled {
    /// Their connection had ended (a close frame, EOF or a reset).
    pub ended: usize,
    /// Their connection ended with a close frame of code 1013 (the slow-consumer rule).
    pub closed_1013: usize,
    /// What they had been sent was gapless.
    pub gapless: usize,
    /// The most events any one of them had been sent.
    pub most_events: u64,
}

/// Opens `n` subscribers that will never read, each subscribed to every topic (a
/// dashboard that froze while watching everything), each with a small receive buffer
/// (loopback's autotuned one would hold megabytes: the server's queue is the subject).
/// A peer without the protocol's topics gets the connections only.
pub async fn open_stalled(target: &crate::scenario::Target, n: usize, topics: usize) -> anyhow::Result<Vec<Ws>> {
    let addr = tokio::net::lookup_host(&target.addr)
        .await?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{} resolves to no address", target.addr))?;
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_recv_buffer_size(STALLED_RECV_BUFFER)?;
        let stream = socket.connect(addr).await?;
        let url = format!("ws://{}/ws", target.addr);
        let (mut ws, _) = tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream)).await?;
        if target.full_protocol {
            for t in 0..topics.max(1) {
                let topic = format!("bench.{t}");
                ws.send(Message::text(serde_json::json!({"type": "subscribe", "topic": topic}).to_string())).await?;
                tokio::time::timeout(Duration::from_secs(10), await_subscribed(&mut ws, &topic))
                    .await
                    .map_err(|_| anyhow::anyhow!("no reply to subscribe {topic} within 10 s"))??;
            }
        }
        sockets.push(ws);
    }
    Ok(sockets)
}

/// Reads up to the `subscribed` reply; an `error` reply or the end of the socket fails.
async fn await_subscribed(ws: &mut Ws, topic: &str) -> anyhow::Result<()> {
    while let Some(msg) = ws.next().await {
        let Message::Text(t) = msg? else { continue };
        let v: serde_json::Value = serde_json::from_str(t.as_str())?;
        match v["type"].as_str() {
            Some("subscribed") => return Ok(()),
            Some("error") => anyhow::bail!("subscribe {topic} refused: {t}"),
            _ => {}
        }
    }
    anyhow::bail!("the connection ended before subscribe {topic} was answered")
}

/// Reads each stalled socket to its end (at most 20 s in all).
pub async fn inspect(sockets: Vec<Ws>) -> Stalled {
    let fates: Vec<(bool, bool, bool, u64)> = stream::iter(sockets)
        .map(|mut ws| async move {
            let (mut count, mut gapless, mut saw_1013) = (0u64, true, false);
            let mut last: std::collections::HashMap<String, u64> = Default::default();
            let read = async {
                while let Some(Ok(msg)) = ws.next().await {
                    let t = match msg {
                        Message::Text(t) => t,
                        Message::Close(frame) => {
                            saw_1013 |= frame.is_some_and(|f| u16::from(f.code) == 1013);
                            continue;
                        }
                        _ => continue,
                    };
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else { continue };
                    if let (Some(topic), Some(seq)) = (v["topic"].as_str(), v["seq"].as_u64()) {
                        if v["type"] == "event" {
                            let prev = last.insert(topic.to_owned(), seq);
                            gapless &= prev.is_none_or(|l| seq == l + 1);
                            count += 1;
                        }
                    }
                }
            };
            let ended = tokio::time::timeout(Duration::from_secs(20), read).await.is_ok();
            (ended, saw_1013, gapless, count)
        })
        .buffer_unordered(100)
        .collect()
        .await;
    Stalled {
        ended: fates.iter().filter(|f| f.0).count(),
        closed_1013: fates.iter().filter(|f| f.1).count(),
        gapless: fates.iter().filter(|f| f.2).count(),
        most_events: fates.iter().map(|f| f.3).max().unwrap_or(0),
    }
}

async fn slow_consumer_closes(addr: &str) -> anyhow::Result<u64> {
    let text = reqwest::get(format!("http://{addr}/metrics")).await?.text().await?;
    let line = text.lines().find(|l| l.starts_with("switchboard_slow_consumer_closes")).unwrap_or("");
    Ok(line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as u64)
}

pub async fn run(args: SlowArgs) -> anyhow::Result<()> {
    let (queue, heartbeat) = (args.outbound_queue.to_string(), args.heartbeat_ms.to_string());
    let mut rows: Vec<(usize, Report, u64)> = Vec::new();
    for _ in 0..args.rounds {
        for stalled in [0, args.stalled] {
            let server = crate::suite::start("switchboard", &args.switchboard, true, &["--outbound-queue", &queue, "--heartbeat-ms", &heartbeat]).await?;
            let spec = FanoutSpec {
                subscribers: args.subscribers,
                topics: args.topics,
                pace: Pace::Rate(args.rate),
                payload: args.payload,
                duration: Duration::from_secs(args.duration),
                via: Via::Http,
                stalled,
            };
            let report = scenario::fanout(&server.target, &spec).await?;
            let closes = slow_consumer_closes(&server.target.addr).await?;
            rows.push((stalled, report, closes));
            drop(server);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    println!("| run | readers | stalled | delivered/expected | gaps | p50 ms | p99 ms | server CPU % | closed 1013 (server) | stalled: ended, 1013, gapless, most events |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (i, (stalled, r, closes)) in rows.iter().enumerate() {
        let f = |k: &str| crate::suite::extra(r, k);
        println!(
            "| {} | {} | {stalled} | {}/{} | {} | {:.2} | {:.2} | {:.0} | {closes} | {}, {}, {}, {} |",
            i + 1, args.subscribers, r.delivered, r.expected, r.gaps, r.p50_ms, r.p99_ms, r.cpu_percent(),
            f("stalled_ended"), f("stalled_closed_1013"), f("stalled_gapless"), f("stalled_most_events")
        );
    }
    let median = |with: bool| {
        let mut p: Vec<f64> = rows.iter().filter(|(s, ..)| (*s > 0) == with).map(|(_, r, _)| r.p99_ms).collect();
        p.sort_by(f64::total_cmp);
        p.get(p.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let (without, with) = (median(false), median(true));
    let ratio = with / without;
    let lost: u64 = rows.iter().map(|(_, r, _)| r.expected - r.delivered.min(r.expected)).sum();
    let gaps: u64 = rows.iter().map(|(_, r, _)| r.gaps).sum();
    let all_closed = rows.iter().filter(|(s, ..)| *s > 0).all(|(s, r, c)| {
        let every = |k: &str| crate::suite::extra(r, k) == *s as f64;
        // the 1013 frame itself reaches only those whose socket still had room for it
        // (a stuck one is just dropped): the server's counter says why it closed them
        *c == *s as u64 && every("stalled_ended") && every("stalled_gapless")
    });
    println!(
        "\nmedian p99: without {without:.2} ms, with {with:.2} ms: **{ratio:.2}x**; readers' events lost: {lost}, gaps: {gaps}; \
         every stalled one closed as a slow consumer (counted once) having been sent a gapless prefix: {all_closed}"
    );
    let pass = lost == 0 && gaps == 0 && all_closed && ratio <= 1.1;
    println!("{}", if pass { "PASS" } else { "FAIL" });
    anyhow::ensure!(lost == 0 && gaps == 0, "readers lost {lost} events and saw {gaps} gaps");
    anyhow::ensure!(all_closed, "not every stalled subscriber was closed as a slow consumer, once, with a gapless prefix");
    anyhow::ensure!(ratio <= 1.1, "readers' p99 with stalled ones is {ratio:.2}x of without (bound 1.1x)");
    Ok(())
}
