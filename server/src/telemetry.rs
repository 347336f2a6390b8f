//! Tracing set-up: human-readable logs on stderr (colours only on a terminal),
//! filtered by `--log`.

use tracing_subscriber::EnvFilter;

pub fn init(filter: &str) {
    // validated by Config::validate; fall back to `info` rather than fail twice
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}
