//! How the server deals with agents: how long one may be silent before its stages are
//! lost, how long a stage waits for one, and the limits of what they send.

use clap::Args;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct AgentSettings {
    /// Seconds an agent (or an external run's executor) may be neither connected nor
    /// reporting before its stages fail `agent lost` (or are queued again).
    #[arg(long, env = "SWITCHBOARD_AGENT_GRACE_S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub agent_grace_s: u64,

    /// Seconds a stage that asks `runs_on` waits for an agent with those capabilities.
    #[arg(long, env = "SWITCHBOARD_AGENT_WAIT_S", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub agent_wait_s: u64,

    /// Milliseconds between two Pings to an agent; one silent for two is disconnected.
    #[arg(long, env = "SWITCHBOARD_AGENT_HEARTBEAT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub agent_heartbeat_ms: u64,

    /// Largest message or report batch an agent may send, in bytes.
    #[arg(long, env = "SWITCHBOARD_MAX_REPORT_BYTES", default_value_t = 1_048_576, value_parser = clap::value_parser!(u64).range(1_024..=67_108_864))]
    pub max_report_bytes: u64,

    /// Largest artifact an agent may upload, in bytes.
    #[arg(long, env = "SWITCHBOARD_MAX_ARTIFACT_BYTES", default_value_t = 268_435_456, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_artifact_bytes: u64,
}

impl AgentSettings {
    pub fn registry(&self) -> crate::agents::AgentsConfig {
        crate::agents::AgentsConfig {
            grace: Duration::from_secs(self.agent_grace_s),
            wait: Duration::from_secs(self.agent_wait_s),
            heartbeat: Duration::from_millis(self.agent_heartbeat_ms),
        }
    }
}
