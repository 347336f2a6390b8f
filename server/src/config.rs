//! All configuration, from flags or `SWITCHBOARD_*` environment variables, validated
//! once at start-up. Every default is the protocol's (PROTOCOL.md section 6).

use clap::Parser;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(name = "switchboard", version, about = "Switchboard: a real-time control room for long-running jobs")]
pub struct Config {
    /// Address to bind. Without a signing secret (auth off), only loopback addresses
    /// are accepted.
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

    /// File holding the token signing secret (32 bytes or more); with one, auth is on.
    /// The secret may instead be in the environment variable SWITCHBOARD_AUTH_SECRET:
    /// never on the command line, where `ps` would show it.
    #[arg(long, env = "SWITCHBOARD_AUTH_SECRET_FILE")]
    pub auth_secret_file: Option<PathBuf>,

    /// Origins allowed to open the WebSocket besides the dashboard's own
    /// (comma-separated, e.g. `https://app.example.com`; `*` allows any).
    #[arg(long, env = "SWITCHBOARD_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Seconds a browser stays signed in after opening the login link.
    #[arg(long, env = "SWITCHBOARD_SESSION_TTL_S", default_value_t = 7 * 24 * 3600, value_parser = clap::value_parser!(u64).range(60..))]
    pub session_ttl_s: u64,

    /// Seconds the dashboard's own access tokens last (it asks for a new one on expiry).
    #[arg(long, env = "SWITCHBOARD_ACCESS_TTL_S", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    pub access_ttl_s: u64,

    /// HTTP API requests per second per token (per client address without auth).
    #[arg(long, env = "SWITCHBOARD_HTTP_RATE_PER_S", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub http_rate_per_s: u32,

    /// Where people reach the dashboard, for the sign-in link printed at start-up
    /// (default: http://BIND:PORT).
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// The environment variable that may hold the signing secret.
pub const AUTH_SECRET_ENV: &str = "SWITCHBOARD_AUTH_SECRET";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "refusing to bind {0}: authentication is off (no signing secret), so only a loopback \
         address (127.0.0.1 or ::1) is allowed: set SWITCHBOARD_AUTH_SECRET or \
         SWITCHBOARD_AUTH_SECRET_FILE (--auth-secret-file) to turn it on, or bind loopback \
         (SWITCHBOARD_BIND / --bind)"
    )]
    NonLoopbackWithoutAuth(IpAddr),
    #[error("cannot read the signing secret from {path} (SWITCHBOARD_AUTH_SECRET_FILE / --auth-secret-file): {reason}")]
    SecretFile { path: String, reason: String },
    #[error("the signing secret in {source_name} is {len} bytes long; at least {min} are needed (e.g. `openssl rand -hex 32`)")]
    SecretTooShort { source_name: String, len: usize, min: usize },
    #[error("the signing secret cannot be used: {0}")]
    Secret(String),
    #[error("invalid public URL {0:?} (SWITCHBOARD_PUBLIC_URL / --public-url): it must start with http:// or https://")]
    PublicUrl(String),
    #[error("invalid log filter {value:?} (SWITCHBOARD_LOG / --log): {reason}")]
    LogFilter { value: String, reason: String },
}

impl Config {
    /// Checks what clap cannot: combinations and formats.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.bind.is_loopback() && self.auth_secret()?.is_none() {
            return Err(ConfigError::NonLoopbackWithoutAuth(self.bind));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::PublicUrl(url.clone()));
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_filter).map_err(|e| ConfigError::LogFilter {
            value: self.log_filter.clone(),
            reason: e.to_string(),
        })?;
        Ok(())
    }

    /// The signing secret, from the file or the environment; None: auth is off.
    pub fn auth_secret(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        let (secret, source_name) = match &self.auth_secret_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::SecretFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                (text, path.display().to_string())
            }
            None => match std::env::var(AUTH_SECRET_ENV) {
                Ok(v) => (v, AUTH_SECRET_ENV.to_owned()),
                Err(_) => return Ok(None),
            },
        };
        // a trailing newline from `echo` or an editor is not part of the secret
        let secret = secret.trim_end_matches(['\n', '\r']).as_bytes().to_vec();
        if secret.len() < crate::auth::keys::MIN_SECRET_BYTES {
            return Err(ConfigError::SecretTooShort { source_name, len: secret.len(), min: crate::auth::keys::MIN_SECRET_BYTES });
        }
        Ok(Some(secret))
    }

    /// Auth as configured: on with a secret, off without.
    pub fn auth(&self) -> Result<crate::auth::Auth, ConfigError> {
        let lifetimes = crate::auth::Lifetimes {
            session: Duration::from_secs(self.session_ttl_s),
            access: Duration::from_secs(self.access_ttl_s),
        };
        Ok(match self.auth_secret()? {
            Some(secret) => crate::auth::Auth::new(&secret, lifetimes).map_err(|e| ConfigError::Secret(e.to_string()))?,
            None => crate::auth::Auth::off(),
        })
    }

    /// Where people reach the dashboard (for the sign-in link).
    pub fn public_url(&self, addr: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{addr}"),
        }
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
