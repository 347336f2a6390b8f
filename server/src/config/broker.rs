//! Where the hub's shared topics live when several nodes serve one cluster: a Redis
//! server (docs/deployment.md). Without `--broker`, every topic is this process's own.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct BrokerSettings {
    /// Redis URL (`redis://host:6379/0`, `rediss://` for TLS) that carries the topics
    /// every node shares: their seq, epoch, history and fan-out. Server-owned topics
    /// (`workflow:*`, `coordinator`, `agents`, `agent:*`, `metrics`) stay this node's.
    #[arg(long, env = "SWITCHBOARD_BROKER")]
    pub broker: Option<String>,

    /// Prefix of every Redis key and channel this cluster uses, so clusters (or tests)
    /// can share one Redis.
    #[arg(long, env = "SWITCHBOARD_BROKER_PREFIX", default_value = "switchboard:", value_parser = parse_prefix)]
    pub broker_prefix: String,
}

fn parse_prefix(s: &str) -> Result<String, String> {
    if s.len() > 64 || s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '{' || c == '}') {
        return Err(format!("{s:?}: at most 64 characters, no spaces, control characters or braces"));
    }
    Ok(s.to_owned())
}
