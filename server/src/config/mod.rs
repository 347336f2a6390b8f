//! All configuration, from flags or `SWITCHBOARD_*` environment variables, validated
//! once at start-up. Every default is the protocol's (PROTOCOL.md section 6).

mod agents;
mod broker;
mod auth;
mod engine;
mod http;
mod hub;
mod storage;

pub use agents::AgentSettings;
pub use auth::AuthSettings;
pub use broker::BrokerSettings;
pub use engine::{EngineSettings, STAGE_ENV_DENY_DEFAULT};
pub use http::HttpSettings;
pub use hub::HubSettings;
pub use storage::{parse_database, Retention, StorageSettings};

use clap::{CommandFactory, FromArgMatches, Parser};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(name = "switchboard", version, about = "Switchboard: a real-time control room for long-running jobs")]
pub struct Config {
    /// Address to bind. With auth off, only loopback addresses are accepted.
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

    #[command(flatten)]
    pub hub: HubSettings,

    #[command(flatten)]
    pub broker: BrokerSettings,

    #[command(flatten)]
    pub engine: EngineSettings,

    #[command(flatten)]
    pub storage: StorageSettings,

    #[command(flatten)]
    pub agents: AgentSettings,

    /// Threads that run the server's work (default: one per CPU). Nodes sharing one
    /// machine do better with its cores shared out between them than each with all.
    #[arg(long, env = "SWITCHBOARD_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,

    /// Seconds open connections get to close on shutdown before they are dropped.
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_GRACE_S", default_value_t = 5)]
    pub shutdown_grace_s: u64,

    #[command(flatten)]
    pub auth: AuthSettings,

    #[command(flatten)]
    pub http: HttpSettings,

    /// Where people reach the dashboard, for the sign-in link printed at start-up
    /// (default: http://BIND:PORT).
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// An on/off setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    pub fn is_on(self) -> bool {
        self == Switch::On
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "refusing to bind {0} with authentication off (SWITCHBOARD_AUTH=off / --auth off): \
         anyone who can reach that address could run commands; turn auth on (the default) or \
         bind loopback (SWITCHBOARD_BIND / --bind 127.0.0.1)"
    )]
    NonLoopbackWithoutAuth(IpAddr),
    #[error("{0} (SWITCHBOARD_AUTH_SECRET / SWITCHBOARD_AUTH_SECRET_FILE / --auth-secret-file)")]
    Secret(#[from] crate::auth::secret::SecretError),
    #[error("the signing secret cannot be used: {0}")]
    Keys(String),
    #[error("invalid public URL {0:?} (SWITCHBOARD_PUBLIC_URL / --public-url): it must start with http:// or https://")]
    PublicUrl(String),
    #[error("invalid --allowed-hosts (SWITCHBOARD_ALLOWED_HOSTS): {0}")]
    AllowedHosts(String),
    #[error("invalid log filter {value:?} (SWITCHBOARD_LOG / --log): {reason}")]
    LogFilter { value: String, reason: String },
    #[error("--cluster-concurrency {0} (SWITCHBOARD_CLUSTER_CONCURRENCY) limits runs across nodes that share a database: give --database too, or use --concurrency")]
    ClusterWithoutDatabase(u32),
}

impl Config {
    /// Checks what clap cannot: combinations and formats.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.auth.mode.is_on() && !self.bind.is_loopback() {
            return Err(ConfigError::NonLoopbackWithoutAuth(self.bind));
        }
        if self.auth.mode.is_on() {
            // a configured secret must be readable and strong now, not at first use
            crate::auth::secret::configured(self.auth.auth_secret_file.as_deref())?;
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::PublicUrl(url.clone()));
            }
        }
        self.allowed_hosts(self.addr())?;
        if let (Some(n), None) = (self.storage.cluster_concurrency, &self.storage.database) {
            return Err(ConfigError::ClusterWithoutDatabase(n));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_filter).map_err(|e| ConfigError::LogFilter {
            value: self.log_filter.clone(),
            reason: e.to_string(),
        })?;
        Ok(())
    }

    /// Auth as configured: on (the secret configured, or the data folder's, created on
    /// the first run) or explicitly off. Also says where the secret came from.
    pub fn make_auth(&self) -> Result<(crate::auth::Auth, Option<crate::auth::secret::Secret>), ConfigError> {
        if !self.auth.mode.is_on() {
            return Ok((crate::auth::Auth::off(), None));
        }
        let lifetimes = crate::auth::Lifetimes {
            session: Duration::from_secs(self.auth.session_ttl_s),
            access: Duration::from_secs(self.auth.access_ttl_s),
        };
        let secret = crate::auth::secret::resolve(self.auth.auth_secret_file.as_deref(), &self.data_dir, true)?;
        let auth = crate::auth::Auth::new(&secret.bytes, lifetimes).map_err(|e| ConfigError::Keys(e.to_string()))?;
        Ok((auth, Some(secret)))
    }

    /// The hosts this server answers to, bound at `addr`.
    pub fn allowed_hosts(&self, addr: SocketAddr) -> Result<crate::auth::host::AllowedHosts, ConfigError> {
        let public_host = self.public_url.as_deref().and_then(|u| u.split_once("://")).map(|(_, rest)| rest.split('/').next().unwrap_or(rest));
        crate::auth::host::AllowedHosts::new(addr.ip(), addr.port(), public_host, &self.auth.allowed_hosts)
            .map_err(ConfigError::AllowedHosts)
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

    /// The shipped defaults, whatever `SWITCHBOARD_*` variables the caller has set.
    pub fn defaults() -> Self {
        let command = Config::command().mut_args(|arg| arg.env(None::<&str>));
        let matches = command.get_matches_from(["switchboard"]);
        // the defaults of this very struct: they always parse
        Config::from_arg_matches(&matches).expect("the defaults parse")
    }

    /// Defaults for tests: port 0, a given data folder, everything else as shipped
    /// (never the caller's `SWITCHBOARD_*` environment).
    pub fn for_tests(data_dir: PathBuf) -> Self {
        let mut config = Config::defaults();
        config.port = 0;
        config.data_dir = data_dir;
        // tests run on loopback and start inline pipelines; the ones about auth turn it on
        config.auth.mode = Switch::Off;
        config.engine.inline_pipelines = Switch::On;
        config
    }
}

/// A service URL without its password, for messages and logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// `text` with every URL's user and password left out: for messages that quote what
/// was given (clap's "invalid value 'redis://:secret@…'").
pub fn redacted_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    for c in text.chars() {
        if c.is_whitespace() || c == '\'' || c == '"' {
            out.push_str(&redacted(&token));
            token.clear();
            out.push(c);
        } else {
            token.push(c);
        }
    }
    out.push_str(&redacted(&token));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_limit_needs_a_shared_database() {
        let mut c = Config::defaults();
        c.storage.cluster_concurrency = Some(2);
        let err = c.validate().expect_err("refused").to_string();
        assert!(err.contains("--cluster-concurrency 2") && err.contains("--database"), "{err}");
        c.storage.database = Some("postgres://db/x".into());
        c.validate().expect("with a database");
    }

    #[test]
    fn passwords_are_left_out_of_messages() {
        let m = redacted_text("invalid value 'mysql://root:hunter2@db/x' for '--database <DATABASE>': \"redis://:pw@h:6379/0\" bad");
        assert_eq!(m, "invalid value 'mysql://…@db/x' for '--database <DATABASE>': \"redis://…@h:6379/0\" bad");
    }

    #[test]
    fn defaults_are_the_protocols_and_secure() {
        let c = Config::defaults();
        assert!(c.auth.mode.is_on() && !c.engine.inline_pipelines.is_on(), "auth on, inline pipelines off");
        assert_eq!((c.engine.max_stages, c.engine.max_queued_runs, c.engine.max_chat_bytes), (256, 1_000, 16_384));
        assert_eq!((c.http.header_timeout_ms, c.http.max_connections_per_ip), (10_000, 256));
        assert_eq!(c.hub.history_memory_bytes, 256 * 1024 * 1024);
        assert!(c.engine.stage_env_deny.iter().any(|p| p == "SWITCHBOARD_*"));
        assert_eq!(c.addr().to_string(), "127.0.0.1:3000");
        let h = &c.hub;
        assert_eq!((h.heartbeat_ms, h.max_message_bytes, h.max_subscriptions), (10_000, 65_536, 32));
        assert_eq!((h.rate_per_min, h.rate_burst, h.publish_rate_per_s), (100, 20, 10_000));
        assert_eq!((h.history_events, h.history_seconds, h.metrics_interval_ms), (1_000, 600, 2_000));
        c.validate().unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::try_parse_from(["switchboard", "--port", "70000"]).unwrap_err().to_string();
        assert!(err.contains("70000"), "{err}");
        let err = Config::try_parse_from(["switchboard", "--bind", "nowhere"]).unwrap_err().to_string();
        assert!(err.contains("nowhere"), "{err}");
        let c = Config::parse_from(["switchboard", "--bind", "0.0.0.0", "--auth", "off"]);
        assert!(c.validate().unwrap_err().to_string().contains("0.0.0.0"));
        let err = Config::try_parse_from(["switchboard", "--auth", "maybe"]).unwrap_err().to_string();
        assert!(err.contains("maybe"), "{err}");
        let c = Config::parse_from(["switchboard", "--allowed-hosts", "ok.example,bad/host"]);
        assert!(c.validate().unwrap_err().to_string().contains("bad/host"));
        let c = Config::parse_from(["switchboard", "--log", "server=loud"]);
        assert!(c.validate().unwrap_err().to_string().contains("server=loud"));
    }
}
