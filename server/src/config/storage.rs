//! The database's settings: the writer's queue, and how long runs are kept.

use clap::Args;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct StorageSettings {
    /// Writes waiting for the disk, at most; then producers wait (a stage's output
    /// pipe fills and the stage blocks), nothing is dropped.
    #[arg(long, env = "SWITCHBOARD_DB_QUEUE", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub db_queue: u64,

    /// Days a finished run is kept (with its events and artifacts); 0 keeps every run.
    #[arg(long, env = "SWITCHBOARD_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u64,

    /// Seconds between two retention sweeps.
    #[arg(long, env = "SWITCHBOARD_PRUNE_EVERY_S", default_value_t = 3_600, value_parser = clap::value_parser!(u64).range(1..))]
    pub prune_every_s: u64,
}

impl StorageSettings {
    /// How old a finished run may get; None: forever.
    pub fn retention(&self) -> Option<Duration> {
        (self.retention_days > 0).then(|| Duration::from_secs(self.retention_days * 24 * 3600))
    }
}
