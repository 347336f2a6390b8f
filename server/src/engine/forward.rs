//! Several nodes on PostgreSQL: a control (pause, resume, cancel, confirm, chat) for an
//! unfinished run that another node owns is relayed to that node (storage::relay),
//! which acts on it as if it had been sent there and answers; so any node takes any
//! control, over HTTP or WebSocket, and the caller gets the owner's own answer. The
//! same listener hands other nodes' announcements of stored events to the hub
//! (hub::follow), so a run is watched live from any node.

use super::{lock, Engine, EngineError};
use crate::storage::relay::{Relay, Reply, CONTROLS, EVENTS, LISTENING, REPLIES};
use app::protocol::{ControlAction, ErrorCode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a relayed control waits for the owner's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// Waiting controls are also looked for this often (a NOTIFY lost in a reconnect).
const POLL_EVERY: Duration = Duration::from_secs(1);
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// A control as relayed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum Op {
    Control { action: ControlAction },
    Confirm,
    Chat { from: String, text: String },
    /// Give this queued run to node `to`, which has room (engine::handoff).
    HandOver { to: String },
    /// Take up this run, which node `from` just gave this node: its next stage's agent
    /// is connected here (engine::agent_moves). `why` goes to the run's log.
    TakeUp { from: String, why: String },
    /// Let go of stage `key`, which `agent` runs, and give the run to node `to`, where
    /// the agent connected now (engine::agent_moves).
    Release { key: app::protocol::StageKey, agent: String, to: String },
}

type Answer = Option<(ErrorCode, String)>;

pub(super) struct Forwarding {
    relay: Relay,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
}

impl Forwarding {
    fn answered(&self, payload: &str) {
        let Ok(reply) = serde_json::from_str::<Reply>(payload) else {
            tracing::warn!(payload, "a relayed control's answer that does not read");
            return;
        };
        if reply.to != self.relay.node {
            return;
        }
        if let Some(tx) = lock(&self.waiting).remove(&reply.id) {
            let _ = tx.send(reply.error);
        }
    }
}

impl Engine {
    /// Starts taking relayed controls and answers (listening at `url`), until shutdown.
    pub fn relay_controls(&self, relay: Relay, url: String, tracker: &TaskTracker, shutdown: CancellationToken) {
        let forwarding = Arc::new(Forwarding { relay, waiting: Mutex::new(HashMap::new()) });
        if self.inner.forwarding.set(forwarding.clone()).is_err() {
            return;
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        tracker.spawn(listen(url, tx, shutdown.clone()));
        let engine = self.clone();
        tracker.spawn(async move {
            let mut poll = tokio::time::interval(POLL_EVERY);
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = poll.tick() => None,
                    n = rx.recv() => match n {
                        None => return,
                        n => n,
                    },
                };
                let work = async {
                    match next {
                        None => engine.act_on_relayed(&forwarding).await,
                        Some((channel, payload)) if channel == EVENTS => engine.inner.hub.follow(&payload).await,
                        Some((channel, _)) if channel == LISTENING => engine.inner.hub.follow_all().await,
                        Some((channel, payload)) if channel == CONTROLS => {
                            if payload == forwarding.relay.node {
                                engine.act_on_relayed(&forwarding).await;
                            }
                        }
                        Some((_, payload)) => forwarding.answered(&payload),
                    }
                };
                // a database that does not answer must not hold up the shutdown
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = work => {}
                }
            }
        });
    }

    async fn act_on_relayed(&self, forwarding: &Arc<Forwarding>) {
        let taken = match forwarding.relay.take().await {
            Ok(taken) => taken,
            Err(e) => return tracing::warn!(error = %e, "cannot read the controls relayed to this node"),
        };
        for r in taken {
            let op = serde_json::from_str::<Op>(&r.op);
            // moving a run waits for its stage and its writes: not on this loop, which
            // also carries the answers this node's own relayed controls wait for
            if let Ok(Op::Release { .. } | Op::TakeUp { .. }) = &op {
                let (engine, forwarding) = (self.clone(), forwarding.clone());
                self.inner.tracker.spawn(async move { engine.act_and_answer(&forwarding, r, op).await });
            } else {
                self.act_and_answer(forwarding, r, op).await;
            }
        }
    }

    async fn act_and_answer(&self, forwarding: &Forwarding, r: crate::storage::relay::Relayed, op: Result<Op, serde_json::Error>) {
        let done = match op {
            Ok(op) => self.act(&r.run, op).await,
            Err(e) => Err(EngineError::BadRequest(format!("a relayed control that does not read: {e}"))),
        };
        let error = done.err().map(|e| (e.code(), e.to_string()));
        if let Err(e) = forwarding.relay.reply(&r.reply_to, &r.id, error).await {
            tracing::warn!(error = %e, to = %r.reply_to, "cannot answer a relayed control");
        }
    }

    async fn act(&self, id: &str, op: Op) -> Result<(), EngineError> {
        // relayed once only: waiting here for another relay would block this loop
        if let Some(owner) = self.owner_elsewhere(id).await? {
            return Err(EngineError::Conflict(format!("workflow {id:?} moved to node {owner:?} meanwhile: send it again")));
        }
        match op {
            Op::Control { action } => self.control(id, action).await,
            Op::Confirm => self.confirm(id).await,
            Op::Chat { from, text } => self.chat(id, &from, &text).await,
            Op::HandOver { to } => self.hand_over(id, &to).await,
            Op::Release { key, agent, to } => self.release_stage(id, &key, &agent, &to).await,
            Op::TakeUp { from, why } => {
                let me = self.inner.config.node.clone().unwrap_or_default();
                self.take_given(id, &from, &me, why).await;
                Ok(())
            }
        }
    }

    /// The node that owns run `id`, when that is another one (and the run is not over).
    pub(super) async fn owner_elsewhere(&self, id: &str) -> Result<Option<String>, EngineError> {
        let Some(me) = self.inner.config.node.as_deref() else { return Ok(None) };
        if let Some(entry) = self.entry(id) {
            // a finished run here may have been restarted by another node since
            if !entry.run.lock().await.state.is_finished() {
                return Ok(None);
            }
        }
        let Some(stored) = self.inner.reader.run(id).await? else { return Ok(None) };
        let finished = super::stored::parse_state::<app::protocol::WorkflowState>(&stored.workflow.state).is_some_and(|s| s.is_finished());
        Ok(stored.workflow.node.filter(|owner| owner != me && !finished))
    }

    /// Relays `op` on run `id` to `owner` and waits for its answer.
    pub(super) async fn forward(&self, owner: &str, id: &str, op: Op) -> Result<(), EngineError> {
        let Some(forwarding) = self.inner.forwarding.get() else {
            return Err(EngineError::Conflict(format!("workflow {id:?} runs on node {owner:?}: send its controls to that node")));
        };
        let request = format!("{:016x}", rand::random::<u64>());
        let (tx, rx) = oneshot::channel();
        // waiting before it is sent: the answer may come before `send` returns
        lock(&forwarding.waiting).insert(request.clone(), tx);
        let op = serde_json::to_string(&op).map_err(|e| EngineError::Io(e.to_string()))?;
        if let Err(e) = forwarding.relay.send(&request, owner, id, &op).await {
            lock(&forwarding.waiting).remove(&request);
            return Err(e.into());
        }
        match tokio::time::timeout(ANSWER_WITHIN, rx).await {
            Ok(Ok(None)) => Ok(()),
            Ok(Ok(Some((code, message)))) => Err(EngineError::Relayed { code, message }),
            Ok(Err(_)) | Err(_) => {
                lock(&forwarding.waiting).remove(&request);
                Err(EngineError::NodeUnreachable(format!(
                    "node {owner:?}, which runs workflow {id:?}, did not answer within {} s: retry (a node that is down has its runs taken over by another once its lease expires, --node-lease-s)",
                    ANSWER_WITHIN.as_secs()
                )))
            }
        }
    }
}

/// Forwards every notification on the three channels to `tx`, reconnecting (with
/// backoff) whenever the connection is lost, until shutdown.
async fn listen(url: String, tx: mpsc::UnboundedSender<(String, String)>, shutdown: CancellationToken) {
    let mut wait = RECONNECT_FIRST;
    loop {
        let connected = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            listener.listen_all([CONTROLS, REPLIES, EVENTS]).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            _ = shutdown.cancelled() => return,
            l = connected => match l {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "cannot listen for relayed controls; retrying");
                    tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(wait) => {} }
                    wait = (wait * 2).min(RECONNECT_MAX);
                    continue;
                }
            },
        };
        wait = RECONNECT_FIRST;
        if tx.send((LISTENING.to_owned(), String::new())).is_err() {
            return;
        }
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                n = listener.try_recv() => n,
            };
            match next {
                Ok(Some(n)) => {
                    if tx.send((n.channel().to_owned(), n.payload().to_owned())).is_err() {
                        return;
                    }
                }
                // the connection was lost: listen anew, and then catch up (above)
                Ok(None) => {
                    tracing::warn!("lost the connection that listens for other nodes; reconnecting");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lost the connection that listens for relayed controls; reconnecting");
                    break;
                }
            }
        }
    }
}
