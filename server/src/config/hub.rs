//! The hub's settings: heartbeats, message and subscription limits, rate budgets,
//! history, the outbound queue (PROTOCOL.md section 6 gives every default).

use clap::Args;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct HubSettings {
    /// WebSocket Ping period in milliseconds; a peer silent for two periods is dropped.
    #[arg(long, env = "SWITCHBOARD_HEARTBEAT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub heartbeat_ms: u64,

    /// Largest client message, in bytes, fragments reassembled (bigger: close 1009).
    #[arg(long, env = "SWITCHBOARD_MAX_MESSAGE_BYTES", default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(256..=16_777_216))]
    pub max_message_bytes: u64,

    /// Most topics one connection may subscribe to.
    #[arg(long, env = "SWITCHBOARD_MAX_SUBSCRIPTIONS", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_subscriptions: u64,

    /// Client messages per minute per connection (publish has its own budget).
    #[arg(long, env = "SWITCHBOARD_RATE_PER_MIN", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_per_min: u32,

    /// Burst allowed above the per-minute rate.
    #[arg(long, env = "SWITCHBOARD_RATE_BURST", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_burst: u32,

    /// `publish` messages per second per connection.
    #[arg(long, env = "SWITCHBOARD_PUBLISH_RATE_PER_S", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub publish_rate_per_s: u32,

    /// `rate_limited` errors within a minute after which a connection is closed with 1008.
    #[arg(long, env = "SWITCHBOARD_ABUSE_LIMIT", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub abuse_limit: u32,

    /// Events kept per topic for resume.
    #[arg(long, env = "SWITCHBOARD_HISTORY_EVENTS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub history_events: u64,

    /// Seconds an event stays in a topic's history.
    #[arg(long, env = "SWITCHBOARD_HISTORY_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub history_seconds: u64,

    /// Seconds of samples the `metrics` topic keeps.
    #[arg(long, env = "SWITCHBOARD_METRICS_HISTORY_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub metrics_history_seconds: u64,

    /// Period of the `metrics` sample, in milliseconds.
    #[arg(long, env = "SWITCHBOARD_METRICS_INTERVAL_MS", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(50..))]
    pub metrics_interval_ms: u64,

    /// Bytes of history all non-durable topics keep together; past it the oldest
    /// events go first (a resume from before them answers `recovered: false`).
    #[arg(long, env = "SWITCHBOARD_HISTORY_MEMORY_BYTES", default_value_t = 268_435_456, value_parser = clap::value_parser!(u64).range(65_536..))]
    pub history_memory_bytes: u64,

    /// Events of a run's topic kept in memory (the rest is read from the database).
    #[arg(long, env = "SWITCHBOARD_DURABLE_WINDOW_EVENTS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub durable_window_events: u64,

    /// Bytes of a run's topic kept in memory, at most (besides what is not yet stored).
    #[arg(long, env = "SWITCHBOARD_DURABLE_WINDOW_BYTES", default_value_t = 4_194_304, value_parser = clap::value_parser!(u64).range(1_024..))]
    pub durable_window_bytes: u64,

    /// Outbound queue per connection, in messages; a subscriber that overflows it is
    /// closed with 1013 (slow consumer) rather than silently skipped.
    #[arg(long, env = "SWITCHBOARD_OUTBOUND_QUEUE", default_value_t = 4_096, value_parser = clap::value_parser!(u64).range(16..=1_000_000))]
    pub outbound_queue: u64,
}

impl HubSettings {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }
}
