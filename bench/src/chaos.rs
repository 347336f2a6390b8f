//! `switchboard-load chaos`: connections dropped while loaded (issue 16). N subscribers
//! over T topics and a publisher at R events/s over HTTP (every publish's seq kept),
//! on a server started here, while a chaos task drops D of the subscribers'
//! connections over the run, three ways in turn: the client vanishes (its TCP
//! connection closed, no close frame), the client stops mid-frame (half a frame sent,
//! then gone), and the server closes it (a message over its size limit: 1009). A
//! dropped subscriber reconnects at once and resumes with `since` and `epoch`. At the
//! end every subscriber must hold every event of its topic exactly once, in order.

use crate::frames::{payload, read_event};
use crate::scenario::Ws;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct ChaosArgs {
    /// The server binary (started here, on loopback).
    #[arg(long, default_value = "target/release/switchboard")]
    switchboard: PathBuf,
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,
    #[arg(long, default_value_t = 20)]
    topics: usize,
    /// Events per second, over all topics.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 300)]
    duration: u64,
    /// Connections dropped over the run.
    #[arg(long, default_value_t = 1_000)]
    drops: u64,
}

/// How a connection is dropped.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The client's TCP connection closes with no close frame.
    Vanish,
    /// The client sends half a frame, then its connection closes.
    MidFrame,
    /// The client sends a message over the server's limit: the server closes (1009).
    ServerClose,
}

const FAULTS: [Fault; 3] = [Fault::Vanish, Fault::MidFrame, Fault::ServerClose];
/// The server's default message limit (SWITCHBOARD_MAX_MESSAGE_BYTES), plus one.
const OVER_LIMIT: usize = 65_537;
/// How long subscribers may take to catch up once publishing stops.
const CATCH_UP: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Tally {
    received: AtomicU64,
    duplicated: AtomicU64,
    missing: AtomicU64,
    resumed: AtomicU64,
    not_recovered: AtomicU64,
    /// Closes the chaos task did not cause (a slow-consumer 1013, say).
    other_closes: AtomicU64,
    connect_failures: AtomicU64,
    faults: [AtomicU64; 3],
}

pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    let server = crate::suite::start("switchboard", &args.switchboard, true, &[]).await?;
    let addr = server.target.addr.clone();
    let topics = args.topics.max(1);
    let tally = Arc::new(Tally::default());
    // each topic's last seq once publishing is over (0 until then)
    let finals: Arc<Vec<AtomicU64>> = Arc::new((0..topics).map(|_| AtomicU64::new(0)).collect());
    let mut kills = Vec::new();
    let mut subscribers = Vec::new();
    for i in 0..args.subscribers {
        let (tx, rx) = mpsc::channel(4);
        kills.push(tx);
        let (url, topic, tally, finals) = (format!("ws://{addr}/ws"), i % topics, tally.clone(), finals.clone());
        subscribers.push(tokio::spawn(subscriber(url, topic, rx, tally, finals)));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let duration = Duration::from_secs(args.duration);
    let chaos = tokio::spawn(drop_connections(kills, args.drops, duration, tally.clone()));
    let started = Instant::now();
    let Published { count: published, refused: failed, last, .. } = publish(std::slice::from_ref(&addr), "chaos", topics, args.rate, duration).await;
    for (f, l) in finals.iter().zip(&last) {
        f.store(l.load(Ordering::Relaxed).max(1), Ordering::Relaxed);
    }
    chaos.await?;
    let mut unfinished = 0;
    for s in subscribers {
        if !s.await? {
            unfinished += 1;
        }
    }
    let elapsed = started.elapsed();
    let per_topic: Vec<u64> = last.iter().map(|l| l.load(Ordering::Relaxed)).collect();
    let expected: u64 = (0..args.subscribers).map(|i| per_topic[i % topics]).sum();
    let t = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let (received, duplicated, missing) = (t(&tally.received), t(&tally.duplicated), t(&tally.missing));
    let faults: Vec<u64> = tally.faults.iter().map(t).collect();
    let whole = received == expected && duplicated == 0 && missing == 0 && unfinished == 0 && t(&tally.not_recovered) == 0;
    println!("chaos: {} subscribers on {topics} topics, {} events/s for {} s ({:.0} s with the catch-up)", args.subscribers, args.rate, args.duration, elapsed.as_secs_f64());
    println!("  published {published} (seqs gapless per topic: {}), {failed} refused", per_topic.iter().sum::<u64>() == published);
    println!("  faults: {} vanished, {} mid-frame, {} closed by the server (1009); {} other closes", faults[0], faults[1], faults[2], t(&tally.other_closes));
    println!("  resumes {} (recovered: false {}), connect failures {}", t(&tally.resumed), t(&tally.not_recovered), t(&tally.connect_failures));
    println!("  events expected {expected}, received {received}, duplicated {duplicated}, missing {missing}, subscribers not caught up {unfinished}");
    println!("  result: {}", if whole { "PASS: every subscriber has every event of its topic once, in order" } else { "FAIL" });
    anyhow::ensure!(whole, "events were lost or repeated");
    Ok(())
}

/// What a publisher got back.
pub(crate) struct Published {
    pub count: u64,
    /// Publishes that failed, however they failed.
    pub refused: u64,
    /// Of those, answered 503 with `Retry-After` (a retryable refusal).
    pub unavailable: u64,
    /// Each topic's highest seq acknowledged (of any epoch).
    pub last: Vec<AtomicU64>,
    /// Each topic's publishes acknowledged.
    pub acked: Vec<AtomicU64>,
}

/// Publishes `rate` events/s over `topics` topics (`{prefix}.{i}`) for `duration` (eight
/// producers, over HTTP, to the nodes of `addrs` in turn).
pub(crate) async fn publish(addrs: &[String], prefix: &str, topics: usize, rate: u64, duration: Duration) -> Published {
    const PRODUCERS: u64 = 8;
    let last: Arc<Vec<AtomicU64>> = Arc::new((0..topics).map(|_| AtomicU64::new(0)).collect());
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..topics).map(|_| AtomicU64::new(0)).collect());
    let counts: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let urls: Arc<Vec<String>> = Arc::new(addrs.iter().map(|a| format!("http://{a}/api/v1/publish")).collect());
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let (urls, last, acked, counts) = (urls.clone(), last.clone(), acked.clone(), counts.clone());
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
            let start = Instant::now();
            let mut sent = 0u64;
            while start.elapsed() < duration {
                let due = (start.elapsed().as_secs_f64() * rate as f64 / PRODUCERS as f64) as u64;
                if sent >= due {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                let topic = ((sent * PRODUCERS + p) % topics as u64) as usize;
                let url = &urls[(sent as usize + p as usize) % urls.len()];
                sent += 1;
                let body = json!({"topic": format!("{prefix}.{topic}"), "event": "chaos", "data": payload(100)});
                let reply = async {
                    let resp = client.post(url).json(&body).send().await?;
                    if resp.status().as_u16() == 503 && resp.headers().contains_key("retry-after") {
                        counts[2].fetch_add(1, Ordering::Relaxed);
                    }
                    resp.error_for_status()?.json::<Value>().await
                };
                match reply.await.ok().and_then(|v| v["seq"].as_u64()) {
                    Some(seq) => {
                        last[topic].fetch_max(seq, Ordering::Relaxed);
                        acked[topic].fetch_add(1, Ordering::Relaxed);
                        counts[0].fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        counts[1].fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let owned = |v: Arc<Vec<AtomicU64>>| Arc::try_unwrap(v).unwrap_or_else(|a| a.iter().map(|l| AtomicU64::new(l.load(Ordering::Relaxed))).collect());
    let t = |i: usize| counts[i].load(Ordering::Relaxed);
    Published { count: t(0), refused: t(1), unavailable: t(2), last: owned(last), acked: owned(acked) }
}

/// `drops` faults spread over `duration`, each on a random subscriber, the three kinds in turn.
async fn drop_connections(kills: Vec<mpsc::Sender<Fault>>, drops: u64, duration: Duration, tally: Arc<Tally>) {
    let every = duration / drops.max(1) as u32;
    for i in 0..drops {
        tokio::time::sleep(every).await;
        let fault = FAULTS[(i % 3) as usize];
        let who = rand::random::<u64>() as usize % kills.len().max(1);
        if let Some(k) = kills.get(who) {
            if k.try_send(fault).is_ok() {
                tally.faults[(i % 3) as usize].fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One subscriber of `chaos.{topic}`, resuming after every drop, until it has the
/// topic's last event (true) or the catch-up time is over (false).
async fn subscriber(url: String, topic: usize, mut kill: mpsc::Receiver<Fault>, tally: Arc<Tally>, finals: Arc<Vec<AtomicU64>>) -> bool {
    let name = format!("chaos.{topic}");
    let (mut last, mut epoch): (u64, Option<String>) = (0, None);
    let mut over_at: Option<Instant> = None;
    let mut faults_to_come = true;
    loop {
        let done = finals[topic].load(Ordering::Relaxed);
        if done > 0 && last >= done {
            return true;
        }
        if done > 0 && over_at.get_or_insert_with(Instant::now).elapsed() > CATCH_UP {
            return false;
        }
        let Some(mut ws) = resume(&url, &name, last, epoch.as_deref(), &tally.connect_failures).await else { continue };
        let mut subscribed = false;
        loop {
            let done = finals[topic].load(Ordering::Relaxed);
            if done > 0 && last >= done {
                let _ = ws.close(None).await;
                return true;
            }
            tokio::select! {
                fault = kill.recv(), if faults_to_come => match fault {
                    Some(fault) => {
                        inject(ws, fault).await;
                        break;
                    }
                    None => faults_to_come = false,
                },
                msg = tokio::time::timeout(Duration::from_millis(200), ws.next()) => match msg {
                    Err(_) => {
                        if done > 0 && over_at.get_or_insert_with(Instant::now).elapsed() > CATCH_UP {
                            return false;
                        }
                    }
                    Ok(Some(Ok(Message::Text(t)))) => {
                        let text = t.as_str();
                        if let Some((seq, _)) = read_event(text) {
                            if seq <= last {
                                tally.duplicated.fetch_add(1, Ordering::Relaxed);
                            } else {
                                tally.missing.fetch_add(seq - last - 1, Ordering::Relaxed);
                                tally.received.fetch_add(1, Ordering::Relaxed);
                                last = seq;
                            }
                        } else if !subscribed && text.contains(r#""type":"subscribed""#) {
                            subscribed = true;
                            let v: Value = serde_json::from_str(text).unwrap_or_default();
                            if epoch.is_some() {
                                tally.resumed.fetch_add(1, Ordering::Relaxed);
                                if v["recovered"] != true {
                                    tally.not_recovered.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            epoch = v["epoch"].as_str().map(str::to_owned);
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(_) => {
                        tally.other_closes.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                },
            }
        }
    }
}

/// Dials `url` and asks for `topic` after `since` of `epoch` (when known); None when
/// that failed (a failed dial is counted in `failures`, after a short pause).
pub(crate) async fn resume(url: &str, topic: &str, since: u64, epoch: Option<&str>, failures: &AtomicU64) -> Option<Ws> {
    let Ok(Ok((mut ws, _))) = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url)).await else {
        failures.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
        return None;
    };
    let mut sub = json!({"type": "subscribe", "topic": topic, "since": since});
    if let Some(e) = epoch {
        sub["epoch"] = json!(e);
    }
    tokio::time::timeout(Duration::from_secs(5), ws.send(Message::text(sub.to_string()))).await.ok()?.ok()?;
    Some(ws)
}

/// Drops `ws` the way `fault` says.
async fn inject(mut ws: Ws, fault: Fault) {
    use tokio::io::AsyncWriteExt;
    use tokio_tungstenite::MaybeTlsStream;
    match fault {
        Fault::Vanish => drop(ws),
        Fault::MidFrame => {
            if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
                // a masked text frame that says 100 bytes follow; 10 do
                let mut half = vec![0x81, 0x80 | 100, 1, 2, 3, 4];
                half.extend_from_slice(&[b'x'; 10]);
                let _ = tcp.write_all(&half).await;
                let _ = tcp.shutdown().await;
            }
        }
        Fault::ServerClose => {
            if ws.send(Message::text("x".repeat(OVER_LIMIT))).await.is_ok() {
                // read to the server's close (1009)
                let _ = tokio::time::timeout(Duration::from_secs(5), async { while let Some(Ok(_)) = ws.next().await {} }).await;
            }
        }
    }
}
