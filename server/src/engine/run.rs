//! A workflow run's state, as snapshots show it and as its events report it.

use super::pipeline::Pipeline;
use app::protocol::{StageState, TimestampMs, WorkflowState, WorkflowStatus};
use serde::Serialize;

/// A stage's state is exactly what snapshots carry: the protocol's type.
pub use app::protocol::StageSnapshot as StageRun;

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: String,
    pub name: String,
    pub state: WorkflowState,
    pub progress: f64,
    pub stage_index: Option<usize>,
    pub eta_s: Option<f64>,
    pub created_at: TimestampMs,
    pub started_at: Option<TimestampMs>,
    pub finished_at: Option<TimestampMs>,
    pub error: Option<String>,
    pub stages: Vec<StageRun>,
    #[serde(skip)]
    pub pipeline: Pipeline,
    /// Progress at the last summary on `coordinator` (summaries are rationed).
    #[serde(skip)]
    pub summarised_progress: f64,
}

impl Run {
    pub fn new(id: String, pipeline: Pipeline, now: TimestampMs) -> Run {
        let stages = pipeline
            .stages
            .iter()
            .enumerate()
            .map(|(index, s)| StageRun {
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
            })
            .collect();
        Run {
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
            stages,
            pipeline,
            summarised_progress: 0.0,
        }
    }

    /// Overall progress: finished stages count whole, the current one by its share.
    pub fn recompute_progress(&mut self) {
        let n = self.stages.len().max(1) as f64;
        let done = self
            .stages
            .iter()
            .map(|s| match s.status {
                StageState::Completed | StageState::WaitingConfirmation => 1.0,
                // a stage that never ran is no progress, whatever the run's end
                StageState::Skipped => 0.0,
                _ => s.progress.clamp(0.0, 1.0),
            })
            .sum::<f64>();
        self.progress = (done / n).clamp(0.0, 1.0);
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
