//! The HTTP server's settings: request budgets, body and response sizes, and how long
//! a slow or idle client may hold a connection.

use clap::Args;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// HTTP API requests per second per token (per client address without auth).
    #[arg(long, env = "SWITCHBOARD_HTTP_RATE_PER_S", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub http_rate_per_s: u32,

    /// Largest pipeline definition `POST /api/v1/workflows` takes, in bytes (other
    /// bodies are limited by --max-message-bytes).
    #[arg(long, env = "SWITCHBOARD_MAX_PIPELINE_BYTES", default_value_t = 262_144, value_parser = clap::value_parser!(u64).range(1_024..=67_108_864))]
    pub max_pipeline_bytes: u64,

    /// Most bytes one history response carries (it may then hold fewer events than
    /// `limit`: ask again from the last seq).
    #[arg(long, env = "SWITCHBOARD_HISTORY_RESPONSE_BYTES", default_value_t = 4_194_304, value_parser = clap::value_parser!(u64).range(65_536..))]
    pub history_response_bytes: u64,

    /// Milliseconds a new connection gets to send its first request's headers; then it
    /// is closed (connections that never finish a request cannot pile up).
    #[arg(long, env = "SWITCHBOARD_HEADER_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub header_timeout_ms: u64,

    /// Milliseconds a kept-alive connection may wait for its next request (its headers
    /// included); then it is closed. Longer than the first request's timeout, so that a
    /// client's pool does not race the server for its idle connections (nginx: 75 s).
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT_MS", default_value_t = 75_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub idle_timeout_ms: u64,

    /// Open connections one client address may hold (WebSockets included); more are
    /// refused with 503.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS_PER_IP", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections_per_ip: u64,
}

impl HttpSettings {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}
