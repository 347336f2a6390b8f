//! `switchboard agent`: runs stages on this machine for a Switchboard server. It dials
//! out (so it works from behind NAT) to `/api/v1/agents/connect` with an agent token
//! (from `SWITCHBOARD_TOKEN` or `--token-file`, never a flag), registers its name, its
//! capabilities (plus `gpu` when NVML sees one) and how many stages it runs at once,
//! runs what it is given, sends its machine's figures every few seconds, and keeps every
//! report until the server applied it: a dropped connection is dialled again with
//! backoff, the running stages go on, and their reports are sent again from where the
//! server asks.

mod outbox;
mod stage;

use crate::engine::process::Control;
use crate::engine::stage_env::EnvDeny;
use crate::metrics::{gpu, system};
use app::protocol::{AgentMessage, MachineMetrics, Running, ServerToAgent, StageKey, StageSignal};
use futures::{SinkExt, StreamExt};
use outbox::Outbox;
use stage::StageEnv;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The server, as `http://host:port` (its WebSocket door is derived from it).
    #[arg(long, env = "SWITCHBOARD_SERVER")]
    pub server: String,
    /// This agent's name (its token's subject): 1-64 of a-z, 0-9, '_', '.', '-'.
    #[arg(long, env = "SWITCHBOARD_AGENT_NAME")]
    pub name: String,
    /// What it can do, comma-separated (`gpu` is added when an NVIDIA GPU is found).
    #[arg(long, env = "SWITCHBOARD_AGENT_CAPABILITIES", value_delimiter = ',')]
    pub capabilities: Vec<String>,
    /// Stages it runs at once.
    #[arg(long, env = "SWITCHBOARD_AGENT_CONCURRENCY", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Folder the stages run in (one per run).
    #[arg(long, env = "SWITCHBOARD_AGENT_WORK_DIR", default_value = "agent-work")]
    pub work_dir: PathBuf,
    /// File holding the agent token (else SWITCHBOARD_TOKEN).
    #[arg(long, env = "SWITCHBOARD_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Milliseconds between two samples of this machine's figures.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub metrics_interval_ms: u64,
    /// Bytes of reports kept for sending again after a dropped connection; past it a
    /// stage waits (its pipe fills) until the server has applied some.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub buffer_bytes: usize,
    /// Environment variables stages do not inherit (globs, as the server's).
    #[arg(long, value_delimiter = ',', default_value = crate::config::STAGE_ENV_DENY_DEFAULT)]
    pub stage_env_deny: Vec<String>,
    /// `switchboard run`: run one command as the one stage of one external run, then stop.
    #[arg(skip)]
    pub one_shot: Option<OneShot>,
}

/// One command, as the stage of one external run (`switchboard run`): its output is
/// echoed here too, and the agent stops once that stage's end is applied.
#[derive(Debug, Clone)]
pub struct OneShot {
    pub run: String,
    pub command: String,
    pub workdir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("--server {0:?} must start with http:// or https://")]
    BadServer(String),
    #[error("--name {0:?} is not an agent name (1-64 of a-z, 0-9, '_', '.', '-')")]
    BadName(String),
    #[error("cannot read the token file {0}: {1}")]
    TokenFile(String, String),
    #[error("the server refused this agent: {0}")]
    Refused(String),
}

/// Backoff between dials: full jitter, from 1 s doubling to 30 s.
fn backoff(attempt: u32) -> Duration {
    let cap = Duration::from_secs(30).min(Duration::from_secs(1) * 2u32.saturating_pow(attempt.min(5)));
    cap.mul_f64(rand::random::<f64>())
}

struct Agent {
    args: AgentArgs,
    /// Stopped when a one-shot stage's end is applied.
    stop: tokio_util::sync::CancellationToken,
    /// A one-shot stage's exit code, once it ended.
    exit: Mutex<Option<i32>>,
    env: Arc<StageEnv>,
    outbox: Arc<Outbox>,
    stages: Mutex<HashMap<StageKey, mpsc::UnboundedSender<Control>>>,
    capabilities: Vec<String>,
    machine: Mutex<Machine>,
}

/// The agent token; None (for a server with auth off) when none is given.
fn token(args: &AgentArgs) -> Result<Option<String>, AgentError> {
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path).map_err(|e| AgentError::TokenFile(path.display().to_string(), e.to_string()))?;
        return Ok(Some(text.trim().to_owned()));
    }
    Ok(std::env::var("SWITCHBOARD_TOKEN").ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()))
}

/// Runs the agent until `stop` (or, one-shot, until its stage's end is applied: then
/// its exit code, None when it did not exit by itself).
pub async fn run(args: AgentArgs, stop: tokio_util::sync::CancellationToken) -> Result<Option<i32>, AgentError> {
    let server = args.server.trim_end_matches('/').to_owned();
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        return Err(AgentError::BadServer(args.server.clone()));
    }
    if !crate::engine::pipeline::valid_agent_name(&args.name) {
        return Err(AgentError::BadName(args.name.clone()));
    }
    let token = token(&args)?;
    let mut capabilities = args.capabilities.clone();
    let mut machine = Machine::new();
    if machine.gpu.sample().is_ok_and(|g| !g.is_empty()) && !capabilities.iter().any(|c| c == "gpu") {
        capabilities.push("gpu".into());
    }
    let env = Arc::new(StageEnv {
        server: server.clone(),
        token: token.clone(),
        http: reqwest::Client::new(),
        work_dir: std::path::absolute(&args.work_dir).unwrap_or_else(|_| args.work_dir.clone()),
        env_deny: EnvDeny::new(&args.stage_env_deny),
        echo: args.one_shot.is_some(),
    });
    let agent = Arc::new(Agent {
        machine: Mutex::new(machine),
        outbox: Arc::new(Outbox::new(args.buffer_bytes)),
        env,
        stages: Mutex::new(HashMap::new()),
        capabilities,
        args,
        stop: stop.clone(),
        exit: Mutex::new(None),
    });
    let ws_url = format!("{}/api/v1/agents/connect", server.replacen("http", "ws", 1));
    let mut attempt = 0;
    let mut stopping: Option<tokio::time::Instant> = None;
    loop {
        let session = agent.clone().session(&ws_url, token.as_deref());
        tokio::pin!(session);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let ended = loop {
            tokio::select! {
                s = &mut session => break Some(s),
                _ = stop.cancelled(), if stopping.is_none() => {
                    // stop: cancel what runs, and stay until its ends are reported
                    tracing::info!("stopping: cancelling the stages running here");
                    agent.cancel_all();
                    stopping = Some(tokio::time::Instant::now() + STOP_WITHIN);
                }
                _ = tick.tick(), if stopping.is_some() => {
                    if agent.done() || stopping.is_some_and(|t| tokio::time::Instant::now() > t) {
                        break None;
                    }
                }
            }
        };
        let exit = || *agent.exit.lock().unwrap_or_else(|p| p.into_inner());
        match ended {
            None => return Ok(exit()),
            Some(Ok(())) => attempt = 0,
            Some(Err(Session::Refused(why))) => return Err(AgentError::Refused(why)),
            Some(Err(Session::Dropped(why))) => tracing::warn!(error = %why, "connection to the server lost; dialling again"),
        }
        if stopping.is_some() && agent.done() {
            return Ok(exit());
        }
        let wait = backoff(attempt);
        attempt += 1;
        tokio::select! {
            _ = stop.cancelled(), if stopping.is_none() => {
                agent.cancel_all();
                stopping = Some(tokio::time::Instant::now() + STOP_WITHIN);
            }
            _ = tokio::time::sleep(wait) => {}
        }
        if stopping.is_some_and(|t| tokio::time::Instant::now() > t) {
            return Ok(exit());
        }
    }
}

/// How long a stopping agent waits for its cancelled stages' ends to be applied.
const STOP_WITHIN: Duration = Duration::from_secs(15);

enum Session {
    /// Closed with 1008 (a bad token, a name it may not use): dialling again won't help.
    Refused(String),
    Dropped(String),
}

fn json(msg: &AgentMessage) -> Message {
    Message::text(serde_json::to_string(msg).unwrap_or_default())
}

impl Agent {
    /// What `register` says it runs: its stages, and those that ended here whose end
    /// the server has not applied yet (it still runs them: they are taken up again).
    fn running(&self) -> Vec<Running> {
        let mut keys: std::collections::BTreeSet<StageKey> = self.stages.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        keys.extend(self.outbox.unapplied());
        keys.into_iter().map(|key| Running { key }).collect()
    }

    /// One connection, from `register` to its end.
    async fn session(self: Arc<Self>, url: &str, token: Option<&str>) -> Result<(), Session> {
        let mut req = url.into_client_request().map_err(|e| Session::Refused(e.to_string()))?;
        if let Some(token) = token {
            let bearer = format!("Bearer {token}").parse().map_err(|_| Session::Refused("the token is not a valid header value".into()))?;
            req.headers_mut().insert("authorization", bearer);
        }
        // no Nagle: a report right after an ack would wait for the ack's delayed ACK (40 ms)
        let (ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true).await.map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(r) if matches!(r.status().as_u16(), 401 | 403) => {
                let body = String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).into_owned();
                let hint = if token.is_none() { " (no token was given: set SWITCHBOARD_TOKEN or SWITCHBOARD_TOKEN_FILE; mint one with `switchboard token create --sub NAME --agent`)" } else { "" };
                Session::Refused(format!("{} {body}{hint}", r.status()))
            }
            other => Session::Dropped(other.to_string()),
        })?;
        let (mut sink, mut stream) = ws.split();
        let register = AgentMessage::Register {
            name: self.args.name.clone(),
            capabilities: self.capabilities.clone(),
            concurrency: self.args.concurrency,
            running: self.running(),
        };
        sink.send(json(&register)).await.map_err(|e| Session::Dropped(e.to_string()))?;
        self.outbox.reconnected();
        tracing::info!(server = %self.env.server, name = %self.args.name, "connected");
        let mut metrics = tokio::time::interval(Duration::from_millis(self.args.metrics_interval_ms));
        loop {
            let ready = self.outbox.ready.notified();
            let batch = self.outbox.take_batch();
            if !batch.is_empty() {
                let msg = AgentMessage::Reports { reports: batch, id: None };
                sink.send(json(&msg)).await.map_err(|e| Session::Dropped(e.to_string()))?;
                continue;
            }
            tokio::select! {
                _ = ready => {}
                _ = metrics.tick() => {
                    let metrics = self.machine.lock().unwrap_or_else(|p| p.into_inner()).sample();
                    sink.send(json(&AgentMessage::Metrics { metrics })).await.map_err(|e| Session::Dropped(e.to_string()))?;
                }
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        let Ok(msg) = serde_json::from_str::<ServerToAgent>(text.as_str()) else { continue };
                        if let Some(ack) = self.clone().handle(msg) {
                            sink.send(json(&ack)).await.map_err(|e| Session::Dropped(e.to_string()))?;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        return Err(if why.contains("token") || why.starts_with("this token") || why.contains("not an agent") { Session::Refused(why) } else { Session::Dropped(why) });
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(Session::Dropped(e.to_string())),
                    None => return Err(Session::Dropped("the server closed the connection".into())),
                },
            }
        }
    }

    /// A message from the server; the ack to send, if it asks for one.
    fn handle(self: Arc<Self>, msg: ServerToAgent) -> Option<AgentMessage> {
        match msg {
            ServerToAgent::Welcome { resume, unknown, .. } => {
                for r in resume {
                    self.outbox.resume_from(&r.key, r.next_seq);
                }
                for key in unknown {
                    // the server no longer wants it: stop it, and forget its reports
                    self.control(&key, Control::Cancel);
                    self.outbox.forget(&key);
                }
                None
            }
            ServerToAgent::Assign { id, key, mut work, vars } => {
                if let Some(one) = &self.args.one_shot {
                    if key.run != one.run {
                        tracing::warn!(run = %key.run, "this one-shot agent runs only run {:?}: not taking the stage", one.run);
                        return Some(AgentMessage::Ack { id });
                    }
                    work.run = Some(one.command.clone());
                    work.workdir = Some(one.workdir.display().to_string());
                }
                let fresh = !self.stages.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&key);
                if fresh {
                    let (tx, rx) = mpsc::unbounded_channel();
                    self.stages.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), tx);
                    let agent = self.clone();
                    tokio::spawn(async move {
                        let code = stage::run(key.clone(), work, vars, agent.env.clone(), agent.outbox.clone(), rx).await;
                        agent.stages.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                        if agent.args.one_shot.is_some() {
                            *agent.exit.lock().unwrap_or_else(|p| p.into_inner()) = code;
                            agent.stop.cancel(); // stays until its end is applied
                        }
                    });
                }
                Some(AgentMessage::Ack { id })
            }
            ServerToAgent::Signal { id, key, action } => {
                let control = match action {
                    StageSignal::Pause => Control::Pause,
                    StageSignal::Resume => Control::Resume,
                    StageSignal::Cancel => Control::Cancel,
                };
                self.control(&key, control);
                Some(AgentMessage::Ack { id })
            }
            ServerToAgent::Chat { id, key, text } => {
                self.control(&key, Control::Chat(text));
                Some(AgentMessage::Ack { id })
            }
            ServerToAgent::Applied { key, seq } => {
                self.outbox.applied(&key, seq);
                None
            }
            ServerToAgent::Refused { key: Some(key), expected: Some(next), .. } => {
                self.outbox.resume_from(&key, next);
                None
            }
            ServerToAgent::Refused { key: Some(key), code, message, .. } => {
                tracing::warn!(run = %key.run, stage = %key.stage, %code, %message, "the server refused reports; stopping that stage");
                self.control(&key, Control::Cancel);
                self.outbox.forget(&key);
                None
            }
            ServerToAgent::Refused { code, message, .. } => {
                tracing::warn!(%code, %message, "the server refused a message");
                None
            }
        }
    }

    fn cancel_all(&self) {
        for tx in self.stages.lock().unwrap_or_else(|p| p.into_inner()).values() {
            let _ = tx.send(Control::Cancel);
        }
    }

    /// Nothing runs and every report was applied.
    fn done(&self) -> bool {
        self.stages.lock().unwrap_or_else(|p| p.into_inner()).is_empty() && self.outbox.is_empty()
    }

    fn control(&self, key: &StageKey, control: Control) {
        if let Some(tx) = self.stages.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            let _ = tx.send(control);
        }
    }
}

/// This machine's figures (the same probes as the server's own `metrics`).
struct Machine {
    system: Box<dyn system::SystemProbe>,
    gpu: Box<dyn gpu::GpuProbe>,
}

impl Machine {
    fn new() -> Machine {
        Machine { system: Box::new(system::SysinfoProbe::new()), gpu: gpu::probe() }
    }

    fn sample(&mut self) -> MachineMetrics {
        let s = self.system.sample();
        let sample = crate::metrics::figures(s, self.gpu.sample().unwrap_or_default(), Default::default());
        MachineMetrics {
            cpu_percent: sample.cpu_percent,
            memory_percent: sample.memory_percent,
            memory_used_bytes: sample.memory_used_bytes,
            memory_total_bytes: sample.memory_total_bytes,
            gpus: sample.gpus,
        }
    }
}
