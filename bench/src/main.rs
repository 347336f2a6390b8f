//! `switchboard-load`: Switchboard's load generator. Runs one scenario against a
//! running server, or `suite`: starts the hub and the baseline broadcast server
//! itself and runs every scenario against both, alternating, printing a table of
//! the results and the hub/baseline ratios (docs/BENCHMARKS.md).

mod agent_kills;
mod agent_moves;
mod agents;
mod chaos;
mod child;
mod crashes;
mod diskfull;
mod engine;
mod frames;
mod longlife;
mod node_kills;
mod procstat;
mod proxy;
mod readers;
mod redis_restarts;
mod scenario;
mod slow;
mod small_disk;
mod soak;
mod starts;
mod suite;

use clap::{Parser, Subcommand};
use scenario::{FanoutSpec, Pace, Target, Via};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "switchboard-load", version, about = "Load generator for Switchboard's WebSocket hub")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// N subscribers, one publisher at a set rate (or a bounded window).
    Fanout {
        /// Server address (host:port).
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: String,
        /// Server process id, to read its CPU time and memory from /proc (repeat for
        /// a cluster's nodes and its Redis: their sum is reported).
        #[arg(long)]
        pid: Vec<u32>,
        /// The target is the baseline broadcast server (no subscribe step).
        #[arg(long)]
        baseline: bool,
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        #[arg(long, default_value_t = 1)]
        topics: usize,
        /// Events per second; 0 = as fast as the window allows.
        #[arg(long, default_value_t = 100)]
        rate: u64,
        /// Events in flight when --rate is 0.
        #[arg(long, default_value_t = 64)]
        window: u64,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 100)]
        payload: usize,
        /// Seconds of publishing.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, value_enum, default_value_t = Via::Ws)]
        via: Via,
        /// Extra subscribers that never read.
        #[arg(long, default_value_t = 0)]
        stalled: usize,
        /// Another node of the same cluster (repeat for more): subscribers are spread
        /// over every node, publishes alternate between them.
        #[arg(long)]
        also: Vec<String>,
    },
    /// N idle connections: set-up rate and server memory per connection.
    Idle {
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: String,
        #[arg(long)]
        pid: Vec<u32>,
        #[arg(long)]
        baseline: bool,
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
    },
    /// A subscriber misses N events and resumes with `since`: time to have them all.
    Resume {
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: String,
        #[arg(long, default_value_t = 1_000)]
        missed: u64,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Another node of the same cluster: the subscriber resumes there.
        #[arg(long)]
        also: Vec<String>,
    },
    /// Every scenario against the hub and the baseline, started here, same run.
    Suite(suite::SuiteArgs),
    /// The job engine's benchmarks, on a server started here.
    Engine(suite::EngineArgs),
    /// Long life: thousands of runs over time, a long stream (issue 12).
    Longlife(longlife::LongLifeArgs),
    /// Connections dropped while loaded: every event still once, in order (issue 16).
    Chaos(chaos::ChaosArgs),
    /// The server SIGKILLed and restarted during watched runs: every log whole (issue 16).
    Crashes(crashes::CrashArgs),
    /// The database unwritable (its disk full) for a while, under load: honest errors, nothing lost (issue 16).
    Diskfull(diskfull::DiskFullArgs),
    /// Agents SIGKILLed while they run watched stages: only those runs fail, every log whole (issue 16).
    AgentKills(agent_kills::AgentKillArgs),
    /// Two nodes on one Redis, Redis SIGKILLed and started empty under load: no silent gap (issue 16).
    RedisRestarts(redis_restarts::RedisRestartArgs),
    /// Two nodes on Redis and PostgreSQL, each SIGKILLed in turn during watched runs: every log whole (issue 16).
    NodeKills(node_kills::NodeKillArgs),
    /// Two nodes on PostgreSQL, agents behind proxies cut and led to the other node during watched runs: every run completes whole (issue 15).
    AgentMoves(agent_moves::AgentMoveArgs),
    /// Subscribers that never read among many that do: closed (1013), the rest unslowed (issue 16).
    Slow(slow::SlowArgs),
    /// Many connections, a steady publisher and runs for a long time: memory, fds, p99 (issue 16).
    Soak(soak::SoakArgs),
    /// Remote agents: lines from an agent, dequeue to start on one, idle agents (issue 13).
    Agents(agents::AgentsArgs),
    /// Prints `line N t=MICROS` lines at a steady rate (the stage `engine` runs).
    Emit {
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Bytes of padding per line.
        #[arg(long, default_value_t = 40)]
        pad: usize,
    },
}

fn target(addr: String, pids: Vec<u32>, baseline: bool, also: Vec<String>) -> Target {
    let name = if !also.is_empty() { format!("switchboard x{}", also.len() + 1) } else if baseline { "baseline".into() } else { "switchboard".into() };
    Target { name, addr, pids, full_protocol: !baseline, also }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    suite::raise_fd_limit();
    match Cli::parse().command {
        Command::Fanout { addr, pid, baseline, subscribers, topics, rate, window, payload, duration, via, stalled, also } => {
            let pace = if rate == 0 { Pace::Window(window) } else { Pace::Rate(rate) };
            let spec =
                FanoutSpec { subscribers, topics, pace, payload, duration: Duration::from_secs(duration), via, stalled };
            let report = scenario::fanout(&target(addr, pid, baseline, also), &spec).await?;
            suite::print_reports(&[report]);
        }
        Command::Idle { addr, pid, baseline, connections } => {
            let report = scenario::idle(&target(addr, pid, baseline, Vec::new()), connections).await?;
            suite::print_reports(&[report]);
        }
        Command::Resume { addr, missed, rounds, also } => {
            let report = scenario::resume(&target(addr, Vec::new(), false, also), missed, rounds).await?;
            suite::print_reports(&[report]);
        }
        Command::Suite(args) => suite::run(args).await?,
        Command::Engine(args) => suite::run_engine(args).await?,
        Command::Longlife(args) => longlife::run(args).await?,
        Command::Agents(args) => agents::run(args).await?,
        Command::Chaos(args) => chaos::run(args).await?,
        Command::Crashes(args) => crashes::run(args).await?,
        Command::Diskfull(args) => diskfull::run(args).await?,
        Command::AgentKills(args) => agent_kills::run(args).await?,
        Command::RedisRestarts(args) => redis_restarts::run(args).await?,
        Command::NodeKills(args) => node_kills::run(args).await?,
        Command::AgentMoves(args) => agent_moves::run(args).await?,
        Command::Slow(args) => slow::run(args).await?,
        Command::Soak(args) => soak::run(args).await?,
        Command::Emit { rate, duration, pad } => engine::emit(rate, duration, pad)?,
    }
    Ok(())
}
