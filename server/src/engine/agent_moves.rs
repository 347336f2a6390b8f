//! Several nodes on PostgreSQL: agents connect to whichever node their load balancer
//! picks, and a run goes to its agents. Each node shares how it sees its agents
//! (storage::presence). A stage that `runs_on` capabilities that no agent here has
//! free, but one connected to another node has, moves its run there between two
//! stages: the run's events all stored, its row and its cluster slot given in one
//! transaction (storage::handoff), its subscribers here told to resume (same epoch,
//! nothing lost); the other node, told through the relay (engine::forward), takes it
//! up as the taker of a queued run does, and gives the stage to its agent. Controls
//! then go to the new owner as to any owner. Every node lists every agent.
//!
//! An agent whose connection is cut mid-stage and that comes back to another node
//! brings its stage along: that node asks the owner (relayed) to let go of the stage;
//! the owner's stage task stops waiting for the agent, stores what it applied, and
//! gives the run; the agent's new node takes it up as after a restart, and the agent
//! goes on reporting from the seq after the last one stored.

use super::forward::Op;
use super::pipeline::StageDef;
use super::process::Control;
use super::{lock, topic_of, Engine, EngineError, Entry};
use crate::storage::presence::Presence;
use app::protocol::{AgentState, AgentStatus, StageKey, StageState};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long the owner waits for the run's events to be stored before giving it.
const SETTLE_WITHIN: Duration = Duration::from_secs(2);
/// How long a stage asked for by the node its agent connected to has to let go of it
/// (under the relay's wait for an answer).
const RELEASE_WITHIN: Duration = Duration::from_secs(4);
/// How often this node's `agents` topic catches up with the other nodes' agents.
const LOOK_AT_OTHERS_EVERY: Duration = Duration::from_secs(2);
/// After a failed write of a status, the wait before writing it again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What became of a move asked for.
pub(super) enum Move {
    /// The run is the other node's now: nothing more is written here.
    Done,
    /// It was cancelled meanwhile.
    Cancelled,
    /// Not now (the other node's lease ran out, the database did not answer).
    NotNow,
}

impl Engine {
    /// Shares how this node sees its agents (each change, the latest per agent first
    /// when several are queued), until shutdown; then says this node has none.
    pub fn share_agents(&self, presence: Presence, tracker: &TaskTracker, shutdown: CancellationToken) {
        if self.inner.presence.set(presence.clone()).is_err() {
            return;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<(AgentStatus, bool)>();
        let stop = shutdown.clone();
        tracker.spawn(async move {
            if let Err(e) = presence.clear().await {
                tracing::warn!(error = %e, "cannot clear what this node said of agents before");
            }
            let mut unwritten: BTreeMap<String, (AgentStatus, bool)> = BTreeMap::new();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    next = rx.recv() => match next {
                        Some(s) => { unwritten.insert(s.0.agent_name.clone(), s); }
                        None => break,
                    },
                    _ = tokio::time::sleep(RETRY_AFTER), if !unwritten.is_empty() => {}
                }
                while let Ok(s) = rx.try_recv() {
                    unwritten.insert(s.0.agent_name.clone(), s);
                }
                while let Some((name, (status, connected))) = unwritten.pop_first() {
                    let put = tokio::select! {
                        _ = stop.cancelled() => break,
                        put = presence.put(&status, connected) => put,
                    };
                    if let Err(e) = put {
                        tracing::warn!(agent = %name, error = %e, "cannot share an agent's status with the other nodes; retrying");
                        unwritten.insert(name, (status, connected));
                        break;
                    }
                }
            }
            // stopping: its agents will connect elsewhere (best effort, briefly)
            let _ = tokio::time::timeout(Duration::from_secs(1), presence.clear()).await;
        });
        self.inner.agents.share_with(tx);
        let engine = self.clone();
        tracker.spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(LOOK_AT_OTHERS_EVERY) => {}
                }
                let Some(presence) = engine.inner.presence.get() else { return };
                match presence.elsewhere().await {
                    Ok(seen) => engine.inner.agents.publish_elsewhere(seen.into_iter().map(|s| s.status).collect()).await,
                    Err(e) => tracing::debug!(error = %e, "cannot read the agents of other nodes"),
                }
            }
        });
        let engine = self.clone();
        self.inner.agents.bring_with(Arc::new(move |key, agent| {
            let engine = engine.clone();
            Box::pin(async move { engine.bring_stage(key, agent).await })
        }));
    }

    /// A free agent with every capability in `needs`, connected to another live node:
    /// (node, agent), the least busy first.
    pub(super) async fn agent_elsewhere(&self, needs: &[String]) -> Option<(String, String)> {
        let presence = self.inner.presence.get()?;
        let seen = match presence.elsewhere().await {
            Ok(seen) => seen,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for agents connected to other nodes");
                return None;
            }
        };
        seen.into_iter()
            .filter(|s| s.connected && s.status.status != AgentState::Offline)
            .filter(|s| s.status.running < s.status.concurrency.unwrap_or(1))
            .filter(|s| needs.iter().all(|n| s.status.capabilities.contains(n)))
            .min_by_key(|s| s.status.running)
            .map(|s| (s.node, s.status.agent_name))
    }

    /// Moves run `entry`, about to run stage `index`, to `node`, where `agent` is.
    pub(super) async fn move_for_agent(&self, entry: &Arc<Entry>, index: usize, stage: &StageDef, node: &str, agent: &str) -> Move {
        let Some(me) = self.inner.config.node.clone() else { return Move::NotNow };
        // held to the end: a control waits, and then finds the run moved (or not)
        let mut run = entry.run.lock().await;
        if entry.cancelling.load(Ordering::Acquire) {
            return Move::Cancelled;
        }
        if entry.is_moved() {
            return Move::Done;
        }
        let id = run.id.clone();
        if run.stages[index].status != StageState::Pending {
            // queued again after its agent was lost: it starts afresh over there
            let s = &mut run.stages[index];
            s.status = StageState::Pending;
            s.agent = None;
            s.started_at = None;
            self.publish_stage(entry, &run, index).await;
        }
        if !self.give_run(entry, run, node).await {
            return Move::NotNow;
        }
        let why = format!("moved from node {me}: stage {:?} needs an agent with {}, and {agent:?} is connected to node {node}", stage.id, stage.runs_on.join(", "));
        // a node that does not answer finds the run among its own at its next lease tick
        if let Err(e) = self.forward(node, &id, Op::TakeUp { from: me, why }).await {
            tracing::warn!(%id, %node, error = %e, "the node a run moved to did not say it took it up; it will find it");
        }
        Move::Done
    }

    /// Gives run `entry` (`run`, its lock held) to node `to`, unfinished: its events all
    /// stored first, for the taker goes on from them. Whether it is `to`'s now (then
    /// nothing here acts on it or writes it any more).
    pub(super) async fn give_run(&self, entry: &Arc<Entry>, run: tokio::sync::MutexGuard<'_, super::run::Run>, to: &str) -> bool {
        let Some(handoff) = self.inner.handoff.get() else { return false };
        let id = run.id.clone();
        // a cancel sent meanwhile is acted on here, not lost with the run's task
        if entry.cancelling.load(Ordering::Acquire) || entry.is_moved() {
            return false;
        }
        if !self.inner.store.settled(SETTLE_WITHIN).await {
            return false;
        }
        match handoff.give_running(&id, to).await {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                tracing::warn!(%id, %to, error = %e, "cannot give a run to the node its agent is connected to");
                return false;
            }
        }
        entry.moved.store(true, Ordering::Release);
        lock(&entry.controls).take();
        lock(&self.inner.runs).remove(&id);
        lock(&self.inner.book).forget(&id);
        drop(run);
        // its subscribers here resume from the database, where the taker writes on
        self.inner.hub.restart_topic(&topic_of(&id));
        tracing::info!(%id, %to, "gave a run to the node its agent is connected to");
        true
    }

    /// Agent `agent` registered here saying it runs stage `key`, of a run another node
    /// owns (its connection there was cut, and it came back here): that node lets go
    /// of the stage and gives the run here, which takes it up, the stage with it.
    /// Whether the stage is this node's now (else the agent is told to drop it).
    pub(crate) async fn bring_stage(&self, key: StageKey, agent: String) -> bool {
        let Some(me) = self.inner.config.node.clone() else { return false };
        let owner = match self.owner_elsewhere(&key.run).await {
            Ok(Some(owner)) => owner,
            Ok(None) => {
                tracing::warn!(run = %key.run, %agent, "an agent brought a stage of a run no other node runs");
                return false;
            }
            Err(e) => {
                tracing::warn!(run = %key.run, error = %e, "cannot read the owner of a stage an agent brought");
                return false;
            }
        };
        let op = Op::Release { key: key.clone(), agent: agent.clone(), to: me.clone() };
        let why = format!("moved from node {owner}: agent {agent:?}, which runs stage {:?}, connected to node {me}", key.stage);
        if let Err(e) = self.forward(&owner, &key.run, op).await {
            tracing::warn!(run = %key.run, %owner, %agent, error = %e, "the node of a stage an agent brought did not say it gave the run");
            // it may have given it all the same (its answer was late), or a dead owner's
            // runs may have been taken over here meanwhile, the stage with them
            match self.inner.reader.run(&key.run).await {
                Ok(Some(s)) if s.workflow.node.as_deref() == Some(me.as_str()) && !self.runs_here(&key.run).await => {
                    self.take_given(&key.run, &owner, &me, why).await;
                }
                _ => {}
            }
            return self.inner.agents.slot(&key).is_some();
        }
        self.take_given(&key.run, &owner, &me, why).await;
        self.inner.agents.slot(&key).is_some()
    }

    /// Lets go of stage `key` of run `id`, which `agent` runs, once the run is node
    /// `to`'s (asked by `to`, where the agent connected now: `bring_stage`).
    pub(super) async fn release_stage(&self, id: &str, key: &StageKey, agent: &str, to: &str) -> Result<(), EngineError> {
        let refused = |why: &str| Err(EngineError::Conflict(format!("stage {:?} of workflow {id:?} is not given to node {to:?}: {why}", key.stage)));
        let Some(entry) = self.entry(id) else { return refused("the run is not running here") };
        {
            let run = entry.run.lock().await;
            let runs_it = run.stages.iter().any(|s| {
                s.id == key.stage && s.attempt == key.attempt && s.agent.as_deref() == Some(agent) && matches!(s.status, StageState::Running | StageState::Paused)
            });
            if !runs_it || entry.is_moved() {
                return refused(&format!("{agent:?} does not run it here"));
            }
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        *lock(&entry.detached) = Some((to.to_owned(), tx));
        if !entry.send(Control::Detach { key: key.clone(), to: to.to_owned() }) {
            lock(&entry.detached).take();
            return refused("the run's task has ended");
        }
        match tokio::time::timeout(RELEASE_WITHIN, rx).await {
            Ok(Ok(true)) => Ok(()),
            Ok(_) => refused("the run could not be given now"),
            Err(_) => {
                lock(&entry.detached).take();
                refused("the stage did not let go in time")
            }
        }
    }

    /// Every agent: as this node sees it, or, for one not connected here, as a node it
    /// is connected to sees it.
    pub async fn agents_everywhere(&self) -> Vec<AgentStatus> {
        let mut all = self.inner.agents.statuses();
        let Some(presence) = self.inner.presence.get() else { return all };
        let seen = match presence.elsewhere().await {
            Ok(seen) => seen,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the agents of other nodes; listing this node's");
                return all;
            }
        };
        for s in seen {
            match all.iter_mut().find(|a| a.agent_name == s.status.agent_name) {
                Some(a) if a.status == AgentState::Offline && s.connected => *a = s.status,
                Some(_) => {}
                None => all.push(s.status),
            }
        }
        all.sort_by(|a, b| a.agent_name.cmp(&b.agent_name));
        all
    }
}
