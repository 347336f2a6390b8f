//! All configuration, from flags or `SWITCHBOARD_*` environment variables, validated
//! once at start-up. Every default is the protocol's (PROTOCOL.md section 6).

use clap::Parser;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(name = "switchboard", version, about = "Switchboard: a real-time control room for long-running jobs")]
pub struct Config {
    /// Address to bind. Auth is off, so only loopback addresses are accepted.
    #[arg(long, env = "SWITCHBOARD_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// TCP port to listen on (0 picks a free one).
    #[arg(long, env = "SWITCHBOARD_PORT", default_value_t = 3000)]
    pub port: u16,

    /// Folder for the database and run artifacts; created on first run.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `server=debug,warn`).
    #[arg(long = "log", env = "SWITCHBOARD_LOG", default_value = "info")]
    pub log_filter: String,

    /// Folder holding the built site (`pkg/` with the WASM, JS and CSS).
    #[arg(long, env = "SWITCHBOARD_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

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

    /// Outbound queue per connection, in messages; a subscriber that overflows it is
    /// closed with 1013 (slow consumer) rather than silently skipped.
    #[arg(long, env = "SWITCHBOARD_OUTBOUND_QUEUE", default_value_t = 4_096, value_parser = clap::value_parser!(u64).range(16..=1_000_000))]
    pub outbound_queue: u64,

    /// Folder of pipeline definitions (`*.toml`).
    #[arg(long, env = "SWITCHBOARD_PIPELINES_DIR", default_value = "pipelines")]
    pub pipelines_dir: PathBuf,

    /// Workflows run at once; the others wait in the queue, first come first served.
    #[arg(long, env = "SWITCHBOARD_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,

    /// Seconds a cancelled stage gets between SIGTERM and SIGKILL.
    #[arg(long, env = "SWITCHBOARD_CANCEL_GRACE_S", default_value_t = 5)]
    pub cancel_grace_s: u64,

    /// Seconds open connections get to close on shutdown before they are dropped.
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_GRACE_S", default_value_t = 5)]
    pub shutdown_grace_s: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "refusing to bind {0}: authentication is not configured, so only a loopback address \
         (127.0.0.1 or ::1) is allowed (set SWITCHBOARD_BIND / --bind)"
    )]
    NonLoopbackWithoutAuth(IpAddr),
    #[error("invalid log filter {value:?} (SWITCHBOARD_LOG / --log): {reason}")]
    LogFilter { value: String, reason: String },
}

impl Config {
    /// Checks what clap cannot: combinations and formats.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.bind.is_loopback() {
            return Err(ConfigError::NonLoopbackWithoutAuth(self.bind));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_filter).map_err(|e| ConfigError::LogFilter {
            value: self.log_filter.clone(),
            reason: e.to_string(),
        })?;
        Ok(())
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    /// Defaults for tests: port 0, a given data folder, everything else as shipped.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        let mut config = Config::parse_from(["switchboard"]);
        config.port = 0;
        config.data_dir = data_dir;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_protocols() {
        let c = Config::parse_from(["switchboard"]);
        assert_eq!(c.addr().to_string(), "127.0.0.1:3000");
        assert_eq!((c.heartbeat_ms, c.max_message_bytes, c.max_subscriptions), (10_000, 65_536, 32));
        assert_eq!((c.rate_per_min, c.rate_burst, c.publish_rate_per_s), (100, 20, 10_000));
        assert_eq!((c.history_events, c.history_seconds, c.metrics_interval_ms), (1_000, 600, 2_000));
        c.validate().unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::try_parse_from(["switchboard", "--port", "70000"]).unwrap_err().to_string();
        assert!(err.contains("70000"), "{err}");
        let err = Config::try_parse_from(["switchboard", "--bind", "nowhere"]).unwrap_err().to_string();
        assert!(err.contains("nowhere"), "{err}");
        let c = Config::parse_from(["switchboard", "--bind", "0.0.0.0"]);
        assert!(c.validate().unwrap_err().to_string().contains("0.0.0.0"));
        let c = Config::parse_from(["switchboard", "--log", "server=loud"]);
        assert!(c.validate().unwrap_err().to_string().contains("server=loud"));
    }
}
