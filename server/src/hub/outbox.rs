//! A connection's bounded outbound queue, and how a connection is asked to close.
//! Publishing never waits on a subscriber: `push` either queues at once or, when the
//! queue is full, closes that connection with 1013. A gap is never silent.

use axum::extract::ws::Utf8Bytes;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One item of the queue; an event keeps its publish instant for the latency histogram.
#[derive(Debug)]
pub enum Outbound {
    Frame(Utf8Bytes),
    Event { frame: Utf8Bytes, published_at: Instant },
    /// Frames that must go out back to back (a `subscribed` and its replay), in one slot
    /// so a replay of a thousand events cannot overflow a queue sized for live traffic.
    Batch(Vec<Utf8Bytes>),
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
}

impl CloseReason {
    pub fn code(self) -> u16 {
        match self {
            CloseReason::ClientGone | CloseReason::Normal => 1000,
            CloseReason::GoingAway | CloseReason::HeartbeatTimeout => 1001,
            CloseReason::Policy(_) => 1008,
            CloseReason::TooBig => 1009,
            CloseReason::Internal => 1011,
            CloseReason::SlowConsumer => 1013,
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
        }
    }
}

struct Closer {
    token: CancellationToken,
    reason: OnceLock<CloseReason>,
}

/// The sending side of a connection, cloned into every topic it subscribes to.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Outbound>,
    closer: Arc<Closer>,
}

/// Result of a push that did not queue.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// The queue was full: the connection is now closing with 1013.
    Overflow,
    /// The connection is already gone.
    Closed,
}

impl Outbox {
    /// A queue of `capacity` items; `parent` cancels it on server shutdown.
    pub fn new(capacity: usize, parent: &CancellationToken) -> (Outbox, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(capacity);
        let closer = Arc::new(Closer { token: parent.child_token(), reason: OnceLock::new() });
        (Outbox { tx, closer }, rx)
    }

    pub fn push(&self, item: Outbound) -> Result<(), PushError> {
        match self.tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(CloseReason::SlowConsumer);
                Err(PushError::Overflow)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(PushError::Closed),
        }
    }

    pub fn push_frame(&self, text: String) -> Result<(), PushError> {
        self.push(Outbound::Frame(Utf8Bytes::from(text)))
    }

    /// Asks the connection to close; the first reason given wins.
    pub fn close(&self, reason: CloseReason) {
        let _ = self.closer.reason.set(reason);
        self.closer.token.cancel();
    }

    /// The reason to close with, once `closed()` fired (shutdown when none was given).
    pub fn close_reason(&self) -> CloseReason {
        self.closer.reason.get().copied().unwrap_or(CloseReason::GoingAway)
    }

    pub fn closing(&self) -> &CancellationToken {
        &self.closer.token
    }

    pub fn is_closing(&self) -> bool {
        self.closer.token.is_cancelled()
    }

    /// Items waiting in the queue.
    pub fn len(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    pub fn same_connection(&self, other: &Outbox) -> bool {
        Arc::ptr_eq(&self.closer, &other.closer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_closes_with_1013_and_never_blocks() {
        let root = CancellationToken::new();
        let (outbox, _rx) = Outbox::new(2, &root);
        outbox.push_frame("a".into()).unwrap();
        outbox.push_frame("b".into()).unwrap();
        assert_eq!(outbox.len(), 2);
        assert_eq!(outbox.push_frame("c".into()), Err(PushError::Overflow));
        assert!(outbox.is_closing());
        assert_eq!(outbox.close_reason().code(), 1013);
        outbox.close(CloseReason::Normal);
        assert_eq!(outbox.close_reason(), CloseReason::SlowConsumer, "first reason wins");
    }

    #[test]
    fn shutdown_reads_as_going_away() {
        let root = CancellationToken::new();
        let (outbox, rx) = Outbox::new(2, &root);
        root.cancel();
        assert!(outbox.is_closing());
        assert_eq!(outbox.close_reason().code(), 1001);
        drop(rx);
        assert_eq!(outbox.push_frame("x".into()), Err(PushError::Closed));
    }
}
