//! `switchboard-load node-kills` (issue 16, on issue 15's cluster): two nodes sharing a
//! Redis (`--broker`) and a PostgreSQL database (`--database`), runs started through
//! both in turn and watched by subscribers who dial the nodes in turn, while one node
//! at a time is SIGKILLed and, after its lease has run out, started again. The other
//! node takes the dead one's unfinished runs over: a stage that was running fails
//! `node lost` (no retries asked), the run's topic gets a new epoch on its new owner,
//! and its subscribers resume with `recovered: false`, reload over HTTP and go on live.
//! What must hold: no acknowledged run lost, every run ended, every log gapless with
//! the stage's lines in order and none twice, every subscriber's copy equal to it.

use crate::child::{free_port, start_on, Server};
use crate::crashes::{self, Tally};
use crate::redis_restarts::start_redis;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct NodeKillArgs {
    /// The server binary (started here, on loopback).
    #[arg(long, default_value = "target/release/switchboard")]
    switchboard: PathBuf,
    /// Debian's redis-server (started here, on a free port, nothing kept on disk).
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    /// A PostgreSQL server's URL (any database): a fresh database is created there for
    /// the run, and dropped after.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    /// SIGKILLs, of each node in turn.
    #[arg(long, default_value_t = 4)]
    kills: u32,
    /// Seconds between two kills.
    #[arg(long, default_value_t = 20)]
    every: u64,
    /// The nodes' lease (`--node-lease-s`): a killed node's runs are taken over once it
    /// has run out; the node is started again a second after.
    #[arg(long, default_value_t = 5)]
    lease_s: u64,
    #[command(flatten)]
    runs: crashes::WatchedRuns,
}

/// A database of the run's own on the server of `admin` (dropped on drop).
pub(crate) struct Database {
    admin: String,
    name: String,
}

impl Database {
    /// `label`: what the database's name says it is for (a-z, _).
    pub(crate) fn create(admin: &str, label: &str) -> anyhow::Result<Database> {
        let name = format!("switchboard_{label}_{:x}", rand::random::<u32>());
        psql(admin, &format!("CREATE DATABASE {name}"))?;
        Ok(Database { admin: admin.to_owned(), name })
    }

    pub(crate) fn url(&self) -> String {
        match self.admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{}", self.name),
            None => self.admin.clone(),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = psql(&self.admin, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql").args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql]).output().map_err(|e| anyhow::anyhow!("cannot run psql: {e}"))?;
    anyhow::ensure!(out.status.success(), "psql {url}: {sql}: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(())
}

pub async fn run(args: NodeKillArgs) -> anyhow::Result<()> {
    let redis_port = free_port()?;
    let _redis = start_redis(&args.redis_server, redis_port).await?;
    let db = Database::create(&args.postgres, "node_kills")?;
    let (broker, database, lease) = (format!("redis://127.0.0.1:{redis_port}/"), db.url(), args.lease_s.to_string());
    let extra = ["--broker", broker.as_str(), "--broker-prefix", "nk:", "--database", database.as_str(), "--node-lease-s", lease.as_str(), "--concurrency", "8"];
    let root = std::env::temp_dir().join(format!("switchboard-node-kills-{:x}", rand::random::<u32>()));
    let mut nodes: Vec<(PathBuf, u16, Option<Server>)> = Vec::new();
    for i in 0..2 {
        let data = root.join(format!("node-{i}"));
        std::fs::create_dir_all(&data)?;
        let port = free_port()?;
        let server = start_on(&args.switchboard, &data, port, &extra).await?.0;
        nodes.push((data, port, Some(server)));
    }
    let bases: Vec<String> = nodes.iter().map(|(_, port, _)| format!("http://127.0.0.1:{port}")).collect();
    let (tally, stop) = (Arc::new(Tally::default()), Arc::new(AtomicBool::new(false)));
    let pipeline = crashes::pipeline(args.runs.lines, &[]);
    let starter = tokio::spawn(crashes::start_runs(bases.clone(), args.runs.start_every, args.runs.watchers, pipeline, stop.clone(), tally.clone()));
    let begun = Instant::now();
    let mut back = Vec::new();
    for k in 0..args.kills as usize {
        tokio::time::sleep(Duration::from_secs(args.every)).await;
        let (data, port, server) = &mut nodes[k % 2];
        if let Some(mut s) = server.take() {
            crashes::kill9(&mut s);
        }
        let killed = Instant::now();
        tokio::time::sleep(Duration::from_secs(args.lease_s + 1)).await;
        *server = Some(start_on(&args.switchboard, data, *port, &extra).await?.0);
        back.push(killed.elapsed());
    }
    tokio::time::sleep(Duration::from_secs(args.every)).await;
    stop.store(true, Ordering::Relaxed);
    let runs = starter.await?;
    let verdict = crashes::check(&bases[0], runs, args.runs.lines).await?;
    let node_lost = crashes::failed_with(&bases[0], "node lost").await?;
    let t = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "node-kills: 2 nodes on one Redis and one PostgreSQL, {} SIGKILLs (each node in turn, one every {} s, started again {} s later, lease {} s); runs started every {} ms through both, {} subscribers each ({:.0} s)",
        args.kills, args.every, args.lease_s + 1, args.lease_s, args.runs.start_every, args.runs.watchers, begun.elapsed().as_secs_f64()
    );
    let slowest = back.iter().max().copied().unwrap_or_default();
    println!("  runs started {} ({} refused: their node was down); a killed node was serving again {:.1} s after its kill at most", t(&tally.started), t(&tally.refused_starts), slowest.as_secs_f64());
    println!("  runs: {} completed, {} failed ({node_lost} of them `node lost`), {} unfinished, {} lost (acknowledged, then unknown)", verdict.completed, verdict.failed, verdict.unfinished, verdict.lost);
    println!("  logs: {} events, {} runs with a gap or a line twice", verdict.events, verdict.broken_logs);
    println!("  resumes {} (recovered: false {}, each followed by a reload over HTTP: {}); events delivered but never stored, replaced by the reload: {}", t(&tally.resumed), t(&tally.not_recovered), t(&tally.reloads), t(&tally.unstored));
    println!("  subscribers {}: {} with a copy equal to the log; live events duplicated {}, missing {}; protocol errors {}", verdict.copies, verdict.equal, t(&tally.duplicated), t(&tally.missing), t(&tally.errors));
    let whole = verdict.lost == 0
        && verdict.unfinished == 0
        && verdict.broken_logs == 0
        && verdict.failed == node_lost
        // a kill can fail at most the stages its node was running (--concurrency 8)
        && node_lost <= u64::from(args.kills) * 8
        && verdict.equal == verdict.copies
        && t(&tally.duplicated) + t(&tally.missing) == 0;
    println!("  result: {}", if whole { "PASS: every run ended, only those a kill hit failed (`node lost`), every log whole, every copy equal" } else { "FAIL" });
    drop(nodes);
    drop(db);
    let _ = std::fs::remove_dir_all(&root);
    anyhow::ensure!(whole, "a run, its log or a subscriber's copy is not whole");
    Ok(())
}
