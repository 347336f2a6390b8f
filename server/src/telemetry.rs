//! Tracing set-up: human-readable logs on stderr, filtered by `--log`.

use tracing_subscriber::EnvFilter;

pub fn init(filter: &str) {
    // validated by Config::validate; fall back to `info` rather than fail twice
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}
