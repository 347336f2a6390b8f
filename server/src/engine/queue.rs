//! The queue: first come, first served behind the concurrency limit. Each run waiting
//! holds a ticket; only the front ticket waits on the semaphore, so runs start in
//! submission order whatever order their tasks are first polled in.

use super::process::Control;
use super::{lock, Engine, Entry};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

impl Engine {
    /// Queues the run from stage `from` (first waiting for its confirmation when asked,
    /// or taking up that stage where an agent still runs it: `resume`).
    pub(super) fn spawn_run(&self, entry: Arc<Entry>, from: usize, confirm_first: bool, resume: Option<(String, u64)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        *lock(&entry.controls) = Some(tx);
        let ticket = self.inner.next_ticket.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.line).push_back(ticket);
        let engine = self.clone();
        self.inner.tracker.spawn(async move { engine.drive(entry, ticket, from, confirm_first, resume, rx).await });
    }

    pub(super) fn leave_line(&self, ticket: u64) {
        lock(&self.inner.line).retain(|t| *t != ticket);
        self.inner.turn.notify_waiters();
    }

    /// Waits for this run's turn and a slot; None when it was cancelled (or the server
    /// stops) first.
    pub(super) async fn wait_turn(
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
