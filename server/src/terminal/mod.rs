//! The command-line clients, for people in a terminal: `switchboard run -- CMD`,
//! `switchboard publish TOPIC EVENT JSON` and `switchboard watch RUN` (a run's terminal and progress, live, resuming
//! across reconnects). The server is `--server` (or SWITCHBOARD_SERVER); the token
//! comes from SWITCHBOARD_TOKEN or `--token-file`, never a flag.

pub mod publish;
pub mod run;
pub mod watch;

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The server, as `http://host:port`.
    #[arg(long, env = "SWITCHBOARD_SERVER", default_value = "http://127.0.0.1:3000")]
    pub server: String,
    /// File holding the access token (else SWITCHBOARD_TOKEN).
    #[arg(long, env = "SWITCHBOARD_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--server {0:?} must start with http:// or https://")]
    BadServer(String),
    #[error("cannot read the token file {0}: {1}")]
    TokenFile(String, String),
    #[error("{0}")]
    Input(String),
    #[error("the server answered {status}: {code}: {message}")]
    Server { status: u16, code: String, message: String },
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
}

impl ServerArgs {
    pub fn base(&self) -> Result<String, ClientError> {
        let base = self.server.trim_end_matches('/').to_owned();
        if base.starts_with("http://") || base.starts_with("https://") {
            Ok(base)
        } else {
            Err(ClientError::BadServer(self.server.clone()))
        }
    }

    /// The token, if any (a server with auth off takes none).
    pub fn token(&self) -> Result<Option<String>, ClientError> {
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path).map_err(|e| ClientError::TokenFile(path.display().to_string(), e.to_string()))?;
            return Ok(Some(text.trim().to_owned()));
        }
        Ok(std::env::var("SWITCHBOARD_TOKEN").ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()))
    }
}

/// A server error body as a `ClientError`.
pub async fn server_error(resp: reqwest::Response) -> ClientError {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    ClientError::Server {
        status,
        code: body["error"]["code"].as_str().unwrap_or("unknown").to_owned(),
        message: body["error"]["message"].as_str().unwrap_or("(no message)").to_owned(),
    }
}
