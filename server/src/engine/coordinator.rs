//! What the engine says about runs: each state change persisted and published on the
//! run's topic, a summary on `coordinator`, notifications, the queue book; the
//! coordinator's figures every few seconds; and finished runs leaving memory.

use super::stored::{stage_row, workflow_row};
use super::{lock, topic_of, Engine, Entry};
use crate::hub::now_ms;
use crate::storage::Write;
use app::protocol::{names, CoordinatorMetrics, COORDINATOR_TOPIC};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often the coordinator's figures are looked at for a change.
const COORDINATOR_LOOK: Duration = Duration::from_millis(500);

/// Progress a run makes between two of its summaries on `coordinator`.
pub(super) const SUMMARY_STEP: f64 = 0.01;

impl Engine {
    async fn persist(&self, entry: &Entry, write: Write) {
        let n = self.inner.store.write(write).await;
        entry.last_write.fetch_max(n, Ordering::AcqRel);
    }

    /// Stores the run's row, publishes its status on its topic and its summary.
    pub(super) async fn publish_status(&self, entry: &Entry, run: &mut super::Run) {
        self.persist(entry, Write::Workflow(workflow_row(run))).await;
        self.track(run);
        let _ = self.inner.hub.publish(&topic_of(&run.id), names::WORKFLOW_STATUS, &run.status_event(false)).await;
        self.publish_summary(run).await;
    }

    /// The run's summary on `coordinator`; a subscriber that may not see the run gets
    /// it without the run's id and name.
    pub(super) async fn publish_summary(&self, run: &mut super::Run) {
        run.summarised_progress = run.progress;
        let (full, anonymous) = (run.status_event(true), run.status_event(false));
        let scope = topic_of(&run.id);
        let _ = self.inner.hub.publish_scoped(COORDINATOR_TOPIC, names::WORKFLOW_STATUS, &full, &scope, &anonymous).await;
    }

    pub(super) async fn publish_stage(&self, entry: &Entry, run: &super::Run, index: usize) {
        if let Some(write) = stage_row(run, index) {
            self.persist(entry, write).await;
        }
        if let Some(stage) = run.stages.get(index) {
            let _ = self.inner.hub.publish(&topic_of(&run.id), names::STAGE_STATUS, &stage.status_event()).await;
        }
    }

    /// A `notification` on the run's topic, for the moments a person wants to hear of.
    pub(super) async fn notify(&self, run: &super::Run, title: String, message: String, priority: &str) {
        let n = app::protocol::Notification { title, message, priority: priority.to_owned() };
        let _ = self.inner.hub.publish(&topic_of(&run.id), names::NOTIFICATION, &n).await;
    }

    /// Brings the queue book up to date with the run (its lock held by the caller).
    pub(super) fn track(&self, run: &super::Run) {
        lock(&self.inner.book).update(&run.id, &run.name, run.state, run.progress);
    }

    /// The coordinator's figures now.
    pub fn coordinator_metrics(&self) -> CoordinatorMetrics {
        let figures = lock(&self.inner.book).figures();
        let (registered, healthy) = self.inner.agents.counts();
        let (messages, connections) = self.inner.hub.stats_counts();
        CoordinatorMetrics {
            total_messages: messages,
            total_workflows: self.inner.total_runs.load(Ordering::Relaxed),
            registered_agents: registered,
            healthy_agents: healthy,
            active_workflows: figures.pending + figures.running,
            connections,
        }
    }

    /// `coordinator_metrics` every `every`, and within half a second of a change of
    /// agents, runs or connections (a page's figures follow its cards), until shutdown;
    /// finished runs leave memory.
    pub async fn run_coordinator(self, every: Duration) {
        let mut tick = tokio::time::interval(COORDINATOR_LOOK.min(every));
        let mut last: Option<(CoordinatorMetrics, tokio::time::Instant)> = None;
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let m = self.coordinator_metrics();
            // the message count moves with any traffic: it alone is no change
            let same = |a: &CoordinatorMetrics| CoordinatorMetrics { total_messages: m.total_messages, ..a.clone() } == m;
            if last.as_ref().is_none_or(|(l, at)| !same(l) || at.elapsed() >= every) {
                let _ = self.inner.hub.publish(COORDINATOR_TOPIC, names::COORDINATOR_METRICS, &m).await;
                last = Some((m, tokio::time::Instant::now()));
            }
            self.evict_finished();
        }
    }

    /// Lets finished runs go from memory: beyond the newest `finished_in_memory`, or
    /// finished longer than `finished_memory_for` ago, once the database holds all of
    /// their writes (they are served from it from then on).
    pub(super) fn evict_finished(&self) {
        let (keep, keep_for) = (self.inner.config.finished_in_memory, self.inner.config.finished_memory_for.as_millis() as i64);
        let now = now_ms();
        let mut finished = lock(&self.inner.finished);
        while let Some((id, at)) = finished.front().cloned() {
            if finished.len() <= keep && now - at < keep_for {
                break;
            }
            let entry = lock(&self.inner.runs).get(&id).cloned();
            if let Some(entry) = &entry {
                if !self.inner.store.is_committed(entry.last_write.load(Ordering::Acquire)) {
                    break; // not on disk yet: try again at the next tick
                }
                lock(&self.inner.runs).remove(&id);
                // and its topic's window, unless someone watches it
                self.inner.hub.release_topic(&topic_of(&id));
            }
            finished.pop_front();
        }
    }

    /// Remembers a run finished now, for `evict_finished`.
    pub(super) fn finished_now(&self, id: &str) {
        let mut finished = lock(&self.inner.finished);
        finished.retain(|(f, _)| f != id);
        finished.push_back((id.to_owned(), now_ms()));
        drop(finished);
        self.evict_finished();
    }
}
