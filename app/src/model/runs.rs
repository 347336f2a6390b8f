//! The dashboard's list of runs, from `GET /api/v1/workflows` brought up to date by the
//! `workflow_status` summaries on `coordinator`; each change of state is also a line
//! of the activity log and, for some, a notification. Plain Rust, tested on the host.

use crate::protocol::{WorkflowSnapshot, WorkflowState, WorkflowStatus};

#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub id: String,
    pub name: String,
    pub state: WorkflowState,
    pub progress: f64,
    pub eta_s: Option<f64>,
    pub stages: usize,
}

/// A run's state changed: a line of the activity log.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub id: String,
    pub name: String,
    pub from: Option<WorkflowState>,
    pub to: WorkflowState,
}

impl Transition {
    /// "training-demo started", "… is waiting for confirmation", …
    pub fn describe(&self) -> String {
        let what = match self.to {
            WorkflowState::Pending if self.from.is_none() => "queued",
            WorkflowState::Pending => "queued again",
            WorkflowState::Running if self.from == Some(WorkflowState::Paused) => "resumed",
            WorkflowState::Running if self.from == Some(WorkflowState::WaitingConfirmation) => "confirmed",
            WorkflowState::Running => "started",
            WorkflowState::Paused => "paused",
            WorkflowState::WaitingConfirmation => "is waiting for confirmation",
            WorkflowState::Completed => "completed",
            WorkflowState::Failed => "failed",
            WorkflowState::Cancelled => "was cancelled",
        };
        format!("{} {what}", self.name)
    }

    /// Whether a person would want to be told (a toast, a browser notification).
    pub fn notable(&self) -> bool {
        matches!(
            self.to,
            WorkflowState::Completed | WorkflowState::Failed | WorkflowState::WaitingConfirmation
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunList {
    /// Newest first.
    pub runs: Vec<RunSummary>,
}

impl RunList {
    pub fn from_snapshots(list: &[WorkflowSnapshot]) -> Self {
        let runs = list
            .iter()
            .map(|s| RunSummary {
                id: s.id.clone(),
                name: s.name.clone(),
                state: s.state,
                progress: s.progress,
                eta_s: s.eta_s,
                stages: s.stages.len(),
            })
            .collect();
        RunList { runs }
    }

    /// Adds a page of older runs at the end (those already listed stay as they are).
    pub fn append_older(&mut self, list: &[WorkflowSnapshot]) {
        for run in RunList::from_snapshots(list).runs {
            if !self.runs.iter().any(|r| r.id == run.id) {
                self.runs.push(run);
            }
        }
    }

    /// Applies a summary from `coordinator`; a change of state is returned.
    pub fn apply(&mut self, s: &WorkflowStatus) -> Option<Transition> {
        let id = s.id.clone()?;
        let name = s.name.clone().unwrap_or_else(|| id.clone());
        match self.runs.iter_mut().find(|r| r.id == id) {
            Some(run) => {
                let from = run.state;
                run.state = s.state;
                run.progress = s.progress;
                run.eta_s = s.eta_s;
                (from != s.state).then(|| Transition { id, name, from: Some(from), to: s.state })
            }
            None => {
                let run = RunSummary { id: id.clone(), name: name.clone(), state: s.state, progress: s.progress, eta_s: s.eta_s, stages: 0 };
                self.runs.insert(0, run);
                Some(Transition { id, name, from: None, to: s.state })
            }
        }
    }

    pub fn active(&self) -> usize {
        self.runs.iter().filter(|r| !r.state.is_finished()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str, state: WorkflowState, progress: f64) -> WorkflowStatus {
        WorkflowStatus { id: Some(id.into()), name: Some("train".into()), state, progress, stage_index: None, eta_s: None }
    }

    #[test]
    fn new_runs_go_first_and_changes_are_transitions() {
        let mut l = RunList::default();
        let t = l.apply(&status("a", WorkflowState::Pending, 0.0)).unwrap();
        assert_eq!(t.describe(), "train queued");
        l.apply(&status("b", WorkflowState::Pending, 0.0));
        assert_eq!(l.runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(l.apply(&status("a", WorkflowState::Running, 0.1)).map(|t| t.describe()), Some("train started".into()));
        assert_eq!(l.apply(&status("a", WorkflowState::Running, 0.4)), None, "progress alone is no transition");
        assert_eq!(l.runs[1].progress, 0.4);
        let done = l.apply(&status("a", WorkflowState::Completed, 1.0)).unwrap();
        assert!(done.notable());
        assert_eq!(l.active(), 1);
    }

    #[test]
    fn resumed_and_confirmed_read_as_such() {
        let t = |from, to| Transition { id: "x".into(), name: "n".into(), from: Some(from), to };
        assert_eq!(t(WorkflowState::Paused, WorkflowState::Running).describe(), "n resumed");
        assert_eq!(t(WorkflowState::WaitingConfirmation, WorkflowState::Running).describe(), "n confirmed");
        assert_eq!(t(WorkflowState::Failed, WorkflowState::Pending).describe(), "n queued again");
        assert!(!t(WorkflowState::Pending, WorkflowState::Running).notable());
    }

    #[test]
    fn older_pages_go_at_the_end_once() {
        let mut l = RunList::default();
        l.apply(&status("new", WorkflowState::Running, 0.0));
        let snap = |id: &str| WorkflowSnapshot {
            id: id.into(),
            name: "n".into(),
            state: WorkflowState::Completed,
            progress: 1.0,
            stage_index: None,
            eta_s: None,
            created_at: 0,
            started_at: None,
            finished_at: None,
            error: None,
            stages: vec![],
            seq: 0,
            epoch: String::new(),
        };
        l.append_older(&[snap("new"), snap("old1"), snap("old2")]);
        assert_eq!(l.runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["new", "old1", "old2"]);
        assert_eq!(l.runs[0].state, WorkflowState::Running, "the live one is kept as it is");
    }

    #[test]
    fn a_summary_without_an_id_is_ignored() {
        let mut l = RunList::default();
        let mut s = status("a", WorkflowState::Running, 0.0);
        s.id = None;
        assert_eq!(l.apply(&s), None);
        assert!(l.runs.is_empty());
    }
}
