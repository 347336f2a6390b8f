//! Runs as the database holds them: a stored row made a `Run` again, the names states
//! are stored by, and a run that is in the database only (or was pruned).

use super::pipeline::Pipeline;
use super::run::Run;
use super::{lock, topic_of, Engine, EngineError, Entry};
use crate::storage::reads::{Cursor, ListFilter};
use crate::storage::{StageRow, StoredRun, Write, WorkflowRow};
use app::protocol::WorkflowSnapshot;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One page of runs, and where the next one starts.
pub struct RunPage {
    pub runs: Vec<WorkflowSnapshot>,
    pub next: Option<Cursor>,
}


/// The protocol's name of a state (`"waiting_confirmation"`).
pub fn name_of<T: serde::Serialize>(state: &T) -> String {
    serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

pub(super) fn parse_state<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(Value::String(name.to_owned())).ok()
}

/// A stored run as a `Run`, or None when a row no longer reads.
pub fn revive(s: &StoredRun) -> Option<Run> {
    let w = &s.workflow;
    let pipeline: Pipeline = serde_json::from_str(&w.pipeline).ok()?;
    let mut run = Run::new(w.id.clone(), pipeline, w.created_at);
    run.state = parse_state(&w.state)?;
    run.error = w.error.clone();
    run.started_at = w.started_at;
    run.finished_at = w.finished_at;
    for row in &s.stages {
        let Some(st) = run.stages.get_mut(row.idx as usize) else { continue };
        st.status = parse_state(&row.status)?;
        st.progress = row.progress;
        st.started_at = row.started_at;
        st.finished_at = row.finished_at;
        st.exit_code = row.exit_code.map(|c| c as i32);
        st.error = row.error.clone();
        st.output_dropped_bytes = row.output_dropped_bytes.max(0) as u64;
        st.agent = row.agent.clone();
        st.attempt = row.attempt.max(0) as u32;
    }
    run.recompute_progress();
    Some(run)
}

pub fn workflow_row(run: &Run) -> WorkflowRow {
    WorkflowRow {
        id: run.id.clone(),
        name: run.name.clone(),
        pipeline: serde_json::to_string(&run.pipeline).unwrap_or_default(),
        state: name_of(&run.state),
        error: run.error.clone(),
        created_at: run.created_at,
        started_at: run.started_at,
        finished_at: run.finished_at,
        executor: run.pipeline.executor.clone(),
        // the writer stamps its own node on a new run's row
        node: None,
    }
}

pub fn stage_row(run: &Run, index: usize) -> Option<Write> {
    let s = run.stages.get(index)?;
    Some(Write::Stage(StageRow {
        workflow_id: run.id.clone(),
        idx: index as i64,
        id: s.id.clone(),
        status: name_of(&s.status),
        progress: s.progress,
        started_at: s.started_at,
        finished_at: s.finished_at,
        exit_code: s.exit_code.map(i64::from),
        error: s.error.clone(),
        output_dropped_bytes: s.output_dropped_bytes.min(i64::MAX as u64) as i64,
        agent: s.agent.clone(),
        attempt: i64::from(s.attempt),
        applied_seq: 0,
    }))
}

impl Engine {
    /// A run from the database: 404 when there is none, saying so when it was pruned.
    /// With several nodes, an unfinished run another node runs is that node's to act
    /// on: this node must not take it up (controls are relayed: engine::forward).
    pub(super) async fn check_owner(&self, id: &str) -> Result<(), EngineError> {
        match self.owner_elsewhere(id).await? {
            Some(owner) => Err(EngineError::Conflict(format!("workflow {id:?} runs on node {owner:?}: only that node can do this now"))),
            None => Ok(()),
        }
    }

    pub(super) async fn stored_run(&self, id: &str) -> Result<Run, EngineError> {
        if let Some(stored) = self.inner.reader.run(id).await? {
            return revive(&stored).ok_or_else(|| EngineError::Storage(format!("the stored run {id:?} cannot be read")));
        }
        match self.inner.reader.pruned_at(id).await? {
            Some(at) => {
                let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at.max(0) as u64);
                Err(EngineError::Pruned { id: id.to_owned(), at: humantime::format_rfc3339_seconds(when).to_string() })
            }
            None => Err(EngineError::NotFound(id.to_owned())),
        }
    }

    /// A page of runs, newest first: those in memory (the newest state of the active
    /// ones, which the database may not have yet) merged with the stored ones.
    pub async fn list(&self, filter: &ListFilter, cursor: Option<&Cursor>, limit: usize) -> Result<RunPage, EngineError> {
        let stored = self.inner.reader.page(filter, cursor, limit + 1).await?;
        let entries: Vec<Arc<Entry>> = lock(&self.inner.runs).values().cloned().collect();
        let mut merged: HashMap<String, WorkflowSnapshot> = HashMap::new();
        for s in stored {
            if let Some(run) = revive(&s) {
                merged.insert(run.id.clone(), run.view);
            }
        }
        let mut in_memory = std::collections::HashSet::new();
        for entry in entries {
            let run = entry.run.lock().await;
            in_memory.insert(run.id.clone());
            let key = Cursor { created_at: run.created_at, id: run.id.clone() };
            let states = &filter.states;
            let matches = (states.is_empty() || states.iter().any(|s| *s == name_of(&run.state)))
                && filter.pipeline.as_ref().is_none_or(|p| *p == run.name)
                && cursor.is_none_or(|c| (key.created_at, &key.id) < (c.created_at, &c.id));
            if matches {
                merged.insert(run.id.clone(), run.view.clone());
            }
        }
        let mut runs: Vec<WorkflowSnapshot> = merged.into_values().collect();
        runs.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        let more = runs.len() > limit;
        runs.truncate(limit);
        // positions: a run in memory has its topic open (the hub knows it now); the
        // others are read for the whole page in two queries
        let stored_topics: Vec<String> = runs.iter().filter(|r| !in_memory.contains(&r.id)).map(|r| topic_of(&r.id)).collect();
        let positions = self.inner.reader.topic_positions(&stored_topics).await?;
        for r in &mut runs {
            let topic = topic_of(&r.id);
            let position = match positions.get(&topic) {
                Some(p) => Some(p.clone()),
                None if in_memory.contains(&r.id) => self.inner.hub.position(&topic).await.ok().map(|(s, e)| (e, s)),
                None => None,
            };
            if let Some((epoch, seq)) = position {
                (r.seq, r.epoch) = (seq, epoch);
            }
        }
        let next = if more { runs.last().map(|r| Cursor { created_at: r.created_at, id: r.id.clone() }) } else { None };
        Ok(RunPage { runs, next })
    }

}

impl Engine {
    /// Decides the new run `entry`'s id with the other nodes (several nodes only).
    pub(super) async fn claim_new_run(&self, entry: &Entry) -> Result<(), EngineError> {
        let Some(claims) = self.inner.claims.get() else { return Ok(()) };
        let row = workflow_row(&*entry.run.lock().await);
        if claims.new_run(&row).await? {
            return Ok(());
        }
        Err(EngineError::Conflict(format!("id: a workflow {:?} exists already (or existed: ids are never reused)", row.id)))
    }

    /// Takes finished run `id` for a restart here (several nodes only); a run another
    /// node ran until now gets a new epoch, and this node's view of its topic with it.
    pub(super) async fn claim_restart(&self, id: &str) -> Result<(), EngineError> {
        use crate::storage::claims::Restart;
        let Some(claims) = self.inner.claims.get() else { return Ok(()) };
        match claims.restart(id).await? {
            Restart::Claimed { handed_over } => {
                if handed_over {
                    self.inner.hub.restart_topic(&topic_of(id));
                }
                Ok(())
            }
            Restart::Refused => Err(EngineError::Conflict(format!("workflow {id:?} is not finished any more: it was restarted on another node"))),
        }
    }

    /// Forgets this node's copy of finished run `id` when another node has run it
    /// since (restarted it there): the copy is stale, the database has the run.
    pub(super) async fn forget_if_moved(&self, id: &str) -> Result<(), EngineError> {
        let (Some(me), Some(entry)) = (self.inner.config.node.as_deref(), self.entry(id)) else { return Ok(()) };
        if !entry.run.lock().await.state.is_finished() {
            return Ok(());
        }
        let moved = self.inner.reader.run(id).await?.and_then(|s| s.workflow.node).is_some_and(|node| node != me);
        if moved {
            lock(&self.inner.runs).remove(id);
            lock(&self.inner.finished).retain(|(f, _)| f != id);
        }
        Ok(())
    }

    /// Claims decided by the shared database, for several nodes.
    pub fn share_claims(&self, claims: crate::storage::claims::Claims) {
        let _ = self.inner.claims.set(claims);
    }
}
