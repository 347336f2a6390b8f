//! `switchboard-load agent-kills` (issue 16): `switchboard agent` processes SIGKILLed
//! while they run watched stages. Runs start at a steady pace, their printing stage on
//! one of A agents, each run watched by W subscribers from seq 1; K times an agent is
//! killed and started again under the same name. The server stays up, so subscribers
//! keep their connections. What must hold: a stage on a killed agent fails `agent lost`
//! (its agent came back without it) and its run ends; every other run completes; every
//! run's log is gapless with the stage's lines in order and none twice, and every
//! subscriber's copy equals it.

use crate::agents::{agent_status, start_named_agent, AgentProcess};
use crate::child::start;
use crate::crashes::{self, Tally};
use crate::scenario::Target;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct AgentKillArgs {
    /// The server's binary (also run as `switchboard agent`).
    #[arg(long, default_value = "target/release/switchboard")]
    switchboard: PathBuf,
    /// Agents connected (each runs one stage at a time).
    #[arg(long, default_value_t = 8)]
    agents: usize,
    /// SIGKILLs of an agent (round robin), each followed by a restart.
    #[arg(long, default_value_t = 10)]
    kills: u32,
    /// Seconds between two kills.
    #[arg(long, default_value_t = 6)]
    every: u64,
    #[command(flatten)]
    runs: crashes::WatchedRuns,
}

pub async fn run(args: AgentKillArgs) -> anyhow::Result<()> {
    let data = std::env::temp_dir().join(format!("switchboard-agent-kills-{:x}", rand::random::<u32>()));
    std::fs::create_dir_all(&data)?;
    let conc = (args.agents * 2).to_string();
    let (server, _) = start(&args.switchboard, &data, &["--concurrency", &conc]).await?;
    let base = format!("http://{}", server.addr);
    let target = Target { name: "switchboard".into(), addr: server.addr.clone(), pids: vec![server.child.id()], full_protocol: true, also: Vec::new() };
    let names: Vec<String> = (0..args.agents).map(|i| format!("agent-{i}")).collect();
    let mut agents: Vec<Option<AgentProcess>> = Vec::new();
    for name in &names {
        agents.push(Some(start_named_agent(&args.switchboard, &target, name).await?));
    }
    let (tally, stop) = (Arc::new(Tally::default()), Arc::new(AtomicBool::new(false)));
    let pipeline = crashes::pipeline(args.runs.lines, &["bench"]);
    let starter = tokio::spawn(crashes::start_runs(vec![base.clone()], args.runs.start_every, args.runs.watchers, pipeline, stop.clone(), tally.clone()));
    let begun = Instant::now();
    let mut back = Vec::new();
    for k in 0..args.kills as usize {
        tokio::time::sleep(Duration::from_secs(args.every)).await;
        let i = k % agents.len();
        let killed = Instant::now();
        // the drop sends SIGKILL and reaps it; what it ran is orphaned, as after a crash
        agents[i] = None;
        let http = crate::child::http();
        while !matches!(agent_status(&http, &target, &names[i]).await?.as_deref(), Some("offline") | None) {
            anyhow::ensure!(killed.elapsed() < Duration::from_secs(30), "the server still lists {} connected 30 s after its SIGKILL", names[i]);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        agents[i] = Some(start_named_agent(&args.switchboard, &target, &names[i]).await?);
        back.push(killed.elapsed());
    }
    tokio::time::sleep(Duration::from_secs(args.every)).await;
    stop.store(true, Ordering::Relaxed);
    let runs = starter.await?;
    let verdict = crashes::check(&base, runs, args.runs.lines).await?;
    let lost_stages = crashes::failed_with(&base, "agent lost").await?;
    let t = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let slowest = back.iter().max().copied().unwrap_or_default();
    println!("agent-kills: {} SIGKILLs of one of {} agents, one every {} s, runs started every {} ms, {} subscribers each ({:.0} s)", args.kills, args.agents, args.every, args.runs.start_every, args.runs.watchers, begun.elapsed().as_secs_f64());
    println!("  runs started {} ({} refused); a killed agent was listed offline and back again within {:.0} ms", t(&tally.started), t(&tally.refused_starts), slowest.as_secs_f64() * 1000.0);
    println!("  runs: {} completed, {} failed ({lost_stages} of them `agent lost`), {} unfinished, {} lost", verdict.completed, verdict.failed, verdict.unfinished, verdict.lost);
    println!("  logs: {} events, {} runs with a gap or a line twice", verdict.events, verdict.broken_logs);
    println!("  subscribers {}: {} with a copy equal to the log; live events duplicated {}, missing {}; resumes {}; protocol errors {}", verdict.copies, verdict.equal, t(&tally.duplicated), t(&tally.missing), t(&tally.resumed), t(&tally.errors));
    let whole = verdict.lost == 0
        && verdict.unfinished == 0
        && verdict.broken_logs == 0
        && verdict.failed == lost_stages
        && lost_stages <= u64::from(args.kills)
        && verdict.equal == verdict.copies
        && t(&tally.duplicated) + t(&tally.missing) == 0;
    println!("  result: {}", if whole { "PASS: every run ended, only those a kill hit failed (`agent lost`), every log whole, every copy equal" } else { "FAIL" });
    drop(agents);
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    anyhow::ensure!(whole, "a run, its log or a subscriber's copy is not whole");
    Ok(())
}
