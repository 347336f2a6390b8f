//! `switchboard watch RUN`: a run's terminal (colours kept) on stdout and its stages and
//! progress on stderr, live, until the run ends; its exit status is the run's (0 when
//! completed). A dropped connection is dialled again with backoff and the topic resumed
//! from the last seq printed, so no line is printed twice or missed; when the server
//! cannot resume (`recovered: false`), the missing events are read from its history.
//! A server that crashed may have lost the last events it had sent (their seqs then name
//! other events in its new epoch): the recent events printed are remembered, compared
//! with what the server kept, and from the first that differs its own are printed.

use super::{server_error, ClientError, ServerArgs};
use futures::{SinkExt, StreamExt};
use app::protocol::{names, LogLine, Progress, StageStatus, TerminalOutput, WorkflowState, WorkflowStatus};
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The run's id.
    pub run: String,
}

/// How the run ended: its state.
pub struct Ended(pub String);

/// Events remembered to find where a crashed server's log parts from what was printed.
const REMEMBERED: usize = 1_000;

struct Follower {
    base: String,
    token: Option<String>,
    topic: String,
    last_seq: u64,
    epoch: Option<String>,
    /// (seq, fingerprint) of the last events printed, oldest first.
    recent: std::collections::VecDeque<(u64, u64)>,
}

/// What tells two events apart: their name and data.
fn fingerprint(ev: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ev["event"].to_string().hash(&mut h);
    ev["data"].to_string().hash(&mut h);
    h.finish()
}

impl Follower {
    /// Prints one event; Some(state) when the run has ended.
    fn show(&mut self, ev: &Value) -> Option<String> {
        let seq = ev["seq"].as_u64().unwrap_or(0);
        if seq <= self.last_seq {
            return None; // seen already
        }
        self.last_seq = seq;
        if self.recent.len() == REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back((seq, fingerprint(ev)));
        let data = ev["data"].clone();
        let name = ev["event"].as_str().unwrap_or("");
        match name {
            names::TERMINAL_OUTPUT => {
                let Ok(t) = serde_json::from_value::<TerminalOutput>(data) else { return None };
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(t.output.as_bytes());
                let _ = out.flush();
            }
            names::PROGRESS => {
                let Ok(p) = serde_json::from_value::<Progress>(data) else { return None };
                eprintln!("[{}] {:.0}% {}", p.stage.unwrap_or_default(), p.progress * 100.0, p.message.unwrap_or_default());
            }
            names::STAGE_STATUS => {
                let Ok(s) = serde_json::from_value::<StageStatus>(data) else { return None };
                let error = s.error.map(|e| format!(": {e}")).unwrap_or_default();
                eprintln!("[{}] {}{error}", s.stage.id, state_word(&s.stage.status));
            }
            names::LOG_LINE => {
                let Ok(l) = serde_json::from_value::<LogLine>(data) else { return None };
                eprintln!("{}", l.message);
            }
            names::WORKFLOW_STATUS => {
                let Ok(w) = serde_json::from_value::<WorkflowStatus>(data) else { return None };
                let state = state_word(&w.state);
                if w.state.is_finished() {
                    eprintln!("run {state}");
                    return Some(state);
                }
                if w.state == WorkflowState::WaitingConfirmation {
                    eprintln!("run waits for confirmation (confirm it on its page or with POST .../confirm)");
                }
            }
            _ => {}
        }
        None
    }

    /// After the topic's history started over: where the server's log first differs
    /// from what was printed, forget what was printed from there (said on stderr), so
    /// that the server's own events there are printed.
    async fn reconcile(&mut self) -> Result<(), ClientError> {
        let Some(&(first, _)) = self.recent.front() else { return Ok(()) };
        let page = self.history(first - 1).await?;
        let kept = page["events"].as_array().cloned().unwrap_or_default();
        let mut kept = kept.iter().map(|e| (e["seq"].as_u64().unwrap_or(0), fingerprint(e)));
        let parted = self.recent.iter().find(|&&mine| kept.next() != Some(mine)).map(|&(seq, _)| seq);
        if let Some(seq) = parted {
            eprintln!("(the server restarted and lost what was shown from event {seq} on: what follows is what it kept)");
            self.last_seq = seq - 1;
            self.recent.retain(|&(s, _)| s < seq);
        }
        Ok(())
    }

    /// A page of the topic's history after `since`.
    async fn history(&self, since: u64) -> Result<Value, ClientError> {
        let url = format!("{}/api/v1/topics/{}/history?since={since}&limit=1000", self.base, self.topic);
        let mut req = reqwest::Client::new().get(url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| ClientError::Unreachable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(server_error(resp).await);
        }
        resp.json().await.map_err(|e| ClientError::Unreachable(e.to_string()))
    }

    /// Events after `last_seq` up to `to`, from the run's history (after a restart).
    async fn catch_up(&mut self, to: u64) -> Result<Option<String>, ClientError> {
        while self.last_seq < to {
            let page = self.history(self.last_seq).await?;
            let events = page["events"].as_array().cloned().unwrap_or_default();
            if events.is_empty() {
                break;
            }
            for ev in &events {
                if let Some(end) = self.show(ev) {
                    return Ok(Some(end));
                }
            }
        }
        Ok(None)
    }

    /// One connection: Ok(Some(state)) when the run ended, Ok(None) when it dropped.
    async fn session(&mut self) -> Result<Option<String>, ClientError> {
        let ws_base = self.base.replacen("http", "ws", 1);
        let url = match &self.token {
            Some(t) => format!("{ws_base}/ws?token={t}"),
            None => format!("{ws_base}/ws"),
        };
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else { return Ok(None) };
        let mut sub = json!({"type":"subscribe","topic":self.topic,"since":self.last_seq,"id":"watch"});
        if let Some(e) = &self.epoch {
            sub["epoch"] = json!(e);
        }
        if ws.send(Message::text(sub.to_string())).await.is_err() {
            return Ok(None);
        }
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(text) = msg else { continue };
            let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
            match v["type"].as_str().unwrap_or("") {
                "subscribed" => {
                    let epoch = v["epoch"].as_str().map(str::to_owned);
                    let started_over = self.epoch.is_some() && self.epoch != epoch;
                    self.epoch = epoch;
                    if started_over {
                        self.reconcile().await?;
                    }
                    if v["recovered"] == false {
                        if let Some(end) = self.catch_up(v["seq"].as_u64().unwrap_or(0)).await? {
                            return Ok(Some(end));
                        }
                    }
                }
                "event" => {
                    if let Some(end) = self.show(&v) {
                        return Ok(Some(end));
                    }
                }
                "error" => {
                    let code = v["code"].as_str().unwrap_or("error").to_owned();
                    let message = v["message"].as_str().unwrap_or("").to_owned();
                    if v["retryable"] != true {
                        return Err(ClientError::Server { status: 0, code, message });
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }
}

/// Follows run `args.run` until it ends.
pub async fn run(args: &WatchArgs) -> Result<Ended, ClientError> {
    let topic = format!("workflow:{}", args.run);
    app::protocol::validate_topic(&topic).map_err(|e| ClientError::Input(format!("run {:?}: {e}", args.run)))?;
    let mut f = Follower {
        base: args.server.base()?,
        token: args.server.token()?,
        topic,
        last_seq: 0,
        epoch: None,
        recent: std::collections::VecDeque::with_capacity(REMEMBERED),
    };
    let mut attempt = 0u32;
    loop {
        if let Some(state) = f.session().await? {
            return Ok(Ended(state));
        }
        // full jitter, 0.5 s doubling to 15 s
        let cap = Duration::from_millis(500).saturating_mul(1 << attempt.min(5)).min(Duration::from_secs(15));
        attempt += 1;
        eprintln!("(connection lost: dialling again)");
        tokio::time::sleep(cap.mul_f64(rand::random::<f64>())).await;
    }
}

/// A state as the protocol names it (`completed`, `waiting_confirmation`).
fn state_word<T: serde::Serialize>(state: &T) -> String {
    serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
