//! The database's settings: where it is, the writer's queue, and how long runs are kept.

use clap::Args;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct StorageSettings {
    /// PostgreSQL URL (`postgres://user:password@host:5432/db`) of a database several
    /// nodes share (docs/deployment.md); without it, runs are stored in
    /// `switchboard.db` in the data folder.
    #[arg(long, env = "SWITCHBOARD_DATABASE", value_parser = parse_database)]
    pub database: Option<String>,

    /// With `--database`: seconds a node's lease lasts. A node that has not renewed
    /// it for this long is taken as dead, and another takes its unfinished runs over;
    /// it renews every sixth of it, and stops when it could not before it runs out.
    #[arg(long, env = "SWITCHBOARD_NODE_LEASE_S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..=3_600))]
    pub node_lease_s: u64,

    /// With `--database`: runs at once across all the nodes (each also keeps to its own
    /// `--concurrency`); unset, only each node's own limit.
    #[arg(long, env = "SWITCHBOARD_CLUSTER_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub cluster_concurrency: Option<u32>,

    /// Writes waiting for the disk, at most; then producers wait (a stage's output
    /// pipe fills and the stage blocks), nothing is dropped.
    #[arg(long, env = "SWITCHBOARD_DB_QUEUE", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub db_queue: u64,

    /// How long a finished run is kept, with its events and artifacts (`30d`, `12h`),
    /// or `off` to keep every run.
    #[arg(long, env = "SWITCHBOARD_RETENTION", default_value = "30d", value_parser = parse_retention)]
    pub retention: Retention,

    /// Seconds between two retention sweeps.
    #[arg(long, env = "SWITCHBOARD_PRUNE_EVERY_S", default_value_t = 3_600, value_parser = clap::value_parser!(u64).range(1..))]
    pub prune_every_s: u64,
}

/// How long runs are kept: for a while, or forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(pub Option<Duration>);

fn parse_retention(text: &str) -> Result<Retention, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(Retention(None));
    }
    let d = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e} (e.g. 30d, 12h, or off)"))?;
    if d.is_zero() {
        return Err(format!("{text:?}: a retention of zero would delete every run as it ends; use `off` to keep them all"));
    }
    Ok(Retention(Some(d)))
}

/// A PostgreSQL URL that parses; the message names the value without its password.
pub fn parse_database(text: &str) -> Result<String, String> {
    let shown = super::redacted(text);
    if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
        return Err(format!("{shown:?}: not a PostgreSQL URL; expected postgres://[user[:password]@]host[:port]/database (without --database, SQLite in the data folder is used)"));
    }
    <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(text).map_err(|e| format!("{shown:?}: {e}"))?;
    Ok(text.to_owned())
}

impl StorageSettings {
    /// Where the database is: the server named by `--database`, or the data folder.
    pub fn location(&self, data_dir: &std::path::Path) -> crate::storage::Location {
        match &self.database {
            Some(url) => crate::storage::Location::Server(url.clone()),
            None => crate::storage::Location::DataDir(data_dir.to_path_buf()),
        }
    }

    /// How old a finished run may get; None: forever.
    pub fn retention(&self) -> Option<Duration> {
        self.retention.0
    }
}
