//! The topic log: the half of the hub that assigns each event its seq in its topic's
//! epoch, keeps it, reads ranges back, and hands every appended event, in seq order,
//! to the fan-out (`Deliver`). The fan-out never learns where events are kept.
//!
//! Implementations: `memory` (non-durable topics: a history bounded by count, age and
//! the hub's byte budget) and `durable` (`workflow:*` topics: every event stored in the
//! database, a recent window in memory, older reads from the database). Methods return
//! a `LogFuture`, ready at once for a local log and pending for one that must wait (a
//! full writer queue, a database read; a remote log later).

pub mod durable;
pub mod memory;

use super::event::{Draft, StoredEvent};
use futures::future::BoxFuture;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Where appended events go, in seq order per topic: the fan-out.
pub trait Deliver: Send + Sync {
    fn deliver(&self, event: &Arc<StoredEvent>);

    /// Where delivery starts: the next event handed over has seq `seq + 1` (at open,
    /// and when a shared log's topic starts over).
    fn start_after(&self, seq: u64);

    /// Closes every subscriber's connection with `reason`: the log cannot keep the
    /// promise of a gapless stream to them (PROTOCOL.md section 3).
    fn drop_subscribers(&self, reason: crate::hub::outbox::CloseReason);
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    #[error("the event store cannot be read: {0}")]
    Read(String),
    #[error("the server is shutting down")]
    Closed,
    /// A shared log's service (the broker) cannot be reached now: retry later.
    #[error("the broker cannot be reached now: {0}")]
    Unavailable(String),
}

/// Events of a range, oldest first.
#[derive(Debug, Default)]
pub struct Range {
    pub events: Vec<Arc<StoredEvent>>,
    /// Whether the log still held the first event asked for (or none was asked for): a
    /// range that is not complete cannot be replayed without a gap.
    pub complete: bool,
}

/// A log's answer: at once, or later.
pub enum LogFuture<'a, T> {
    Ready(Option<Result<T, LogError>>),
    Pending(BoxFuture<'a, Result<T, LogError>>),
}

impl<T> LogFuture<'_, T> {
    pub fn ready(value: Result<T, LogError>) -> Self {
        LogFuture::Ready(Some(value))
    }

    /// The answer, when it is there without waiting.
    pub fn now(self) -> Result<Result<T, LogError>, Self> {
        match self {
            LogFuture::Ready(Some(v)) => Ok(v),
            other => Err(other),
        }
    }
}

// neither variant is self-referential: the value is moved out, the future is boxed
impl<T> Unpin for LogFuture<'_, T> {}

impl<T> Future for LogFuture<'_, T> {
    type Output = Result<T, LogError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            LogFuture::Ready(v) => Poll::Ready(v.take().unwrap_or(Err(LogError::Closed))),
            LogFuture::Pending(f) => f.as_mut().poll(cx),
        }
    }
}

/// One topic's log.
pub trait LogTopic: Send + Sync {
    /// The epoch its seqs belong to.
    fn epoch(&self) -> Arc<str>;

    /// The last seq assigned.
    fn last_seq(&self) -> u64;

    /// Assigns the next seq, keeps the event and hands it to `out`, in seq order with
    /// every other append to this topic. Never holds a lock across an await.
    fn append<'a>(&'a self, draft: Draft<'a>, out: &'a dyn Deliver) -> LogFuture<'a, u64>;

    /// Connects the fan-out, once, before anything is published through the topic. A
    /// local log hands events over from `append`; a shared one (Redis) keeps `out` and
    /// hands over what every node published, as it arrives.
    fn attach(&self, out: Arc<dyn Deliver>) {
        out.start_after(self.last_seq());
    }

    /// Waits (briefly) until `last_seq` has caught up with everything published before
    /// this call, on any node: a shared log delivers what other nodes publish a moment
    /// later. Local logs are always caught up.
    fn settle(&self) -> LogFuture<'_, ()> {
        LogFuture::ready(Ok(()))
    }

    /// Another node stored this topic's events up to `upto` (a run it owns, watched
    /// here): hands what this node has not delivered yet to `out`, in seq order. Only
    /// a log kept in a shared database can; the others have nothing to do.
    fn follow<'a>(&'a self, _upto: u64, _out: &'a dyn Deliver) -> LogFuture<'a, ()> {
        LogFuture::ready(Ok(()))
    }

    /// The epoch and last seq the shared database holds for this topic, for a log kept
    /// there (None for the others): what `follow` catches up to after a missed notice.
    fn stored_position(&self) -> LogFuture<'_, Option<(String, u64)>> {
        LogFuture::ready(Ok(None))
    }

    /// Up to `limit` events with seq in (`since`, `upto`], oldest first.
    fn read(&self, since: u64, upto: u64, limit: usize) -> LogFuture<'_, Range>;

    /// Whether the log holds nothing that memory alone keeps: the hub may drop it, and
    /// opening the topic again finds everything it should.
    fn is_idle(&self) -> bool;

    /// Whether a read of (`since`, ..] is answered from memory (no waiting).
    fn in_memory(&self, since: u64) -> bool;

    /// For the hub's memory budget (non-durable logs only): when the oldest kept event
    /// was published, and dropping it.
    fn oldest(&self) -> Option<Instant> {
        None
    }

    fn evict_oldest(&self) -> bool {
        false
    }

    fn is_budgeted(&self) -> bool {
        false
    }
}

/// A family of topic logs: it opens one topic's.
pub trait TopicLog: Send + Sync {
    fn open<'a>(&'a self, topic: &'a str) -> LogFuture<'a, Arc<dyn LogTopic>>;
}
