//! `switchboard`: parse the configuration, start logging, bind, serve; or
//! `switchboard token create`: mint an access token; `switchboard prune`; or
//! `switchboard agent`: run stages for a server elsewhere; `publish` and `watch`: the
//! terminal's clients.

use clap::Parser;
use server::cli::{Cli, Command, TokenAction};
use server::config::Config;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // clap quotes a bad value whole: a URL's password must not reach the logs
            eprint!("{}", server::config::redacted_text(&e.render().to_string()));
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = cli.config.worker_threads {
        runtime.worker_threads(usize::from(n));
    }
    match runtime.build() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => {
            eprintln!("switchboard: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Some(Command::Token { action: TokenAction::Create(args) }) => match server::cli::create_token(&args, &cli.config) {
            Ok((token, exp)) => {
                println!("{token}");
                eprintln!("token for {:?}, valid until {} (unix time {exp})", args.sub, humantime_rfc3339(exp));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("switchboard token create: {e}");
                ExitCode::from(2)
            }
        },
        Some(Command::Prune(args)) => match server::cli::prune(&args).await {
            Ok(n) => {
                println!("{n} run(s) deleted");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("switchboard prune: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Agent(args)) => {
            server::telemetry::init(&cli.config.log_filter);
            let stop = CancellationToken::new();
            server::shutdown::cancel_on_signal(stop.clone());
            match server::agents::client::run(args, stop).await {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("switchboard agent: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Some(Command::Publish(args)) => match server::terminal::publish::run(&args).await {
            Ok(seq) => {
                println!("{seq}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("switchboard publish: {e}");
                ExitCode::from(2)
            }
        },
        Some(Command::Run(args)) => {
            server::telemetry::init("warn");
            let stop = CancellationToken::new();
            server::shutdown::cancel_on_signal(stop.clone());
            match server::terminal::run::run(args, stop).await {
                Ok(Some(code)) => ExitCode::from(code.clamp(0, 255) as u8),
                Ok(None) => ExitCode::from(130),
                Err(e) => {
                    eprintln!("switchboard run: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Some(Command::Watch(args)) => match server::terminal::watch::run(&args).await {
            Ok(server::terminal::watch::Ended(state)) if state == "completed" => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("switchboard watch: {e}");
                ExitCode::from(2)
            }
        },
        None => serve(cli.config).await,
    }
}

fn humantime_rfc3339(unix_s: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_s)).to_string()
}

async fn serve(config: Config) -> ExitCode {
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
