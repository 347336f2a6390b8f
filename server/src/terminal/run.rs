//! `switchboard run -- CMD ARGS…`: any command as an external run. It creates the run
//! (one stage, executed by this process: the token's subject, or `--name`), prints its
//! URL, and runs the command here as `switchboard agent` runs a stage (the same code:
//! its own process group, the stage output protocol, pause, cancel), showing its
//! output as it goes. Ctrl-C cancels it; the exit status is the command's.

use super::{server_error, ClientError, ServerArgs};
use crate::agents::client::{AgentArgs, OneShot};
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The executor's name (default: the token's subject, or `cli` without a token).
    #[arg(long)]
    pub name: Option<String>,
    /// The run's id (default: one the server picks).
    #[arg(long)]
    pub id: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// A word as `sh` reads it back unchanged.
fn quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The `sub` of a JWT, read without checking it (the server does).
fn subject(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["sub"].as_str().map(str::to_owned)
}

/// Runs it; the command's exit code (None when it was cancelled or did not exit).
pub async fn run(args: RunArgs, stop: tokio_util::sync::CancellationToken) -> Result<Option<i32>, ClientError> {
    let base = args.server.base()?;
    let token = args.server.token()?;
    let name = args.name.clone().or_else(|| token.as_deref().and_then(subject)).unwrap_or_else(|| "cli".into());
    if !crate::engine::pipeline::valid_agent_name(&name) {
        return Err(ClientError::Input(format!("the executor name {name:?} is not an agent name (1-64 of a-z, 0-9, '_', '.', '-'): pass --name")));
    }
    let command = args.command.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
    let title: String = command.chars().take(80).collect();
    let mut body = json!({"pipeline":{"name":title,"executor":name,"stages":[{"id":"run","name":title}]}});
    if let Some(id) = &args.id {
        body["id"] = json!(id);
    }
    let mut req = reqwest::Client::new().post(format!("{base}/api/v1/workflows")).json(&body);
    if let Some(t) = &token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| ClientError::Unreachable(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(server_error(resp).await);
    }
    let created: Value = resp.json().await.map_err(|e| ClientError::Unreachable(e.to_string()))?;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    eprintln!("{base}/workflows/{id}");
    let work = std::env::temp_dir().join(format!("switchboard-run-{id}"));
    let agent = AgentArgs {
        server: base,
        name,
        capabilities: Vec::new(),
        concurrency: 1,
        work_dir: work.clone(),
        token_file: args.server.token_file.clone(),
        metrics_interval_ms: 5_000,
        buffer_bytes: 64 * 1024 * 1024,
        stage_env_deny: crate::config::STAGE_ENV_DENY_DEFAULT.split(',').map(str::to_owned).collect(),
        one_shot: Some(OneShot { run: id, command, workdir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")) }),
    };
    let code = crate::agents::client::run(agent, stop).await.map_err(|e| ClientError::Input(e.to_string()));
    let _ = std::fs::remove_dir_all(&work);
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_sh_and_the_subject_read() {
        assert_eq!(quote("python"), "python");
        assert_eq!(quote("it's here"), r"'it'\''s here'");
        assert_eq!(quote(""), "''");
        let token = format!("x.{}.y", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"gpu-1","exp":1}"#));
        assert_eq!(subject(&token).as_deref(), Some("gpu-1"));
    }
}
