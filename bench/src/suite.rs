//! The whole benchmark: both servers started here, every scenario against each,
//! results and ratios printed as Markdown.

use crate::scenario::{self, FanoutSpec, Pace, Report, Target, Via};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[derive(clap::Args)]
pub struct SuiteArgs {
    /// The hub's binary.
    #[arg(long, default_value = "target/release/switchboard")]
    switchboard: PathBuf,
    /// The baseline's binary.
    #[arg(long, default_value = "target/release/baseline-broadcast")]
    baseline: PathBuf,
    /// An earlier build of the hub, measured in the same run (before/after).
    #[arg(long)]
    previous: Option<PathBuf>,
    /// Seconds each fan-out scenario publishes.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Idle connections to open.
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Subscriber counts of the 100 msg/s fan-out scenarios.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1_000, 5_000])]
    fanout: Vec<usize>,
    /// Repetitions of each scenario (the table shows the median run).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
}

/// Raises the open-file limit to the hard limit (10k connections need 10k fds, on
/// both ends); child servers inherit it.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

pub(crate) struct Server {
    child: Child,
    pub(crate) target: Target,
    _data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._data);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether a hub binary has the secure defaults (and so takes `--auth off`): builds from
/// before them do not know the flags.
fn has_secure_defaults(bin: &PathBuf) -> bool {
    std::process::Command::new(bin).arg("--help").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--inline-pipelines"))
}

pub(crate) async fn start(name: &str, bin: &PathBuf, full: bool, extra: &[&str]) -> anyhow::Result<Server> {
    let port = free_port()?;
    let data = std::env::temp_dir().join(format!("switchboard-bench-{port}"));
    let mut cmd = Command::new(bin);
    if full {
        // a producer streaming over one WebSocket gets a producer's budget (the default,
        // 10,000 publish/s per connection, is below what max throughput needs)
        cmd.args(["--port", &port.to_string(), "--log", "warn", "--publish-rate-per-s", "10000000"]);
        if has_secure_defaults(bin) {
            // the load comes from one address, on loopback, and starts inline pipelines
            cmd.args(["--auth", "off", "--inline-pipelines", "on", "--max-connections-per-ip", "1000000"]);
        }
        cmd
            .args(extra)
            .arg("--data-dir")
            .arg(&data);
    } else {
        cmd.arg(port.to_string());
    }
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn()?;
    let target = Target { name: name.into(), addr: format!("127.0.0.1:{port}"), pids: vec![child.id()], full_protocol: full, also: Vec::new() };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(&target.addr).await.is_ok() {
            return Ok(Server { child, target, _data: data });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{name} did not start listening on {}", target.addr)
}

/// The servers every scenario runs against: the hub, the earlier hub if given, the
/// baseline (label, binary, full protocol).
fn servers(args: &SuiteArgs) -> Vec<(&'static str, &PathBuf, bool)> {
    let mut v = vec![("switchboard", &args.switchboard, true)];
    if let Some(p) = &args.previous {
        v.push(("previous", p, true));
    }
    v.push(("baseline", &args.baseline, false));
    v
}

/// Runs one scenario on fresh servers, each in turn, `repeat` times, and keeps the
/// median run of each by the scenario's main figure (one report per server).
async fn pair<F, Fut>(args: &SuiteArgs, name: &str, run: F, key: fn(&Report) -> f64) -> anyhow::Result<Vec<Report>>
where
    F: Fn(Target) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Report>>,
{
    let targets = servers(args);
    let mut runs: Vec<Vec<Report>> = targets.iter().map(|_| Vec::new()).collect();
    for _ in 0..args.repeat.max(1) {
        for (i, (label, bin, full)) in targets.iter().enumerate() {
            let server = start(label, bin, *full, &[]).await?;
            let mut target = server.target.clone();
            target.name = (*label).into();
            let mut report = run(target).await?;
            report.scenario = name.into();
            runs[i].push(report);
            drop(server);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let median = |mut v: Vec<Report>| {
        v.sort_by(|a, b| key(a).total_cmp(&key(b)));
        v.swap_remove(v.len() / 2)
    };
    Ok(runs.into_iter().map(median).collect())
}

pub async fn run(args: SuiteArgs) -> anyhow::Result<()> {
    raise_fd_limit();
    let duration = Duration::from_secs(args.duration);
    let mut rows: Vec<Vec<Report>> = Vec::new();

    let spec =
        FanoutSpec { subscribers: 100, topics: 1, pace: Pace::Window(256), payload: 100, duration, via: Via::Ws, stalled: 0 };
    rows.push(pair(&args, "max throughput, 100 subscribers", |t| async move { scenario::fanout(&t, &spec).await }, |r| r.deliveries_per_s()).await?);
    for &n in &args.fanout {
        let spec =
            FanoutSpec { subscribers: n, topics: 1, pace: Pace::Rate(100), payload: 100, duration, via: Via::Http, stalled: 0 };
        let name = format!("fan-out {n} x 100 msg/s");
        rows.push(pair(&args, &name, |t| async move { scenario::fanout(&t, &spec).await }, |r| r.p99_ms).await?);
    }
    let idle = args.idle;
    rows.push(
        pair(&args, &format!("{idle} idle connections"), |t| async move { scenario::idle(&t, idle).await }, |r| {
            r.extra.iter().find(|(k, _)| k == "rss_kib_per_connection").map(|(_, v)| *v).unwrap_or(0.0)
        })
        .await?,
    );
    print_comparison(&rows);

    stalled_reader(&args, duration).await?;

    let server = start("switchboard", &args.switchboard, true, &[]).await?;
    let resume = scenario::resume(&server.target, 1_000, 5).await?;
    println!("\nresume after 1,000 missed events (switchboard only): median {:.1} ms, max {:.1} ms over 5 rounds", resume.p50_ms, resume.max_ms);
    Ok(())
}

/// 1,000 subscribers at 100 msg/s of 1 KiB events, with and without one subscriber
/// that never reads, on the hub alone: the others' latency must not change.
async fn stalled_reader(args: &SuiteArgs, duration: Duration) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for stalled in [0, 1] {
        let server = start("switchboard", &args.switchboard, true, &[]).await?;
        let spec = FanoutSpec {
            subscribers: 1_000,
            topics: 1,
            pace: Pace::Rate(100),
            payload: 1_024,
            duration,
            via: Via::Http,
            stalled,
        };
        runs.push(scenario::fanout(&server.target, &spec).await?);
        drop(server);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("
one subscriber that stops reading (hub, 1,000 subscribers x 100 msg/s, 1 KiB):");
    for (r, label) in runs.iter().zip(["without", "with one stalled"]) {
        println!(
            "- {label}: delivered {}/{}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            r.delivered, r.expected, r.p50_ms, r.p99_ms, r.max_ms
        );
    }
    println!("- p99 ratio (with / without): {:.2}x", runs[1].p99_ms / runs[0].p99_ms);
    Ok(())
}

pub(crate) fn extra(r: &Report, key: &str) -> f64 {
    r.extra.iter().find(|(k, _)| k == key).map(|(_, v)| *v).unwrap_or(f64::NAN)
}

fn print_comparison(rows: &[Vec<Report>]) {
    println!("| scenario | server | delivered/expected | gaps | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU % | peak RSS MiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        for r in row {
            if r.scenario.contains("idle") {
                println!(
                    "| {} | {} | {:.0} conn/s set-up | | | | | | | {:.0} | {:.1} (RSS/conn {:.2} KiB) |",
                    r.scenario, r.target, extra(r, "connections_per_s"), r.cpu_percent(),
                    r.peak_rss_kib as f64 / 1024.0, extra(r, "rss_kib_per_connection")
                );
            } else {
                println!(
                    "| {} | {} | {}/{} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.1} |",
                    r.scenario, r.target, r.delivered, r.expected, r.gaps, r.deliveries_per_s(), r.p50_ms,
                    r.p99_ms, r.p999_ms, r.max_ms, r.cpu_percent(), r.peak_rss_kib as f64 / 1024.0
                );
            }
        }
    }
    for (other, label) in [(rows[0].len() - 1, "baseline"), (1, "previous")] {
        if other == 0 || rows.iter().any(|r| r.len() <= other) || (label == "previous" && rows[0].len() < 3) {
            continue;
        }
        println!("\nratios (switchboard / {label}):");
        for row in rows {
            let (hub, base) = (&row[0], &row[other]);
            if hub.scenario.contains("idle") {
                println!(
                    "- {}: RSS per connection {:.2}x, set-up rate {:.2}x",
                    hub.scenario,
                    extra(hub, "rss_kib_per_connection") / extra(base, "rss_kib_per_connection"),
                    extra(hub, "connections_per_s") / extra(base, "connections_per_s")
                );
            } else {
                println!(
                    "- {}: throughput {:.2}x, p99 {:.2}x, p99.9 {:.2}x, max {:.2}x, server CPU {:.2}x",
                    hub.scenario,
                    hub.deliveries_per_s() / base.deliveries_per_s(),
                    hub.p99_ms / base.p99_ms,
                    hub.p999_ms / base.p999_ms,
                    hub.max_ms / base.max_ms,
                    hub.server_cpu_s / base.server_cpu_s
                );
            }
        }
    }
}

pub fn print_reports(reports: &[Report]) {
    for r in reports {
        println!(
            "{} {}: delivered {}/{} gaps {} published {} in {:.2}s -> {:.0} deliveries/s; latency ms p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}; server CPU {:.2}s ({:.0}%), peak RSS {} KiB {:?}",
            r.target, r.scenario, r.delivered, r.expected, r.gaps, r.published, r.elapsed.as_secs_f64(),
            r.deliveries_per_s(), r.p50_ms, r.p99_ms, r.p999_ms, r.max_ms, r.server_cpu_s, r.cpu_percent(),
            r.peak_rss_kib, r.extra
        );
    }
}

#[derive(clap::Args)]
pub struct EngineArgs {
    /// The server's binary.
    #[arg(long, default_value = "target/release/switchboard")]
    switchboard: PathBuf,
    /// Lines per second the stage prints.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Seconds it prints for.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Workflows submitted at once.
    #[arg(long, default_value_t = 100)]
    runs: usize,
    /// The server's concurrency limit for them.
    #[arg(long, default_value_t = 4)]
    concurrency: u64,
    /// Repetitions of the line benchmark (the table shows the median by p99).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Store runs in this PostgreSQL database (`--database`) rather than SQLite in each
    /// server's own data folder.
    #[arg(long)]
    database: Option<String>,
}

/// The job engine's benchmarks (issue 4), each on a fresh server started here.
pub async fn run_engine(args: EngineArgs) -> anyhow::Result<()> {
    use crate::engine;
    let emitter = std::env::current_exe()?.display().to_string();
    let (rate, secs) = (args.rate, args.duration);
    let mut through = Vec::new();
    let mut direct = Vec::new();
    let database: Vec<&str> = args.database.as_deref().map(|url| vec!["--database", url]).unwrap_or_default();
    println!("# storage: {}\n", if database.is_empty() { "SQLite (each server's data folder)" } else { "PostgreSQL (--database)" });
    for _ in 0..args.repeat.max(1) {
        let server = start("switchboard", &args.switchboard, true, &database).await?;
        through.push(engine::lines(&server.target, &emitter, rate, secs, &[]).await?);
        drop(server);
        direct.push(engine::lines_direct(&emitter, rate, secs).await?);
    }
    let median = |mut v: Vec<engine::LinesReport>| {
        v.sort_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms));
        v.swap_remove(v.len() / 2)
    };
    let (t, d) = (median(through), median(direct));
    println!("## {rate} lines/s for {secs} s from one stage (median of {} by p99)\n", args.repeat.max(1));
    println!("| path | received/expected | duplicates | p50 ms | p99 ms | max ms | server CPU % of a core | events |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, r) in [("through switchboard", &t), ("the pipe, read directly (baseline)", &d)] {
        println!(
            "| {name} | {}/{} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {} |",
            r.received, r.expected, r.duplicates, r.p50_ms, r.p99_ms, r.max_ms, r.server_cpu_percent, r.events
        );
    }
    println!("\nadded by switchboard: p50 +{:.2} ms, p99 +{:.2} ms (runs took {:.1} s and {:.1} s)", t.p50_ms - d.p50_ms, t.p99_ms - d.p99_ms, t.elapsed_s, d.elapsed_s);

    let concurrency = args.concurrency.to_string();
    let mut extra = vec!["--concurrency", concurrency.as_str(), "--metrics-interval-ms", "100"];
    extra.extend_from_slice(&database);
    let server = start("switchboard", &args.switchboard, true, &extra).await?;
    let q = engine::queue(&server.target, args.runs, args.concurrency).await?;
    println!("\n## {} workflows submitted at once, concurrency {}\n", q.submitted, args.concurrency);
    println!("- completed: {}/{} in {:.1} s", q.completed, q.submitted, q.elapsed_s);
    println!(
        "- metrics samples true to the queue (within {} ms): {}/{}; most running in a sample: {}",
        q.window_ms, q.samples_consistent, q.samples, q.max_running
    );
    println!("- run logs whole (seq 1..N once each, every line once): {}/{}", q.logs_intact, q.submitted);
    for p in q.log_problems.iter().take(10) {
        println!("  - problem: {p}");
    }
    let (count, p50, p99, mean) = crate::starts::stage_start_from_metrics(&server.target).await?;
    drop(server);
    let (bare50, bare99) = crate::starts::bare_spawn(count as usize).await?;
    println!("\n## the engine's cost to start a stage (dequeue to spawn), {count} stages\n");
    println!("- switchboard_stage_start_seconds: p50 <= {p50:.2} ms, p99 <= {p99:.2} ms (bucket bounds), mean {mean:.2} ms");
    println!("- baseline, a bare `sh -c true` spawn here: p50 {bare50:.2} ms, p99 {bare99:.2} ms");
    Ok(())
}
