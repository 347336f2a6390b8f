//! `switchboard-load diskfull` (issue 16): the database made unwritable for real (its
//! data directory's tmpfs filled) for a while, several times, while runs start and are
//! watched and an ephemeral stream flows. What must hold: the stream goes on untouched
//! (every event once, in order); `/healthz` says `degraded` (503) during each outage
//! and `ok` after; a run asked for meanwhile is refused honestly (503, retryable,
//! Retry-After) rather than acknowledged and not stored; every run acknowledged
//! completes once space is back (its stage waits, nothing is dropped), its log gapless
//! with every line once, and every subscriber's copy equal to the log.

use crate::child::{free_port, start_on};
use crate::crashes::{self, Tally};
use crate::scenario::{open_subscribers, Target};
use crate::small_disk::SmallDisk;
use crate::soak::{self, Seen};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct DiskFullArgs {
    /// The server binary (started here, on loopback).
    #[arg(long, default_value = "target/release/switchboard")]
    switchboard: PathBuf,
    /// Times the disk is filled.
    #[arg(long, default_value_t = 3)]
    outages: u32,
    /// Seconds each outage lasts.
    #[arg(long, default_value_t = 10)]
    outage_s: u64,
    /// Seconds of normal operation before, between and after outages.
    #[arg(long, default_value_t = 20)]
    between_s: u64,
    #[command(flatten)]
    runs: crashes::WatchedRuns,
    /// Subscribers of the ephemeral stream.
    #[arg(long, default_value_t = 500)]
    subscribers: usize,
    #[arg(long, default_value_t = 10)]
    topics: usize,
    /// Events per second of the ephemeral stream, over all topics.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// The tmpfs holding the data directory.
    #[arg(long, default_value = "256m")]
    disk: String,
}

/// What `/healthz` said, polled every 100 ms.
#[derive(Default)]
struct HealthLog {
    degraded_polls: AtomicU64,
    ok_polls: AtomicU64,
    /// Whether a poll since the last reset said degraded.
    saw_degraded: AtomicBool,
}

pub async fn run(args: DiskFullArgs) -> anyhow::Result<()> {
    let disk = SmallDisk::mount(&args.disk)?;
    let data = disk.path().join("data");
    std::fs::create_dir_all(&data)?;
    let (server, _) = start_on(&args.switchboard, &data, free_port()?, &["--concurrency", "8"]).await?;
    let base = format!("http://{}", server.addr);
    let target = Target { name: "switchboard".into(), addr: server.addr.clone(), pids: vec![server.child.id()], full_protocol: true, also: Vec::new() };
    let topics = args.topics.max(1);
    let sockets = open_subscribers(&target, args.subscribers, topics, 200).await?;
    let seen = Seen::new(60);
    let finals: Arc<Vec<AtomicU64>> = Arc::new((0..topics).map(|_| AtomicU64::new(0)).collect());
    let readers: Vec<_> = sockets.into_iter().map(|ws| tokio::spawn(soak::read(ws, seen.clone(), finals.clone()))).collect();

    let total = Duration::from_secs(args.between_s + u64::from(args.outages) * (args.outage_s + args.between_s));
    let publisher = tokio::spawn({
        let (addr, rate) = (server.addr.clone(), args.rate);
        async move { crate::chaos::publish(&[addr], "bench", topics, rate, total).await }
    });
    let (tally, stop) = (Arc::new(Tally::default()), Arc::new(AtomicBool::new(false)));
    let starter = tokio::spawn(crashes::start_runs(vec![base.clone()], args.runs.start_every, args.runs.watchers, crashes::pipeline(args.runs.lines, &[]), stop.clone(), tally.clone()));
    let health = Arc::new(HealthLog::default());
    let poller = tokio::spawn(poll_health(base.clone(), health.clone(), stop.clone()));

    let begun = Instant::now();
    let mut outages = Vec::new();
    for _ in 0..args.outages {
        tokio::time::sleep(Duration::from_secs(args.between_s)).await;
        health.saw_degraded.store(false, Ordering::Relaxed);
        let filled = Instant::now();
        let filler = disk.fill()?;
        let fill_took = filled.elapsed();
        tokio::time::sleep(Duration::from_secs(args.outage_s).saturating_sub(fill_took)).await;
        std::fs::remove_file(&filler)?;
        let freed = Instant::now();
        let mut healthy_after = None;
        while freed.elapsed() < Duration::from_secs(60) {
            if crate::child::http().get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                healthy_after = Some(freed.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        outages.push((health.saw_degraded.load(Ordering::Relaxed), fill_took, healthy_after));
    }
    tokio::time::sleep(Duration::from_secs(args.between_s)).await;
    stop.store(true, Ordering::Relaxed);
    let runs = starter.await?;
    poller.await?;
    let crate::chaos::Published { count: published, refused: refused_publishes, last, .. } = publisher.await?;
    for (f, l) in finals.iter().zip(&last) {
        f.store(l.load(Ordering::Relaxed).max(1), Ordering::Relaxed);
    }
    let caught_up = soak::caught_up(readers, &seen).await;
    let verdict = crashes::check(&base, runs, args.runs.lines).await?;
    let healthy_at_end = crate::child::http().get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success());

    let t = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let per_topic: Vec<u64> = last.iter().map(|l| l.load(Ordering::Relaxed)).collect();
    let expected: u64 = (0..args.subscribers).map(|i| per_topic[i % topics]).sum();
    println!(
        "diskfull: {} outages of {} s (the data directory's tmpfs of {} filled), {} s apart; a run every {} ms watched by {}; {} subscribers of {topics} ephemeral topics at {} events/s ({:.0} s)",
        args.outages, args.outage_s, args.disk, args.between_s, args.runs.start_every, args.runs.watchers, args.subscribers, args.rate, begun.elapsed().as_secs_f64()
    );
    for (i, (degraded, fill, healthy)) in outages.iter().enumerate() {
        let healthy = healthy.map_or("never".to_owned(), |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0));
        println!("  outage {}: filled in {:.0} ms; /healthz said degraded: {degraded}; ok again {healthy} after space came back", i + 1, fill.as_secs_f64() * 1000.0);
    }
    println!("  /healthz polls: {} degraded (503), {} ok; ok at the end: {healthy_at_end}", t(&health.degraded_polls), t(&health.ok_polls));
    let (started, refused, unavailable) = (t(&tally.started), t(&tally.refused_starts), t(&tally.unavailable));
    println!("  runs asked for {}: acknowledged {started}, refused {refused} (503 with Retry-After: {unavailable})", started + refused);
    println!("  runs acknowledged: {} completed, {} failed, {} unfinished, {} lost; logs: {} events, {} with a gap or a line twice", verdict.completed, verdict.failed, verdict.unfinished, verdict.lost, verdict.events, verdict.broken_logs);
    println!("  run subscribers {}: {} with a copy equal to the log; live events duplicated {}, missing {}; protocol errors {}", verdict.copies, verdict.equal, t(&tally.duplicated), t(&tally.missing), t(&tally.errors));
    let (received, duplicated, missing) = (t(&seen.received), t(&seen.duplicated), t(&seen.missing));
    println!("  ephemeral stream: published {published} ({refused_publishes} refused); expected {expected}, received {received}, duplicated {duplicated}, missing {missing}; caught up {caught_up} of {}", args.subscribers);
    drop(server);

    let mut failures = Vec::new();
    if !outages.iter().all(|(d, _, h)| *d && h.is_some()) || !healthy_at_end {
        failures.push("an outage went unreported by /healthz, or health never came back");
    }
    if refused != unavailable || unavailable == 0 {
        failures.push("a refused start was not a 503 with Retry-After, or no start met an outage");
    }
    if verdict.completed != started || verdict.lost + verdict.unfinished + verdict.broken_logs > 0 {
        failures.push("an acknowledged run did not complete whole");
    }
    if verdict.equal != verdict.copies || t(&tally.duplicated) + t(&tally.missing) > 0 {
        failures.push("a run subscriber's copy differs from the log");
    }
    if received != expected || duplicated + missing > 0 || caught_up != args.subscribers || refused_publishes > 0 {
        failures.push("the ephemeral stream lost, repeated or refused events");
    }
    println!("  result: {}", if failures.is_empty() { "PASS".to_owned() } else { format!("FAIL: {}", failures.join("; ")) });
    anyhow::ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}

async fn poll_health(base: String, log: Arc<HealthLog>, stop: Arc<AtomicBool>) {
    let http = crate::child::http();
    while !stop.load(Ordering::Relaxed) {
        match http.get(format!("{base}/healthz")).timeout(Duration::from_secs(2)).send().await {
            Ok(r) if r.status().as_u16() == 503 => {
                log.degraded_polls.fetch_add(1, Ordering::Relaxed);
                log.saw_degraded.store(true, Ordering::Relaxed);
            }
            Ok(r) if r.status().is_success() => {
                log.ok_polls.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
