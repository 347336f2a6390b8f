//! Several nodes on one PostgreSQL: this node keeps its lease (storage::nodes), and
//! takes up the unfinished runs of a node whose lease expired, as a restart would,
//! except that a stage that was running there is queued again while its `retries`
//! allow and otherwise fails with `node lost`. A node that finds its own lease gone
//! (another node took its runs), or whose renewals fail until the next could only
//! succeed after its lease ran out, stops, cancelling its stages first (fail-stop):
//! before another node may take its runs over. The database never takes two nodes'
//! writes for one run (the fence); a stage's process, though, is only stopped by its
//! node: one frozen past its lease (a VM stall) leaves its stages running until it
//! wakes and stops them.

use super::restore::Why;
use super::process::Control;
use super::{lock, topic_of, Engine};
use crate::storage::nodes::{Lease, Takeover};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

impl Engine {
    /// Renews `lease` and looks for expired ones every `lease_len / 6` until shutdown.
    /// Sets `lost` and cancels `shutdown` when this node must stop.
    pub async fn keep_lease(self, lease: Lease, lease_len: Duration, lost: Arc<AtomicBool>, shutdown: CancellationToken) {
        let every = lease_len / 6;
        let mut renewed = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            // a database that does not answer must not hold this past the lease
            let attempt = Instant::now();
            let renewal = tokio::time::timeout(every, lease.renew()).await.unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut));
            match renewal {
                // the database's heartbeat is no earlier than this attempt's start
                Ok(true) => renewed = attempt,
                Ok(false) => {
                    tracing::error!(node = %lease.node, "another node took this node's runs over (its lease had expired): stopping now");
                    return self.fail_stop(&lost, &shutdown);
                }
                // the next try (a pause and a timeout away) could end past the lease
                Err(e) if renewed.elapsed() + every * 2 >= lease_len => {
                    tracing::error!(node = %lease.node, error = %e, "the lease could not be renewed and is about to run out: another node may take the runs over, so this one stops now");
                    return self.fail_stop(&lost, &shutdown);
                }
                Err(e) => {
                    tracing::warn!(node = %lease.node, error = %e, "cannot renew this node's lease; retrying");
                    continue;
                }
            }
            match tokio::time::timeout(every, lease.take_over_expired()).await.unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut)) {
                Ok(taken) => {
                    for t in taken {
                        self.take_over(t).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot look for nodes whose lease expired"),
            }
            // a takeover whose answer was lost after its commit (a timeout, a dropped
            // connection) left runs stored as this node's that nothing here runs
            if let Ok(Ok(ids)) = tokio::time::timeout(every, lease.own_unfinished()).await {
                let runs: Vec<String> = ids.into_iter().filter(|id| self.entry(id).is_none()).collect();
                if !runs.is_empty() {
                    self.take_over(Takeover { dead: "(a takeover not taken up)".into(), runs }).await;
                }
            }
        }
    }

    async fn take_over(&self, t: Takeover) {
        tracing::warn!(dead = %t.dead, runs = t.runs.len(), "a node's lease expired: taking its unfinished runs over");
        self.adopt(t.runs, Why::NodeLost).await;
    }

    /// Takes up runs now stored as this node's: one take-up at a time, and a run that
    /// runs here already (a handover and the lease's look for runs not taken up may
    /// both find it) is left as it is.
    async fn adopt(&self, ids: Vec<String>, why: Why) {
        let taking_up = self.inner.taking_up.lock().await;
        self.adopt_locked(ids, why, &taking_up).await;
    }

    /// Whether run `id` runs here already (unfinished, with its task).
    pub(super) async fn runs_here(&self, id: &str) -> bool {
        match self.entry(id) {
            Some(entry) => !entry.run.lock().await.state.is_finished() && lock(&entry.controls).is_some(),
            None => false,
        }
    }

    /// `adopt`, with `taking_up` held.
    pub(super) async fn adopt_locked(&self, ids: Vec<String>, why: Why, _taking_up: &tokio::sync::MutexGuard<'_, ()>) {
        let mut runs = Vec::new();
        for id in &ids {
            if self.runs_here(id).await {
                continue;
            }
            if why != Why::Moved {
                // whatever this node held of the run's topic belongs to the old epoch
                self.inner.hub.restart_topic(&topic_of(id));
            }
            match self.inner.reader.run(id).await {
                // given to another node meanwhile (a handover read half before, half after)
                Ok(Some(run)) if run.workflow.node.is_some() && run.workflow.node != self.inner.config.node => {
                    tracing::info!(%id, owner = ?run.workflow.node, "a run to take up belongs to another node now; left to it");
                }
                Ok(Some(run)) => runs.push(run),
                Ok(None) => tracing::warn!(%id, "a run taken up is no longer stored"),
                Err(e) => tracing::error!(%id, error = %e, "cannot read a run taken up; it stays as stored"),
            }
        }
        self.take_up(runs, why).await;
    }
}

impl Engine {
    /// Stops this node now: its stages are cancelled at once (their process groups
    /// signalled), not left to run through the shutdown beside the node that takes
    /// them over; what they write is fenced off anyway.
    fn fail_stop(&self, lost: &AtomicBool, shutdown: &CancellationToken) {
        lost.store(true, Ordering::SeqCst);
        for entry in lock(&self.inner.runs).values() {
            entry.send(Control::Cancel);
        }
        shutdown.cancel();
    }
}
