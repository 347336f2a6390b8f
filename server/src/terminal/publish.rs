//! `switchboard publish TOPIC EVENT JSON`: one event, over `POST /api/v1/publish`.

use super::{server_error, ClientError, ServerArgs};
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The topic (`session:abc`).
    pub topic: String,
    /// The event's name (`ai_progress`).
    pub event: String,
    /// Its data, as JSON (`'{"progress":0.5}'`); `{}` when left out.
    pub data: Option<String>,
}

/// Publishes; the seq the event got.
pub async fn run(args: &PublishArgs) -> Result<u64, ClientError> {
    app::protocol::validate_topic(&args.topic).map_err(|e| ClientError::Input(format!("topic {:?}: {e}", args.topic)))?;
    let data: Value = match &args.data {
        Some(text) => serde_json::from_str(text).map_err(|e| ClientError::Input(format!("data {text:?} is not JSON: {e}")))?,
        None => json!({}),
    };
    let base = args.server.base()?;
    let mut req = reqwest::Client::new().post(format!("{base}/api/v1/publish")).json(&json!({"topic": args.topic, "event": args.event, "data": data}));
    if let Some(t) = args.server.token()? {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| ClientError::Unreachable(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(server_error(resp).await);
    }
    let body: Value = resp.json().await.map_err(|e| ClientError::Unreachable(e.to_string()))?;
    Ok(body["seq"].as_u64().unwrap_or(0))
}
