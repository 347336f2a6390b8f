//! Long life (issue 12): memory stays bounded by settings, not by history. `runs`:
//! thousands of runs, each with 100 events and 1,000 terminal lines, submitted over
//! time: the server's RSS after the last against after the first 500; then a SIGKILL,
//! the time to `/healthz` OK with all of them in the database, and the list's p99.
//! `stream`: one stage printing 1,000 lines a second for a long time: RSS sampled
//! throughout, and a subscriber resuming from seq 1 at the end gets every line in order.

use crate::child::{start, Server};
use crate::procstat;
use crate::scenario::Ws;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct LongLifeArgs {
    #[command(subcommand)]
    what: What,
    /// The server's binary.
    #[arg(long, default_value = "target/release/switchboard", global = true)]
    switchboard: PathBuf,
}

#[derive(clap::Subcommand)]
enum What {
    /// Many runs over time, then a crash and a restart.
    Runs {
        #[arg(long, default_value_t = 10_000)]
        runs: usize,
        /// Runs at once on the server.
        #[arg(long, default_value_t = 8)]
        concurrency: u64,
    },
    /// One stage printing for a long time.
    Stream {
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        /// Seconds it prints.
        #[arg(long, default_value_t = 1_800)]
        duration: u64,
    },
}

fn rss_mib(server: &Server) -> f64 {
    procstat::sample(server.child.id()).map(|s| s.rss_kib as f64 / 1024.0).unwrap_or(f64::NAN)
}

pub async fn run(args: LongLifeArgs) -> anyhow::Result<()> {
    match args.what {
        What::Runs { runs, concurrency } => many_runs(&args.switchboard, runs, concurrency).await,
        What::Stream { rate, duration } => stream(&args.switchboard, rate, duration).await,
    }
}

async fn json(http: &reqwest::Client, url: String) -> anyhow::Result<Value> {
    Ok(http.get(url).send().await?.json().await?)
}

async fn many_runs(bin: &Path, runs: usize, concurrency: u64) -> anyhow::Result<()> {
    let data = std::env::temp_dir().join(format!("switchboard-longlife-{:x}", rand::random::<u32>()));
    std::fs::create_dir_all(&data)?;
    let c = concurrency.to_string();
    let (server, _) = start(bin, &data, &["--concurrency", &c]).await?;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    // 1,000 terminal lines and 100 metric events
    let script = "seq 1 1000 | sed 's/^/terminal line /'; seq 1 100 | sed 's/.*/::metric v=& step=&/'";
    let pipeline = json!({"name":"longlife","stages":[{"id":"work","run":script}]});
    let (mut submitted, mut completed) = (0usize, 0usize);
    let mut rss_at_500 = f64::NAN;
    let begun = Instant::now();
    while completed < runs {
        // over time: a few more than the server runs at once, never a flood
        while submitted < runs && submitted - completed < 2 * concurrency as usize {
            let resp = http.post(format!("{base}/api/v1/workflows")).json(&json!({"pipeline": pipeline})).send().await?;
            anyhow::ensure!(resp.status().as_u16() == 201, "submit: {}", resp.text().await?);
            submitted += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let active = json(&http, format!("{base}/api/v1/workflows?state=pending,running&limit=500")).await?;
        completed = submitted - active["workflows"].as_array().map_or(0, |a| a.len());
        if completed >= 500 && rss_at_500.is_nan() {
            rss_at_500 = rss_mib(&server);
        }
    }
    let rss_end = rss_mib(&server);
    let took = begun.elapsed();
    println!("## {runs} runs (1,000 terminal lines and 100 metric events each), concurrency {concurrency}\n");
    println!("- all completed in {:.0} s ({:.0} runs/s)", took.as_secs_f64(), runs as f64 / took.as_secs_f64());
    println!("- server RSS after 500 runs: {rss_at_500:.1} MiB; after {runs}: {rss_end:.1} MiB; ratio {:.2}x", rss_end / rss_at_500);
    let db = data.join("switchboard.db");
    let db_mib = std::fs::metadata(&db).map(|m| m.len() as f64 / 1048576.0).unwrap_or(0.0);
    println!("- database: {db_mib:.0} MiB");
    // a crash, then a start with all of them stored
    let mut server = server;
    let _ = server.child.kill();
    let _ = server.child.wait();
    drop(server);
    let (server, to_healthy) = start(bin, &data, &["--concurrency", &c]).await?;
    println!("- start-up after SIGKILL to /healthz OK: {:.0} ms", to_healthy.as_secs_f64() * 1000.0);
    let base = format!("http://{}", server.addr);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut cursor: Option<String> = None;
    for _ in 0..200 {
        let url = match &cursor {
            Some(c) => format!("{base}/api/v1/workflows?limit=100&cursor={c}"),
            None => format!("{base}/api/v1/workflows?limit=100"),
        };
        let t = Instant::now();
        let page = json(&http, url).await?;
        hist.record(t.elapsed().as_micros().max(1) as u64)?;
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    println!(
        "- GET /api/v1/workflows?limit=100 (200 pages, walking back through the list): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

async fn stream(bin: &Path, rate: u64, secs: u64) -> anyhow::Result<()> {
    let data = std::env::temp_dir().join(format!("switchboard-stream-{:x}", rand::random::<u32>()));
    std::fs::create_dir_all(&data)?;
    let (server, _) = start(bin, &data, &[]).await?;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let emitter = std::env::current_exe()?.display().to_string();
    let run = format!("'{emitter}' emit --rate {rate} --duration {secs} --pad 20");
    let resp = http.post(format!("{base}/api/v1/workflows")).json(&json!({"pipeline":{"name":"stream","stages":[{"id":"emit","run":run}]}})).send().await?;
    let id = resp.json::<Value>().await?["id"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("no id"))?;
    let begun = Instant::now();
    let mut samples: Vec<(f64, f64)> = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        samples.push((begun.elapsed().as_secs_f64(), rss_mib(&server)));
        let s = json(&http, format!("{base}/api/v1/workflows/{id}")).await?;
        if s["state"] == "completed" || s["state"] == "failed" {
            break;
        }
    }
    let after_minute: Vec<f64> = samples.iter().filter(|(t, _)| *t >= 60.0).map(|(_, r)| *r).collect();
    let at_minute = after_minute.first().copied().unwrap_or(f64::NAN);
    let max = after_minute.iter().copied().fold(f64::NAN, f64::max);
    let end = samples.last().map_or(f64::NAN, |s| s.1);
    println!("## one stage printing {rate} lines/s for {secs} s ({} lines)\n", rate * secs);
    println!("- server RSS at 1 min: {at_minute:.1} MiB; highest after: {max:.1} MiB; at the end: {end:.1} MiB ({:.2}x the 1-min figure)", max / at_minute);
    let mut line = String::from("- RSS every minute (MiB):");
    for (t, r) in samples.iter().filter(|(t, _)| (*t as u64) % 60 < 10) {
        line.push_str(&format!(" {:.0}s={r:.1}", t));
    }
    println!("{line}");
    // a subscriber resuming from seq 1 gets every line, in order
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)).await?;
    ws.send(Message::text(json!({"type":"subscribe","topic":format!("workflow:{id}"),"since":0}).to_string())).await?;
    let (lines, in_order, elapsed) = count_lines(&mut ws, rate * secs).await?;
    println!("- a subscriber from seq 1: {lines}/{} lines, in order: {in_order}, in {:.1} s", rate * secs, elapsed.as_secs_f64());
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

/// Reads terminal output until `total` lines have come (or the stream goes quiet).
async fn count_lines(ws: &mut Ws, total: u64) -> anyhow::Result<(u64, bool, Duration)> {
    let started = Instant::now();
    let (mut next, mut in_order) = (0u64, true);
    while next < total {
        let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(30), ws.next()).await else { break };
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(text.as_str())?;
        if v["event"] != "terminal_output" {
            continue;
        }
        for l in v["data"]["output"].as_str().unwrap_or("").lines() {
            let n: Option<u64> = l.strip_prefix("line ").and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok());
            if let Some(n) = n {
                in_order &= n == next;
                next = n + 1;
            }
        }
    }
    Ok((next, in_order, started.elapsed()))
}
