//! The queue as the metrics bar reports it: every unfinished run, in queue order, with
//! its state. The engine updates it in the same critical section as the run's own
//! state, and a sample reads it under one lock, so every sample is one instant of the
//! queue (never two runs' states read a moment apart).

use crate::metrics::QueueFigures;
use app::protocol::{CurrentTask, WorkflowState};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone)]
struct Active {
    id: String,
    name: String,
    state: WorkflowState,
    progress: f64,
}

#[derive(Debug, Default)]
pub struct Book {
    /// Unfinished runs by queue position (a run restarted later goes to the back).
    active: BTreeMap<u64, Active>,
    position: HashMap<String, u64>,
    next: u64,
}

impl Book {
    /// Records a run's state now; a finished run leaves the book.
    pub fn update(&mut self, id: &str, name: &str, state: WorkflowState, progress: f64) {
        if state.is_finished() {
            if let Some(pos) = self.position.remove(id) {
                self.active.remove(&pos);
            }
            return;
        }
        let pos = *self.position.entry(id.to_owned()).or_insert_with(|| {
            self.next += 1;
            self.next
        });
        let entry = Active { id: id.to_owned(), name: name.to_owned(), state, progress };
        self.active.insert(pos, entry);
    }

    /// The run is not this node's any more (given to another while queued).
    pub fn forget(&mut self, id: &str) {
        if let Some(pos) = self.position.remove(id) {
            self.active.remove(&pos);
        }
    }

    /// Pending and running counts, and the first running run (in queue order).
    pub fn figures(&self) -> QueueFigures {
        let mut f = QueueFigures::default();
        for run in self.active.values() {
            match run.state {
                WorkflowState::Pending => f.pending += 1,
                _ => {
                    f.running += 1;
                    if f.current_task.is_none() {
                        f.current_task =
                            Some(CurrentTask { id: run.id.clone(), name: run.name.clone(), progress: run.progress });
                    }
                }
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use WorkflowState::*;

    #[test]
    fn counts_follow_the_states_and_finished_runs_leave() {
        let mut b = Book::default();
        b.update("a", "train", Pending, 0.0);
        b.update("b", "render", Pending, 0.0);
        assert_eq!((b.figures().pending, b.figures().running), (2, 0));
        b.update("b", "render", Running, 0.25);
        let f = b.figures();
        assert_eq!((f.pending, f.running), (1, 1));
        assert_eq!(f.current_task.map(|t| (t.id, t.progress)), Some(("b".into(), 0.25)));
        b.update("a", "train", Paused, 0.5);
        assert_eq!(b.figures().current_task.map(|t| t.id), Some("a".into()), "first in queue order");
        b.update("a", "train", Completed, 1.0);
        b.update("b", "render", Failed, 0.3);
        assert_eq!(b.figures(), QueueFigures::default());
    }

    #[test]
    fn a_restarted_run_goes_to_the_back() {
        let mut b = Book::default();
        b.update("a", "x", Running, 0.0);
        b.update("a", "x", Failed, 0.0);
        b.update("b", "y", WaitingConfirmation, 1.0);
        b.update("a", "x", Running, 0.0);
        assert_eq!(b.figures().current_task.map(|t| t.id), Some("b".into()));
        assert_eq!(b.figures().running, 2);
    }
}
