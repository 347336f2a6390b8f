//! `switchboard`: parse the configuration, start logging, bind, serve.

use clap::Parser;
use server::config::Config;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(e) = config.validate() {
        eprintln!("switchboard: {e}");
        return ExitCode::from(2);
    }
    server::telemetry::init(&config.log_filter);
    let addr = config.addr();
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!("switchboard: {addr} is already in use: another server is listening there (choose another with --port or SWITCHBOARD_PORT)");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("switchboard: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    server::shutdown::cancel_on_signal(shutdown.clone());
    match server::run(config, listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e}");
            ExitCode::FAILURE
        }
    }
}
