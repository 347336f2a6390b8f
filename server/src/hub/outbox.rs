//! A connection's bounded outbound queue, and how a connection is asked to close.
//! Publishing never waits on a subscriber: `push` either queues at once or, when the
//! queue is full, closes that connection with 1013. A gap is never silent.

use axum::extract::ws::Utf8Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::sync::Notify;

/// One item of the queue; an event keeps its publish instant for the latency histogram.
#[derive(Debug)]
pub enum Outbound {
    Frame(Utf8Bytes),
    Event { frame: Utf8Bytes, published_at: Instant },
    /// Frames that must go out back to back (a `subscribed` and its replay), in one slot
    /// so a replay of a thousand events cannot overflow a queue sized for live traffic.
    Batch(Box<[Utf8Bytes]>),
    /// A WebSocket Ping (the hub's heartbeat).
    Ping,
}

/// Why the server closes a connection, and with which close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed or vanished: nothing more to send.
    ClientGone,
    Normal,
    GoingAway,
    HeartbeatTimeout,
    Policy(&'static str),
    TooBig,
    Internal,
    SlowConsumer,
    /// A shared topic's history started over (its broker lost its data): 1012, so the
    /// client resumes and learns `recovered: false`.
    HistoryRestarted,
    /// A shared topic's events were missed and are no longer kept: the slow-consumer
    /// rule (1013), since nothing gapless can follow.
    Unrepairable,
}

impl CloseReason {
    pub fn code(self) -> u16 {
        match self {
            CloseReason::ClientGone | CloseReason::Normal => 1000,
            CloseReason::GoingAway | CloseReason::HeartbeatTimeout => 1001,
            CloseReason::Policy(_) => 1008,
            CloseReason::TooBig => 1009,
            CloseReason::Internal => 1011,
            CloseReason::HistoryRestarted => 1012,
            CloseReason::SlowConsumer | CloseReason::Unrepairable => 1013,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            CloseReason::ClientGone => "client gone",
            CloseReason::Normal => "bye",
            CloseReason::GoingAway => "server shutting down",
            CloseReason::HeartbeatTimeout => "heartbeat timeout",
            CloseReason::Policy(why) => why,
            CloseReason::TooBig => "message too big",
            CloseReason::Internal => "internal error",
            CloseReason::SlowConsumer => "slow consumer: outbound queue overflowed",
            CloseReason::HistoryRestarted => "the topic's history started over: resume for the new epoch",
            CloseReason::Unrepairable => "events missed and no longer kept: resume to reload",
        }
    }
}

/// The queue itself: a deque that grows only when used (tokio's bounded mpsc
/// allocates a block of slots per channel up front, ~2 KiB per idle connection), a
/// capacity checked on push, a `Notify` to wake the writer; and the close signal, in
/// the same allocation (an idle connection's memory is mostly its few allocations).
struct Queue {
    items: Mutex<VecDeque<Outbound>>,
    capacity: usize,
    ready: Notify,
    /// Woken when the writer takes items (a replay waits on it for room).
    drained: Notify,
    receiver_gone: AtomicBool,
    /// Set once, with the first reason given (`ready` and `drained` wake its waiters).
    closed: AtomicBool,
    reason: OnceLock<CloseReason>,
}

/// The sending side of a connection, cloned into every topic it subscribes to.
#[derive(Clone)]
pub struct Outbox {
    queue: Arc<Queue>,
}

/// The writer's side of the queue.
pub struct OutboxReceiver {
    queue: Arc<Queue>,
}

/// Result of a push that did not queue.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// The queue was full: the connection is now closing with 1013. Said once per
    /// connection (the push that closed it), however many topics feed it.
    Overflow,
    /// The connection is already gone.
    Closed,
}

impl Outbox {
    /// A queue of `capacity` items (the hub closes it on server shutdown).
    pub fn new(capacity: usize) -> (Outbox, OutboxReceiver) {
        let queue = Arc::new(Queue {
            items: Mutex::new(VecDeque::new()),
            capacity,
            ready: Notify::new(),
            drained: Notify::new(),
            receiver_gone: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            reason: OnceLock::new(),
        });
        (Outbox { queue: queue.clone() }, OutboxReceiver { queue })
    }

    /// Queues at once or fails at once: never waits on the connection.
    pub fn push(&self, item: Outbound) -> Result<(), PushError> {
        if self.queue.receiver_gone.load(Ordering::Relaxed) {
            return Err(PushError::Closed);
        }
        {
            let mut items = self.queue.items.lock().unwrap_or_else(|p| p.into_inner());
            if items.len() >= self.queue.capacity {
                drop(items);
                // later pushes (its other topics) find it closed: counted once
                return Err(if self.shut(CloseReason::SlowConsumer) { PushError::Overflow } else { PushError::Closed });
            }
            items.push_back(item);
        }
        self.queue.ready.notify_one();
        Ok(())
    }

    pub fn push_frame(&self, text: String) -> Result<(), PushError> {
        self.push(Outbound::Frame(Utf8Bytes::from(text)))
    }

    /// Asks the connection to close; the first reason given wins. Whether this call's
    /// reason is the one the connection closes with.
    pub fn close(&self, reason: CloseReason) -> bool {
        self.shut(reason)
    }

    /// Closes; whether this call was the one that did (its reason is the one kept, so a
    /// caller that counts closes counts the close the client is told of).
    fn shut(&self, reason: CloseReason) -> bool {
        let first = self.queue.reason.set(reason).is_ok();
        if !self.queue.closed.swap(true, Ordering::AcqRel) {
            // the connection's task waits on `ready` (recv_many); `closed()` and a
            // replay's wait for room, on `drained`
            self.queue.ready.notify_one();
            self.queue.drained.notify_waiters();
        }
        first
    }

    /// The reason to close with, once it is closing (shutdown when none was given).
    pub fn close_reason(&self) -> CloseReason {
        self.queue.reason.get().copied().unwrap_or(CloseReason::GoingAway)
    }

    /// Resolves once the connection is asked to close.
    pub async fn closed(&self) {
        loop {
            // registered before the check, so a close in between is not missed (a drain
            // wakes it too: it looks again)
            let notified = self.queue.drained.notified();
            if self.is_closing() {
                return;
            }
            notified.await;
        }
    }

    pub fn is_closing(&self) -> bool {
        self.queue.closed.load(Ordering::Acquire)
    }


    /// Items waiting in the queue.
    pub fn len(&self) -> usize {
        self.queue.items.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until the queue is at most half full (or the connection is closing).
    pub async fn wait_room(&self) {
        loop {
            let drained = self.queue.drained.notified();
            if self.len() <= self.queue.capacity / 2 || self.is_closing() {
                return;
            }
            tokio::select! {
                _ = drained => {}
                _ = self.closed() => return,
            }
        }
    }
}

/// An emptied queue gives its memory back when it holds more than this many slots
/// (after a burst) or at most `SHRINK_SMALL` (a quiet connection's few slots, freed so
/// that ten thousand idle connections do not each keep them).
const SHRINK_ABOVE: usize = 256;
const SHRINK_SMALL: usize = 8;

impl OutboxReceiver {
    /// Moves up to `limit` items into `out`, waiting until there is at least one.
    /// Returns 0 (with nothing moved) once the connection is closing: its task waits on
    /// this one future for both, an idle connection holding a single waiter.
    pub async fn recv_many(&mut self, out: &mut Vec<Outbound>, limit: usize) -> usize {
        loop {
            let notified = self.queue.ready.notified();
            if self.queue.closed.load(Ordering::Acquire) {
                return 0;
            }
            let n = self.try_recv_many(out, limit);
            if n > 0 {
                return n;
            }
            notified.await;
        }
    }

    /// Moves up to `limit` items into `out` without waiting.
    pub fn try_recv_many(&self, out: &mut Vec<Outbound>, limit: usize) -> usize {
        let mut items = self.queue.items.lock().unwrap_or_else(|p| p.into_inner());
        let n = items.len().min(limit);
        out.extend(items.drain(..n));
        if items.is_empty() && (items.capacity() > SHRINK_ABOVE || items.capacity() <= SHRINK_SMALL) {
            items.shrink_to(0);
        }
        drop(items);
        if n > 0 {
            self.queue.drained.notify_waiters();
        }
        n
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        self.queue.receiver_gone.store(true, Ordering::Relaxed);
        // closed, with a reason, however the connection's task ended: nothing waits on it
        // for ever, and no later close counts it as anything else
        Outbox { queue: self.queue.clone() }.shut(CloseReason::ClientGone);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_closes_with_1013_and_never_blocks() {
        let (outbox, rx) = Outbox::new(2);
        outbox.push_frame("a".into()).unwrap();
        outbox.push_frame("b".into()).unwrap();
        assert_eq!(outbox.len(), 2);
        assert_eq!(outbox.push_frame("c".into()), Err(PushError::Overflow));
        assert_eq!(outbox.push_frame("d".into()), Err(PushError::Closed), "an overflow is said once");
        assert!(outbox.is_closing());
        assert_eq!(outbox.close_reason().code(), 1013);
        assert!(!outbox.close(CloseReason::Normal), "a later close is not the one that closed it");
        assert_eq!(outbox.close_reason(), CloseReason::SlowConsumer, "first reason wins");
        let mut got = Vec::new();
        assert_eq!(rx.try_recv_many(&mut got, 10), 2);
        assert!(outbox.is_empty());
    }

    #[tokio::test]
    async fn the_writer_wakes_for_a_push() {
        let (outbox, mut rx) = Outbox::new(8);
        let writer = tokio::spawn(async move {
            let mut got = Vec::new();
            rx.recv_many(&mut got, 8).await
        });
        tokio::task::yield_now().await;
        outbox.push_frame("a".into()).unwrap();
        assert_eq!(writer.await.unwrap(), 1);
    }

    #[test]
    fn going_away_is_kept_and_later_closes_do_not_count() {
        let (outbox, rx) = Outbox::new(2);
        let waiter = outbox.clone();
        let closed = std::thread::spawn(move || futures::executor::block_on(waiter.closed()));
        assert!(outbox.close(CloseReason::GoingAway));
        closed.join().unwrap();
        // a closing one that then fills is not a slow consumer too: counted never
        let _ = (outbox.push_frame("a".into()), outbox.push_frame("b".into()));
        assert_eq!(outbox.push_frame("c".into()), Err(PushError::Closed));
        assert!(outbox.is_closing());
        assert_eq!(outbox.close_reason().code(), 1001);
        drop(rx);
        assert_eq!(outbox.push_frame("x".into()), Err(PushError::Closed));
    }
}
