//! Several nodes on PostgreSQL: a queued run goes to whichever node has room. A node
//! with a free slot and nothing waiting asks, once a second, the owner of the oldest
//! run queued elsewhere for it (a relayed control: engine::forward); the owner gives it
//! only while the run still waits in its line behind busy slots, first letting the
//! writer store every event it queued, then moving the row in one statement
//! (storage::handoff). Then the run is gone from the owner as if never there (its
//! task leaves the line without a word, its subscribers resume from the database, same
//! epoch, nothing lost), and the taker takes it up as a restart would a queued run.
//! A queued run that needs an agent is not taken: it goes to its agent's node when its
//! stage comes (engine::agent_moves).

use super::forward::Op;
use super::pipeline::Pipeline;
use super::restore::Why;
use super::{lock, topic_of, Engine, EngineError};
use crate::storage::handoff::Handoff;
use app::protocol::{names, LogLevel, LogLine, WorkflowState};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often a node with room looks for runs queued elsewhere.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How many of the oldest queued runs it considers each time.
const CANDIDATES: i64 = 10;
/// How long an owner waits for the run's events to be stored before giving it.
const SETTLE_WITHIN: Duration = Duration::from_secs(2);

impl Engine {
    /// Starts taking queued runs from busier nodes, until shutdown.
    pub fn balance_queue(&self, handoff: Handoff, tracker: &TaskTracker, shutdown: CancellationToken) {
        if self.inner.handoff.set(handoff.clone()).is_err() {
            return;
        }
        let engine = self.clone();
        tracker.spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(LOOK_EVERY) => {}
                }
                if engine.has_room() {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = engine.take_one_queued(&handoff) => {}
                    }
                }
            }
        });
    }

    /// A free slot and nobody waiting for it.
    fn has_room(&self) -> bool {
        !self.inner.shutdown.is_cancelled() && lock(&self.inner.line).is_empty() && self.inner.slots.available_permits() > 0
    }

    async fn take_one_queued(&self, handoff: &Handoff) {
        let queued = match handoff.queued_elsewhere(CANDIDATES).await {
            Ok(q) => q,
            Err(e) => return tracing::warn!(error = %e, "cannot look for runs queued on other nodes"),
        };
        for q in queued {
            if needs_agents(&q.pipeline) {
                continue;
            }
            match self.forward(&q.owner, &q.id, Op::HandOver { to: handoff.node.clone() }).await {
                Ok(()) => return self.take_given(&q.id, &q.owner, &handoff.node, had_room(&q.owner, &handoff.node)).await,
                // the answer did not come: the owner may have given it all the same
                Err(EngineError::NodeUnreachable(_)) => {
                    if let Ok(Some(s)) = self.inner.reader.run(&q.id).await {
                        if s.workflow.node.as_deref() == Some(handoff.node.as_str()) {
                            return self.take_given(&q.id, &q.owner, &handoff.node, had_room(&q.owner, &handoff.node)).await;
                        }
                    }
                    return; // one slot, one ask at a time: the next look tries again
                }
                // it started there meanwhile, or its owner is busy: the next one
                Err(e) => tracing::debug!(id = %q.id, owner = %q.owner, error = %e, "a queued run was not handed over"),
            }
        }
    }

    /// Takes up run `id`, just given by node `from`; `why` goes to its log.
    pub(super) async fn take_given(&self, id: &str, from: &str, me: &str, why: String) {
        let taking_up = self.inner.taking_up.lock().await;
        if self.runs_here(id).await {
            return; // the lease's look for runs not taken up was first (engine::takeover)
        }
        if let Err(e) = std::fs::create_dir_all(self.inner.config.runs_dir.join(id).join("artifacts")) {
            tracing::warn!(%id, error = %e, "cannot make the folder of a run handed over; its stages will say so");
        }
        self.inner.hub.restart_topic(&topic_of(id));
        let _ = self.inner.hub.publish(&topic_of(id), names::LOG_LINE, &LogLine { level: LogLevel::Notice, message: why }).await;
        tracing::info!(%id, %from, %me, "took up a run another node gave");
        self.adopt_locked(vec![id.to_owned()], Why::Moved, &taking_up).await;
    }

    /// Gives run `id`, queued here, to node `to` (asked by `to`, which has room).
    pub(super) async fn hand_over(&self, id: &str, to: &str) -> Result<(), EngineError> {
        let refused = |why: &str| Err(EngineError::Conflict(format!("workflow {id:?} is not handed over: {why}")));
        let (Some(handoff), Some(entry)) = (self.inner.handoff.get(), self.entry(id)) else {
            return refused("it is not queued here");
        };
        if self.inner.slots.available_permits() > 0 {
            return refused("it starts here now");
        }
        let run = entry.run.lock().await;
        // still in the line: it holds no slot (this node's, or the cluster's) yet
        let ticket = entry.ticket.load(Ordering::Acquire);
        let in_line = ticket > 0 && lock(&self.inner.line).contains(&(ticket - 1));
        if run.state != WorkflowState::Pending || entry.is_moved() || !in_line {
            return refused("it is not waiting in the line any more");
        }
        if entry.cancelling.load(Ordering::Acquire) {
            return refused("it is being cancelled");
        }
        // the taker goes on from the stored events: all of them must be there
        if !self.inner.store.settled(SETTLE_WITHIN).await {
            return refused("its events are not all stored yet");
        }
        if !handoff.give(id, to).await? {
            return refused("it is not this node's queued run any more, or the asking node is gone");
        }
        entry.moved.store(true, Ordering::Release);
        // its task leaves the line (lifecycle::drive): nothing here writes it again
        lock(&entry.controls).take();
        lock(&self.inner.runs).remove(id);
        lock(&self.inner.book).forget(id);
        drop(run);
        // its subscribers here resume from the database, where the taker writes on
        self.inner.hub.restart_topic(&topic_of(id));
        tracing::info!(%id, %to, "gave a queued run to a node with a free slot");
        Ok(())
    }
}

/// What the log says of a queued run taken by a node with room.
fn had_room(from: &str, me: &str) -> String {
    format!("queued on node {from}; moved to node {me}, which had a free slot")
}

/// Whether a stored pipeline sends any stage to an agent (or cannot be read).
fn needs_agents(pipeline: &str) -> bool {
    serde_json::from_str::<Pipeline>(pipeline).map_or(true, |p| p.executor.is_some() || p.stages.iter().any(|s| !s.runs_on.is_empty()))
}
