//! The fan-out: one topic's subscribers, fed by its log in seq order. Each event was
//! serialized once; every subscriber's outbox gets a clone of the same bytes (or of
//! the redacted bytes, for one that may not see what the event is about). Publishing
//! never waits on a subscriber: a full outbox closes that connection with 1013.
//!
//! A subscriber that resumes with `since` is first catching up: the events published
//! meanwhile wait in its own buffer while the hub replays the log's range, then go out
//! after it, so nothing is missed or sent twice. The fan-out knows nothing of where
//! the replayed events come from.

use super::event::StoredEvent;
use super::log::Deliver;
use super::outbox::{CloseReason, Outbound, Outbox, PushError};
use crate::auth::Principal;
use axum::extract::ws::Utf8Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

enum Mode {
    Live,
    /// Events delivered while its replay is read; `overflowed` once more came than its
    /// outbox could ever hold (they are then read from the log instead).
    CatchingUp { buffer: Vec<Arc<StoredEvent>>, overflowed: bool },
}

struct Subscriber {
    conn_id: u64,
    outbox: Outbox,
    viewer: Principal,
    mode: Mode,
}

struct State {
    /// The last seq handed to the fan-out.
    delivered: u64,
    subscribers: Vec<Subscriber>,
}

pub struct FanoutTopic {
    state: Mutex<State>,
    /// Most events a catching-up subscriber buffers (its outbox's capacity).
    buffer_limit: usize,
    /// Subscribers closed with 1013 because their outbox overflowed, for the counters.
    overflowed: AtomicUsize,
}

/// Where a new subscription starts.
pub enum Start {
    /// Live from the next event on: `subscribed` (built from the seq it starts after)
    /// is queued before anything else.
    Live,
    /// Catching up: live events are buffered until `finish_catch_up`.
    CatchUp,
}

impl FanoutTopic {
    pub fn new(delivered: u64, buffer_limit: usize) -> FanoutTopic {
        FanoutTopic { state: Mutex::new(State { delivered, subscribers: Vec::new() }), buffer_limit, overflowed: AtomicUsize::new(0) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a subscriber (replacing an earlier subscription of the same connection);
    /// returns the seq it starts after. With `Start::Live`, `first` (made from that seq)
    /// is queued to it at once, in the same critical section as its registration.
    pub fn add(
        &self,
        conn_id: u64,
        outbox: &Outbox,
        viewer: &Principal,
        start: Start,
        first: impl FnOnce(u64) -> Vec<Utf8Bytes>,
    ) -> Result<u64, PushError> {
        let mut state = self.lock();
        state.subscribers.retain(|s| s.conn_id != conn_id);
        let delivered = state.delivered;
        let mode = match start {
            Start::Live => {
                outbox.push(Outbound::Batch(first(delivered).into_boxed_slice()))?;
                Mode::Live
            }
            Start::CatchUp => Mode::CatchingUp { buffer: Vec::new(), overflowed: false },
        };
        state.subscribers.push(Subscriber { conn_id, outbox: outbox.clone(), viewer: viewer.clone(), mode });
        Ok(delivered)
    }

    /// Ends a catch-up that has replayed everything up to `replayed`: queues `frames`
    /// and then the buffered events after `replayed`, and goes live. If the buffer
    /// overflowed, it says up to where the log must be read first (`Err(seq)`), and the
    /// subscriber keeps buffering from there.
    pub fn finish_catch_up(&self, conn_id: u64, replayed: u64, frames: Vec<Utf8Bytes>) -> Result<Result<(), u64>, PushError> {
        let mut state = self.lock();
        let delivered = state.delivered;
        let Some(sub) = state.subscribers.iter_mut().find(|s| s.conn_id == conn_id) else { return Err(PushError::Closed) };
        let Mode::CatchingUp { buffer, overflowed } = &mut sub.mode else { return Ok(Ok(())) };
        if *overflowed {
            if !frames.is_empty() {
                sub.outbox.push(Outbound::Batch(frames.into_boxed_slice()))?;
            }
            buffer.clear();
            *overflowed = false;
            return Ok(Err(delivered));
        }
        let mut batch = frames;
        batch.extend(buffer.drain(..).filter(|e| e.seq > replayed).map(|e| e.pick(&sub.viewer).clone()));
        if !batch.is_empty() {
            sub.outbox.push(Outbound::Batch(batch.into_boxed_slice()))?;
        }
        sub.mode = Mode::Live;
        Ok(Ok(()))
    }

    /// Whether the connection is still subscribed (a catch-up stops when it is not).
    pub fn has(&self, conn_id: u64) -> bool {
        self.lock().subscribers.iter().any(|s| s.conn_id == conn_id)
    }

    /// Returns whether the connection was subscribed.
    pub fn remove(&self, conn_id: u64) -> bool {
        let mut state = self.lock();
        let before = state.subscribers.len();
        state.subscribers.retain(|s| s.conn_id != conn_id);
        before != state.subscribers.len()
    }

    pub fn subscriber_count(&self) -> usize {
        self.lock().subscribers.len()
    }

    /// Subscribers closed as slow consumers since the last call.
    pub fn take_overflowed(&self) -> usize {
        self.overflowed.swap(0, Ordering::Relaxed)
    }
}

impl Deliver for FanoutTopic {
    fn start_after(&self, seq: u64) {
        self.lock().delivered = seq;
    }

    fn drop_subscribers(&self, reason: CloseReason) {
        let dropped = std::mem::take(&mut self.lock().subscribers);
        // only the connections this closed: one already closing was counted (or not) by
        // whatever closed it
        let closed = dropped.iter().filter(|s| s.outbox.close(reason)).count();
        if reason.code() == 1013 {
            self.overflowed.fetch_add(closed, Ordering::Relaxed);
        }
    }

    fn deliver(&self, event: &Arc<StoredEvent>) {
        let now = Instant::now();
        let limit = self.buffer_limit;
        let mut overflowed = 0;
        let mut state = self.lock();
        state.delivered = event.seq;
        state.subscribers.retain_mut(|s| match &mut s.mode {
            Mode::Live => match s.outbox.push(Outbound::Event { frame: event.pick(&s.viewer).clone(), published_at: now }) {
                Ok(()) => true,
                Err(PushError::Overflow) => {
                    overflowed += 1;
                    false
                }
                Err(PushError::Closed) => false,
            },
            Mode::CatchingUp { buffer, overflowed: full } => {
                if *full || buffer.len() >= limit {
                    *full = true;
                    buffer.clear();
                } else {
                    buffer.push(event.clone());
                }
                !s.outbox.is_closing()
            }
        });
        drop(state);
        if overflowed > 0 {
            self.overflowed.fetch_add(overflowed, Ordering::Relaxed);
        }
    }
}
