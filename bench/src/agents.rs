//! Remote agents under load (issue 13), each against a baseline in the same run: a
//! stage printing 10,000 lines a second on a `switchboard agent` (baseline: the same
//! stage on the server itself); dequeue to process start on an agent (baseline: on the
//! server); and the server's CPU with 100 idle agents connected (baseline: none).

use crate::engine::{self, LinesReport};
use crate::scenario::Target;
use crate::suite::{start, Server};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct AgentsArgs {
    /// The server's binary (also run as `switchboard agent`).
    #[arg(long, default_value = "target/release/switchboard")]
    switchboard: PathBuf,
    /// Lines per second the remote stage prints.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Seconds it prints for.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Stages started one after another for the start latency.
    #[arg(long, default_value_t = 200)]
    starts: usize,
    /// Idle agents connected at once.
    #[arg(long, default_value_t = 100)]
    idle: usize,
    /// Seconds the idle server's CPU is measured for, each way.
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
    /// Repetitions of the line benchmark (the table shows the median by p99).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

/// A `switchboard agent` process with capability `bench`; killed (SIGKILL) on drop.
pub(crate) struct AgentProcess(Child, PathBuf);

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

async fn start_agent(bin: &PathBuf, target: &Target) -> anyhow::Result<AgentProcess> {
    start_named_agent(bin, target, "bench-agent").await
}

/// Starts `switchboard agent --name {name}` with capability `bench`; returns once the
/// server lists it connected.
pub(crate) async fn start_named_agent(bin: &PathBuf, target: &Target, name: &str) -> anyhow::Result<AgentProcess> {
    let work = std::env::temp_dir().join(format!("switchboard-bench-agent-{}", rand::random::<u32>()));
    let child = Command::new(bin)
        .args(["agent", "--server", &format!("http://{}", target.addr), "--name", name, "--capabilities", "bench", "--work-dir"])
        .arg(&work)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let agent = AgentProcess(child, work);
    let http = reqwest::Client::new();
    for _ in 0..200 {
        // busy too: a restarted agent may be handed a waiting stage at once
        if matches!(agent_status(&http, target, name).await?.as_deref(), Some("idle" | "busy")) {
            return Ok(agent);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the agent never connected")
}

/// The status the server lists for agent `name` (None when it lists none).
pub(crate) async fn agent_status(http: &reqwest::Client, target: &Target, name: &str) -> anyhow::Result<Option<String>> {
    let list: Value = http.get(format!("http://{}/api/v1/agents", target.addr)).send().await?.json().await?;
    let agents = list["agents"].as_array().cloned().unwrap_or_default();
    Ok(agents.iter().find(|x| x["agent_name"] == name).and_then(|x| x["status"].as_str().map(str::to_owned)))
}

fn median(mut v: Vec<LinesReport>) -> LinesReport {
    v.sort_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms));
    v.swap_remove(v.len() / 2)
}

/// Stages of `true` started one after another: the server's dequeue-to-start histogram.
async fn starts(target: &Target, n: usize, runs_on: &[&str]) -> anyhow::Result<(u64, f64, f64, f64)> {
    let http = reqwest::Client::new();
    for _ in 0..n {
        let id = engine::submit(&http, target, json!({"name":"bench-start","stages":[{"id":"s","run":"true","runs_on":runs_on}]})).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let snap: Value = http.get(format!("http://{}/api/v1/workflows/{id}", target.addr)).send().await?.json().await?;
            if snap["finished_at"].is_i64() {
                anyhow::ensure!(snap["state"] == "completed", "a start run ended {}", snap["state"]);
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "a start run did not finish");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    crate::starts::stage_start_from_metrics(target).await
}

/// `n` agent connections that register, answer Pings and send their machine's figures
/// every 2 s, as a `switchboard agent` does; the server's CPU over `secs` with them.
async fn idle_cpu(target: &Target, n: usize, secs: u64) -> anyhow::Result<(f64, u64)> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let url = format!("ws://{}/api/v1/agents/connect", target.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        let register = json!({"type":"register","name":format!("idle-{i}"),"capabilities":["bench"],"concurrency":1,"running":[]});
        ws.send(Message::text(register.to_string())).await?;
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            let metrics = json!({"type":"metrics","metrics":{"cpu_percent":3.0,"memory_percent":20.0,"memory_used_bytes":1u64<<30,"memory_total_bytes":8u64<<30,"gpus":[]}});
            loop {
                tokio::select! {
                    m = ws.next() => if !matches!(m, Some(Ok(_))) { break },
                    _ = tick.tick() => if ws.send(Message::text(metrics.to_string())).await.is_err() { break },
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = cpu_over(target, secs).await;
    let rss_kib = target.proc().rss_kib;
    for t in tasks {
        t.abort();
    }
    Ok((cpu, rss_kib))
}

/// The server's CPU (% of a core) over `secs`.
async fn cpu_over(target: &Target, secs: u64) -> f64 {
    let before = target.proc();
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let after = target.proc();
    100.0 * after.cpu.saturating_sub(before.cpu).as_secs_f64() / t.elapsed().as_secs_f64()
}

fn print_lines(rate: u64, secs: u64, repeat: usize, remote: &LinesReport, local: &LinesReport) {
    println!("## {rate} lines/s for {secs} s from one stage on a remote agent (median of {repeat} by p99)\n");
    println!("| path | received/expected | duplicates | p50 ms | p99 ms | max ms | server CPU % of a core | events |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, r) in [("on a `switchboard agent` (loopback)", remote), ("on the server itself (baseline)", local)] {
        println!(
            "| {name} | {}/{} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {} |",
            r.received, r.expected, r.duplicates, r.p50_ms, r.p99_ms, r.max_ms, r.server_cpu_percent, r.events
        );
    }
    println!("\nremote/local: p50 {:.2}x, p99 {:.2}x", remote.p50_ms / local.p50_ms, remote.p99_ms / local.p99_ms);
}

pub async fn run(args: AgentsArgs) -> anyhow::Result<()> {
    let emitter = std::env::current_exe()?.display().to_string();
    let (rate, secs, repeat) = (args.rate, args.duration, args.repeat.max(1));
    let (mut remote, mut local) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let server: Server = start("switchboard", &args.switchboard, true, &[]).await?;
        let agent = start_agent(&args.switchboard, &server.target).await?;
        remote.push(engine::lines(&server.target, &emitter, rate, secs, &["bench"]).await?);
        local.push(engine::lines(&server.target, &emitter, rate, secs, &[]).await?);
        drop(agent);
    }
    print_lines(rate, secs, repeat, &median(remote), &median(local));

    let server = start("switchboard", &args.switchboard, true, &[]).await?;
    let agent = start_agent(&args.switchboard, &server.target).await?;
    let (n, r50, r99, rmean) = starts(&server.target, args.starts, &["bench"]).await?;
    drop(agent);
    drop(server);
    let server = start("switchboard", &args.switchboard, true, &[]).await?;
    let (_, l50, l99, lmean) = starts(&server.target, args.starts, &[]).await?;
    drop(server);
    println!("\n## dequeue to process start, {n} stages one after another (switchboard_stage_start_seconds bucket bounds)\n");
    println!("| where | p50 ms <= | p99 ms <= | mean ms |");
    println!("|---|---|---|---|");
    println!("| a `switchboard agent` (loopback) | {r50:.2} | {r99:.2} | {rmean:.2} |");
    println!("| the server itself (baseline) | {l50:.2} | {l99:.2} | {l50_mean:.2} |", l50_mean = lmean);

    let server = start("switchboard", &args.switchboard, true, &[]).await?;
    let none = cpu_over(&server.target, args.idle_seconds).await;
    let rss_none = server.target.proc().rss_kib;
    let (with, rss_kib) = idle_cpu(&server.target, args.idle, args.idle_seconds).await?;
    drop(server);
    println!("\n## {} idle agents connected (Pings, machine figures every 2 s), {} s each way\n", args.idle, args.idle_seconds);
    println!("- server CPU: {with:.2} % of a core with them, {none:.2} % without (baseline); added {:.2} %", with - none);
    println!("- server RSS: {:.1} MiB with them, {:.1} MiB without", rss_kib as f64 / 1024.0, rss_none as f64 / 1024.0);
    Ok(())
}
