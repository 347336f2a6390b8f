//! The command line: `switchboard` serves (with the flags of `Config`), and
//! `switchboard token create` mints an access token with the same signing secret.

use crate::auth::{Claims, Rights};
use crate::config::Config;
use clap::{Args, Parser, Subcommand};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "Switchboard: a real-time control room for long-running jobs")]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Access tokens (JWT, HS256) signed with the server's secret.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Deletes runs finished longer ago than the retention period, with their events
    /// and artifacts (the server also does it by itself, every --prune-every-s).
    Prune(PruneArgs),
    /// Runs stages on this machine for a Switchboard server: dials out to it (from
    /// behind NAT too) with an agent token, registers, and runs what it is given.
    Agent(crate::agents::client::AgentArgs),
    /// Publishes one event to a topic: `switchboard publish session:abc ai_progress '{"progress":0.5}'`.
    Publish(crate::terminal::publish::PublishArgs),
    /// Makes a command an external run: `switchboard run -- python train.py`. Its stdout
    /// is read with the stage output protocol, its exit code is the stage's, Ctrl-C
    /// cancels it, a pause from the page stops it; the run's URL is printed first.
    Run(crate::terminal::run::RunArgs),
    /// Follows a run live: its terminal on stdout, its stages and progress on stderr,
    /// until it ends (exit status 0 when it completed).
    Watch(crate::terminal::watch::WatchArgs),
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The server's data folder.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "data")]
    pub data_dir: std::path::PathBuf,
    /// The PostgreSQL database the servers share, when they use one (`--database`).
    #[arg(long, env = "SWITCHBOARD_DATABASE", value_parser = crate::config::parse_database)]
    pub database: Option<String>,
    /// Delete runs finished more than this long ago (`30d`, `12h`, `0s` for every
    /// finished run).
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    pub older_than: Duration,
}

/// `switchboard prune`: the number of runs deleted.
pub async fn prune(args: &PruneArgs) -> Result<usize, crate::ServerError> {
    if args.database.is_none() && !args.data_dir.join(crate::storage::DB_FILE).exists() {
        return Err(crate::ServerError::DataDir {
            path: args.data_dir.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no database there (see --data-dir)"),
        });
    }
    let location = match &args.database {
        Some(url) => crate::storage::Location::Server(url.clone()),
        None => crate::storage::Location::DataDir(args.data_dir.clone()),
    };
    let database = crate::storage::Database::open(&location, None).await?;
    let ids = crate::engine::retention::prune(&database.reader(), &args.data_dir.join("runs"), args.older_than)
        .await
        .map_err(crate::storage::StorageError::Sql)?;
    Ok(ids.len())
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Prints a new token on stdout.
    Create(CreateToken),
}

#[derive(Debug, Args)]
pub struct CreateToken {
    /// Who the token is for (its `sub`).
    #[arg(long)]
    pub sub: String,
    /// Topics it may subscribe to: comma-separated globs (`workflow:*,metrics`).
    #[arg(long, value_delimiter = ',')]
    pub sub_topics: Vec<String>,
    /// Topics it may publish to: comma-separated globs.
    #[arg(long, value_delimiter = ',')]
    pub pub_topics: Vec<String>,
    /// It may pause, resume, cancel, confirm, restart stages and chat (on runs it sees).
    #[arg(long)]
    pub control: bool,
    /// It may start pipelines from the server's pipelines folder, by name.
    #[arg(long)]
    pub run: bool,
    /// It may start inline pipelines: any shell command (where the server allows them).
    #[arg(long)]
    pub exec: bool,
    /// It may register as an agent and report for the work it is given.
    #[arg(long)]
    pub agent: bool,
    /// It may see every client in stats and mint narrower tokens.
    #[arg(long)]
    pub admin: bool,
    /// Shorthand for an operator: every topic, --control --run --exec --admin.
    #[arg(long)]
    pub operator: bool,
    /// How long it lasts (`90s`, `15m`, `1h`, `30d`).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    /// The signing secret, as the server reads it (SWITCHBOARD_AUTH_SECRET or this file;
    /// without either, the one the server created in its data folder).
    #[arg(long, env = "SWITCHBOARD_AUTH_SECRET_FILE")]
    pub auth_secret_file: Option<std::path::PathBuf>,
    /// The server's data folder, where it keeps the secret it created.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "data")]
    pub data_dir: std::path::PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Secret(#[from] crate::auth::secret::SecretError),
    #[error("--sub must not be empty")]
    EmptySub,
    #[error("invalid --{flag} pattern {pattern:?}: topics use only a-z, 0-9, '_', '.', ':', '-' (and the wildcards '*' and '?')")]
    BadPattern { flag: &'static str, pattern: String },
    #[error("--ttl {0:?} is too long: at most 366 days")]
    TtlTooLong(String),
    #[error(transparent)]
    Token(#[from] crate::auth::keys::TokenError),
}

fn check_patterns(flag: &'static str, patterns: &[String]) -> Result<(), CliError> {
    let ok = |p: &str| !p.is_empty() && p.chars().all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | ':' | '-' | '*' | '?'));
    match patterns.iter().find(|p| !ok(p)) {
        Some(p) => Err(CliError::BadPattern { flag, pattern: p.clone() }),
        None => Ok(()),
    }
}

/// The token `switchboard token create` prints, and when it expires.
pub fn create_token(args: &CreateToken, config: &Config) -> Result<(String, u64), CliError> {
    if args.sub.trim().is_empty() {
        return Err(CliError::EmptySub);
    }
    check_patterns("sub-topics", &args.sub_topics)?;
    check_patterns("pub-topics", &args.pub_topics)?;
    if args.ttl > Duration::from_secs(366 * 24 * 3600) {
        return Err(CliError::TtlTooLong(humantime::format_duration(args.ttl).to_string()));
    }
    let file = args.auth_secret_file.as_deref().or(config.auth.auth_secret_file.as_deref());
    let secret = crate::auth::secret::resolve(file, &args.data_dir, false)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut rights = Rights { control: args.control, run: args.run, exec: args.exec, agent: args.agent, admin: args.admin };
    let (mut sub_topics, mut pub_topics) = (args.sub_topics.clone(), args.pub_topics.clone());
    if args.operator {
        rights = Rights { agent: args.agent, ..Rights::OPERATOR };
        sub_topics = vec!["*".into()];
        pub_topics = vec!["*".into()];
    }
    let claims = Claims {
        sub: args.sub.clone(),
        exp: now + args.ttl.as_secs().max(1),
        iat: Some(now),
        nbf: None,
        typ: Some(crate::auth::ACCESS_TYP.into()),
        sub_topics,
        pub_topics,
        rights,
    };
    let token = crate::auth::keys::Keys::new(&secret.bytes)?.mint(&claims)?;
    Ok((token, claims.exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_verb_parses_and_checks_its_flags() {
        let cli = Cli::try_parse_from([
            "switchboard", "token", "create", "--sub", "alice", "--sub-topics", "workflow:*,metrics", "--ttl", "1h",
        ])
        .unwrap();
        let Some(Command::Token { action: TokenAction::Create(args) }) = cli.command else { panic!("token create") };
        assert_eq!(args.sub_topics, ["workflow:*", "metrics"]);
        assert_eq!(args.ttl, Duration::from_secs(3600));
        assert!(!args.control && !args.run && !args.exec && !args.admin && !args.operator);
        assert!(check_patterns("sub-topics", &["Workflow:*".into()]).unwrap_err().to_string().contains("Workflow:*"));
        let err = Cli::try_parse_from(["switchboard", "token", "create", "--sub", "a", "--ttl", "soon"]).unwrap_err();
        assert!(err.to_string().contains("soon"), "{err}");
    }

    #[test]
    fn serving_flags_still_parse_without_a_verb() {
        let cli = Cli::try_parse_from(["switchboard", "--port", "0"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.config.port, 0);
    }
}
