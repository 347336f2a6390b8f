//! A workflow run's state: exactly the protocol's snapshot (`WorkflowSnapshot`, its
//! `seq` and `epoch` filled in when one is taken), and what the engine keeps beside it.

use super::pipeline::Pipeline;
use app::protocol::{StageSnapshot, StageState, TimestampMs, WorkflowSnapshot, WorkflowState, WorkflowStatus};
use std::ops::{Deref, DerefMut};

#[derive(Debug, Clone)]
pub struct Run {
    /// What snapshots show.
    pub view: WorkflowSnapshot,
    pub pipeline: Pipeline,
    /// Progress at the last summary on `coordinator` (summaries are rationed).
    pub summarised_progress: f64,
    /// Bytes of terminal output stored for this run (capped).
    pub output_bytes: u64,
}

impl Deref for Run {
    type Target = WorkflowSnapshot;
    fn deref(&self) -> &WorkflowSnapshot {
        &self.view
    }
}

impl DerefMut for Run {
    fn deref_mut(&mut self) -> &mut WorkflowSnapshot {
        &mut self.view
    }
}

fn stage_views(pipeline: &Pipeline) -> Vec<StageSnapshot> {
    pipeline
        .stages
        .iter()
        .enumerate()
        .map(|(index, s)| StageSnapshot {
            id: s.id.clone(),
            name: s.display_name().to_owned(),
            index,
            status: StageState::Pending,
            progress: 0.0,
            confirm: s.confirm,
            started_at: None,
            finished_at: None,
            exit_code: None,
            error: None,
            output_dropped_bytes: 0,
            agent: None,
            attempt: 0,
        })
        .collect()
}

impl Run {
    pub fn new(id: String, pipeline: Pipeline, now: TimestampMs) -> Run {
        let view = WorkflowSnapshot {
            id,
            name: pipeline.name.clone(),
            state: WorkflowState::Pending,
            progress: 0.0,
            stage_index: None,
            eta_s: None,
            created_at: now,
            started_at: None,
            finished_at: None,
            error: None,
            stages: stage_views(&pipeline),
            seq: 0,
            epoch: String::new(),
        };
        Run { view, pipeline, summarised_progress: 0.0, output_bytes: 0 }
    }

    /// Overall progress: finished stages count whole, the current one by its share.
    pub fn recompute_progress(&mut self) {
        self.view.progress = progress_of(&self.view.stages);
    }

    pub fn status_event(&self, with_identity: bool) -> WorkflowStatus {
        WorkflowStatus {
            id: with_identity.then(|| self.id.clone()),
            name: with_identity.then(|| self.name.clone()),
            state: self.state,
            progress: self.progress,
            stage_index: self.stage_index,
            eta_s: self.eta_s,
        }
    }

    pub fn stage_position(&self, stage_id: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.id == stage_id)
    }

    /// The snapshot at `seq` of the run's topic, in `epoch`.
    pub fn snapshot_at(&self, seq: u64, epoch: String) -> WorkflowSnapshot {
        WorkflowSnapshot { seq, epoch, ..self.view.clone() }
    }
}

pub fn progress_of(stages: &[StageSnapshot]) -> f64 {
    let n = stages.len().max(1) as f64;
    let done = stages
        .iter()
        .map(|s| match s.status {
            StageState::Completed | StageState::WaitingConfirmation => 1.0,
            // a stage that never ran is no progress, whatever the run's end
            StageState::Skipped => 0.0,
            _ => s.progress.clamp(0.0, 1.0),
        })
        .sum::<f64>();
    (done / n).clamp(0.0, 1.0)
}

/// The ETA of a run: from its own progress rate once it has made some, otherwise from
/// the average duration of past runs of the same pipeline.
pub fn eta(progress: f64, elapsed_s: f64, past_average_s: Option<f64>) -> Option<f64> {
    if progress >= 1.0 {
        return Some(0.0);
    }
    if progress >= 0.02 && elapsed_s > 0.5 {
        return Some(elapsed_s * (1.0 - progress) / progress);
    }
    past_average_s.map(|avg| (avg - elapsed_s).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_from_rate_then_history() {
        assert_eq!(eta(0.5, 10.0, None), Some(10.0));
        assert_eq!(eta(0.25, 10.0, Some(100.0)), Some(30.0), "own rate wins once there is progress");
        assert_eq!(eta(0.0, 10.0, Some(100.0)), Some(90.0));
        assert_eq!(eta(0.0, 10.0, None), None);
        assert_eq!(eta(1.0, 10.0, None), Some(0.0));
        assert_eq!(eta(0.01, 300.0, Some(100.0)), Some(0.0));
    }
}
