//! The queue: first come, first served behind the concurrency limit. Each run waiting
//! holds a ticket; only the front ticket waits on the semaphore, so runs start in
//! submission order whatever order their tasks are first polled in. With several
//! nodes and `--cluster-concurrency`, a run then also waits for one of the cluster's
//! slots (storage::slots), looked for every `CLAIM_EVERY`.

use super::process::Control;
use super::{lock, Engine, Entry};
use crate::storage::slots::Slots;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const CLAIM_EVERY: Duration = Duration::from_millis(200);

/// A run's place to run: this node's slot (none for a run taken up with its stage
/// running, when every slot is taken), and the cluster's when it has a limit.
pub(super) struct Turn {
    _local: Option<tokio::sync::OwnedSemaphorePermit>,
    _cluster: Option<ClusterSlot>,
}

struct ClusterSlot {
    slots: Slots,
    run: String,
}

impl Drop for ClusterSlot {
    fn drop(&mut self) {
        let (slots, run) = (self.slots.clone(), std::mem::take(&mut self.run));
        // at shutdown this may not run: the next start gives every slot back (lib.rs)
        tokio::spawn(async move {
            if let Err(e) = slots.release(&run).await {
                tracing::warn!(%run, error = %e, "cannot give a cluster slot back; it is freed when this node restarts or its lease expires");
            }
        });
    }
}

impl Engine {
    /// Queues the run from stage `from` (first waiting for its confirmation when asked,
    /// or taking up that stage where an agent still runs it: `resume`).
    pub(super) fn spawn_run(&self, entry: Arc<Entry>, from: usize, confirm_first: bool, resume: Option<(String, u64)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        *lock(&entry.controls) = Some(tx);
        let ticket = self.inner.next_ticket.fetch_add(1, Ordering::Relaxed);
        entry.ticket.store(ticket + 1, Ordering::Release);
        lock(&self.inner.line).push_back(ticket);
        let engine = self.clone();
        self.inner.tracker.spawn(async move { engine.drive(entry, ticket, from, confirm_first, resume, rx).await });
    }

    pub(super) fn leave_line(&self, ticket: u64) {
        lock(&self.inner.line).retain(|t| *t != ticket);
        self.inner.turn.notify_waiters();
    }

    /// Limits the runs of every node together (several nodes on PostgreSQL).
    pub fn limit_cluster(&self, slots: Slots) {
        let _ = self.inner.cluster_slots.set(slots);
    }

    /// Waits for run `run`'s turn and its slots; None when it was cancelled (or the
    /// server stops) first. A run whose stage runs already (`running`: taken up from
    /// the agent that runs it, after a restart or brought by its agent from another
    /// node) does not wait behind queued runs: it takes a slot of this node's if one
    /// is free, and goes on without one if not (it was counted where it started).
    pub(super) async fn wait_turn(&self, ticket: u64, run: &str, running: bool, controls: &mut mpsc::UnboundedReceiver<Control>) -> Option<Turn> {
        let local = if running {
            self.leave_line(ticket);
            self.inner.slots.clone().try_acquire_owned().ok()
        } else {
            Some(self.wait_local_turn(ticket, controls).await?)
        };
        let Some(slots) = self.inner.cluster_slots.get() else {
            return Some(Turn { _local: local, _cluster: None });
        };
        loop {
            match slots.claim(run).await {
                Ok(true) => return Some(Turn { _local: local, _cluster: Some(ClusterSlot { slots: slots.clone(), run: run.to_owned() }) }),
                Ok(false) => {}
                Err(e) => tracing::warn!(%run, error = %e, "cannot claim a cluster slot; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(CLAIM_EVERY) => {}
                ctl = controls.recv() => if let Some(Control::Cancel) | None = ctl {
                    return None;
                },
                _ = self.inner.shutdown.cancelled() => return None,
            }
        }
    }

    async fn wait_local_turn(
        &self,
        ticket: u64,
        controls: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        loop {
            // created before the check, so a notify_waiters in between is not missed
            let turn = self.inner.turn.notified();
            let front = lock(&self.inner.line).front() == Some(&ticket);
            let slots = self.inner.slots.clone();
            tokio::select! {
                permit = slots.acquire_owned(), if front => {
                    self.leave_line(ticket);
                    return permit.ok();
                }
                _ = turn, if !front => {}
                ctl = controls.recv() => if let Some(Control::Cancel) | None = ctl {
                    self.leave_line(ticket);
                    return None;
                },
                _ = self.inner.shutdown.cancelled() => return None,
            }
        }
    }
}
