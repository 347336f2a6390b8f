//! `switchboard-load agent-moves` (issue 15): agents on any node, under load. Two nodes
//! on one PostgreSQL (`--database`, a fresh database of the run's own), A agents each
//! behind a proxy that leads to one of the nodes, as a load balancer would; runs
//! started through both nodes in turn, their printing stage `runs_on` an agent, each
//! watched by W subscribers who dial the nodes in turn. Every `every` s one agent's
//! connection is cut and its proxy leads it to the other node: the stage it runs goes
//! with it (the owner lets go, the agent's new node takes the run up, the agent goes
//! on from the seq after the last one stored), and a stage waiting for an agent moves
//! its run to the node where a free one is. What must hold: every run completed (none
//! failed, none lost), every log gapless with the stage's lines in order and none
//! twice, every subscriber's copy equal to it.

use crate::agents::{start_named_agent, AgentProcess};
use crate::child::{free_port, start_on};
use crate::crashes::{self, Tally};
use crate::node_kills::Database;
use crate::proxy::Proxy;
use crate::scenario::Target;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct AgentMoveArgs {
    /// The server's binary (also run as `switchboard agent`).
    #[arg(long, default_value = "target/release/switchboard")]
    switchboard: PathBuf,
    /// A PostgreSQL server's URL (any database): a fresh database is created there for
    /// the run, and dropped after.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    /// Agents (each runs one stage at a time), each behind its own proxy.
    #[arg(long, default_value_t = 4)]
    agents: usize,
    /// Cuts, each of one agent's connection (round robin), led to the other node.
    #[arg(long, default_value_t = 20)]
    moves: u32,
    /// Seconds between two cuts.
    #[arg(long, default_value_t = 3)]
    every: u64,
    #[command(flatten)]
    runs: crashes::WatchedRuns,
}

pub async fn run(args: AgentMoveArgs) -> anyhow::Result<()> {
    let db = Database::create(&args.postgres, "agent_moves")?;
    let database = db.url();
    let extra = ["--database", database.as_str(), "--concurrency", "8", "--allowed-hosts", "127.0.0.1"];
    let root = std::env::temp_dir().join(format!("switchboard-agent-moves-{:x}", rand::random::<u32>()));
    let mut nodes = Vec::new();
    for i in 0..2 {
        let data = root.join(format!("node-{i}"));
        std::fs::create_dir_all(&data)?;
        nodes.push(start_on(&args.switchboard, &data, free_port()?, &extra).await?.0);
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr.parse()).collect::<Result<_, _>>()?;
    let bases: Vec<String> = nodes.iter().map(|n| format!("http://{}", n.addr)).collect();
    let (mut proxies, mut agents, mut at) = (Vec::new(), Vec::<AgentProcess>::new(), Vec::new());
    for i in 0..args.agents {
        let proxy = Proxy::start(addrs[i % 2]).await?;
        let target = Target { name: "switchboard".into(), addr: proxy.addr.to_string(), pids: Vec::new(), full_protocol: true, also: Vec::new() };
        agents.push(start_named_agent(&args.switchboard, &target, &format!("agent-{i}")).await?);
        proxies.push(proxy);
        at.push(i % 2);
    }
    let (tally, stop) = (Arc::new(Tally::default()), Arc::new(AtomicBool::new(false)));
    let pipeline = crashes::pipeline(args.runs.lines, &["bench"]);
    let starter = tokio::spawn(crashes::start_runs(bases.clone(), args.runs.start_every, args.runs.watchers, pipeline, stop.clone(), tally.clone()));
    let begun = Instant::now();
    for k in 0..args.moves as usize {
        tokio::time::sleep(Duration::from_secs(args.every)).await;
        let i = k % proxies.len();
        at[i] = 1 - at[i];
        proxies[i].lead_to(addrs[at[i]]);
    }
    tokio::time::sleep(Duration::from_secs(args.every)).await;
    stop.store(true, Ordering::Relaxed);
    let runs = starter.await?;
    let verdict = crashes::check(&bases[0], runs, args.runs.lines).await?;
    let lost_stages = crashes::failed_with(&bases[0], "agent lost").await?;
    let t = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "agent-moves: 2 nodes on one PostgreSQL, {} agents each behind a proxy; {} cuts (one every {} s, the agent led to the other node); runs started every {} ms through both, {} subscribers each ({:.0} s)",
        args.agents, args.moves, args.every, args.runs.start_every, args.runs.watchers, begun.elapsed().as_secs_f64()
    );
    println!("  runs started {} ({} refused)", t(&tally.started), t(&tally.refused_starts));
    println!("  runs: {} completed, {} failed ({lost_stages} of them `agent lost`), {} unfinished, {} lost", verdict.completed, verdict.failed, verdict.unfinished, verdict.lost);
    println!("  moves: {} runs went to another node for a free agent, {} were brought there by their agent mid-stage", verdict.moved_for_agent, verdict.brought_by_agent);
    println!("  logs: {} events, {} runs with a gap or a line twice", verdict.events, verdict.broken_logs);
    println!("  resumes {} (1012 at a move, each resumed on the next node); subscribers {}: {} with a copy equal to the log; live events duplicated {}, missing {}; protocol errors {}", t(&tally.resumed), verdict.copies, verdict.equal, t(&tally.duplicated), t(&tally.missing), t(&tally.errors));
    let whole = verdict.lost == 0
        && verdict.unfinished == 0
        && verdict.failed == 0
        && verdict.broken_logs == 0
        && verdict.equal == verdict.copies
        && t(&tally.duplicated) + t(&tally.missing) == 0;
    println!("  result: {}", if whole { "PASS: every run completed, every log whole, every copy equal" } else { "FAIL" });
    drop(agents);
    drop(proxies);
    drop(nodes);
    drop(db);
    let _ = std::fs::remove_dir_all(&root);
    anyhow::ensure!(whole, "a run, its log or a subscriber's copy is not whole");
    Ok(())
}
