//! Start-up: the engine takes up what an earlier process left unfinished, reading
//! only those runs (a finished run stays in the database until asked for). A stage
//! that was running (or paused) here when that process died is failed with `server
//! restarted` and can be restarted; one an agent runs is taken up again (its agent
//! re-attaches when it reconnects, and goes on reporting from the seq after the last
//! one applied; not back within the grace period, it is lost); a run stopped between
//! two stages goes on with the next; queued runs are queued again; a run at a
//! confirmation gate waits there. (After a crash every run's topic already has a new
//! epoch: storage::Database::begin_session.) A run taken over from a node whose lease
//! expired (engine::takeover) is taken up the same way, except that a stage that was
//! running there is queued again while its `retries` allow, and fails `node lost`.

use super::stored::revive;
use super::{lock, Engine, Entry};
use crate::storage::StoredRun;
use super::topic_of;
use app::protocol::{names, LogLevel, LogLine, StageKey, StageState, WorkflowState};
use std::sync::atomic::Ordering;

/// Why a run is taken up by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// This node started again.
    Restarted,
    /// It ran on another node, whose lease expired.
    NodeLost,
    /// Another node, busier, gave it while it was queued (engine::handoff).
    Moved,
}

impl Why {
    fn error(self) -> &'static str {
        match self {
            Why::Restarted => "server restarted",
            Why::NodeLost => "node lost",
            Why::Moved => "moved to another node",
        }
    }
}

impl Engine {
    /// Takes up `unfinished`; `stored` is how many runs the database holds.
    pub async fn restore(&self, unfinished: Vec<StoredRun>, stored: u64, durations: Vec<(String, f64, u32)>) {
        self.inner.total_runs.store(stored, Ordering::Relaxed);
        *lock(&self.inner.durations) = durations.into_iter().map(|(name, secs, n)| (name, (secs, n))).collect();
        self.inner.agents.publish_all().await;
        self.take_up(unfinished, Why::Restarted).await;
    }

    /// Takes up runs another process left unfinished.
    pub(super) async fn take_up(&self, unfinished: Vec<StoredRun>, why: Why) {
        let (mut failed, mut requeued, mut waiting, mut reattached) = (0, 0, 0, 0);
        for s in unfinished {
            let Some(mut run) = revive(&s) else {
                tracing::warn!(id = %s.workflow.id, "a stored run could not be read; skipped");
                continue;
            };
            let state = run.state;
            let mut resume = None;
            let remote = run.stages.iter().enumerate().find_map(|(i, st)| {
                let running = matches!(st.status, StageState::Running | StageState::Paused);
                let applied = s.stages.iter().find(|r| r.idx as usize == i).map_or(0, |r| r.applied_seq.max(0) as u64);
                st.agent.clone().filter(|_| running).map(|agent| (i, agent, st.attempt, applied))
            });
            let mut reattach = None;
            match state {
                WorkflowState::Running | WorkflowState::Paused if remote.is_some() => {
                    if let Some((index, agent, attempt, applied)) = remote {
                        let key = StageKey { run: run.id.clone(), stage: run.stages[index].id.clone(), attempt };
                        self.inner.agents.reattach(key.clone(), &agent, applied + 1);
                        if why == Why::NodeLost && self.inner.agents.was_told_to_drop(&key) {
                            // it came here while its node was dying, and was told to drop
                            // the stage then (engine::agent_moves): it has not got it
                            if let Some(slot) = self.inner.agents.slot(&key) {
                                slot.mark_missing();
                            }
                        }
                        run.stage_index = Some(index);
                        reattach = Some((index, agent, applied + 1));
                        reattached += 1;
                    }
                }
                WorkflowState::Running | WorkflowState::Paused if !run.stages.iter().any(|st| matches!(st.status, StageState::Running | StageState::Paused)) => {
                    // stopped between two stages: it goes on with the next (or completes)
                    resume = Some((run.stages.iter().position(|st| st.status != StageState::Completed).unwrap_or(run.stages.len()), false));
                    requeued += 1;
                }
                WorkflowState::Running | WorkflowState::Paused if why == Why::NodeLost && self.retry_lost(&run).await => {
                    let at = run.stages.iter().position(|st| matches!(st.status, StageState::Running | StageState::Paused)).unwrap_or(0);
                    resume = Some((at, false));
                    requeued += 1;
                }
                WorkflowState::Running | WorkflowState::Paused => {
                    for st in run.stages.iter_mut() {
                        if matches!(st.status, StageState::Running | StageState::Paused) {
                            st.status = StageState::Failed;
                            st.error = Some(why.error().into());
                            st.finished_at = Some(crate::hub::now_ms());
                        }
                    }
                    failed += 1;
                }
                WorkflowState::Pending => {
                    resume = Some((run.stages.iter().position(|st| st.status != StageState::Completed).unwrap_or(0), false));
                    requeued += 1;
                }
                WorkflowState::WaitingConfirmation => {
                    let at = run.stages.iter().position(|st| st.status == StageState::WaitingConfirmation).unwrap_or(0);
                    resume = Some((at, true));
                    waiting += 1;
                }
                _ => {}
            }
            self.track(&run);
            let id = run.id.clone();
            let entry = Entry::new(run, self.inner.config.max_output_bytes);
            lock(&self.inner.runs).insert(id, entry.clone());
            if let Some((index, agent, next_seq)) = reattach {
                self.spawn_run(entry, index, false, Some((agent, next_seq)));
                continue;
            }
            if matches!(state, WorkflowState::Running | WorkflowState::Paused) && resume.is_none() {
                let from = {
                    let run = entry.run.lock().await;
                    for i in 0..run.stages.len() {
                        if run.stages[i].status == StageState::Failed {
                            self.publish_stage(&entry, &run, i).await;
                        }
                    }
                    run.stages.iter().position(|st| st.status == StageState::Failed).map_or(0, |i| i + 1)
                };
                self.finish(&entry, WorkflowState::Failed, Some(why.error().into()), from).await;
            }
            if let Some((from, confirm_first)) = resume {
                self.spawn_run(entry, from, confirm_first, None);
            }
        }
        if failed + requeued + waiting + reattached > 0 {
            tracing::info!(?why, failed, requeued, waiting, reattached, "runs taken up from the database");
        }
    }

    /// Whether the stage a lost node was running may run again (its `retries`), and
    /// says so in the run's log.
    async fn retry_lost(&self, run: &super::run::Run) -> bool {
        let Some(i) = run.stages.iter().position(|st| matches!(st.status, StageState::Running | StageState::Paused)) else {
            return false;
        };
        let (stage, attempt) = (&run.pipeline.stages[i], run.stages[i].attempt.max(1));
        if attempt > stage.retries {
            return false;
        }
        let message = format!("node lost: stage {:?} is queued again (attempt {} of {})", stage.id, attempt + 1, stage.retries + 1);
        let _ = self.inner.hub.publish(&topic_of(&run.id), names::LOG_LINE, &LogLine { level: LogLevel::Warning, message }).await;
        true
    }
}
