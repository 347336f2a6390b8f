//! One shared topic on this node: the epoch and last seq this node has delivered, and
//! the fan-out it delivers to. Only the listener delivers, one event at a time, so
//! this node's subscribers see every topic in seq order: an event that arrives after
//! a gap (a lost pub/sub message, a reconnect) waits until the gap is read from the
//! stream; a gap the stream no longer holds, or a new epoch (Redis lost its data),
//! closes the subscribers, who resume and are told what they missed (PROTOCOL.md 3).

use super::{listener::Request, Shared};
use crate::hub::event::{Draft, StoredEvent};
use crate::hub::log::{Deliver, LogError, LogFuture, LogTopic, Range};
use crate::hub::outbox::CloseReason;
use std::sync::{Arc, Mutex, MutexGuard};

/// The longest a subscribe or a history read waits for this node to catch up.
const SETTLE_AT_MOST: std::time::Duration = std::time::Duration::from_secs(2);

struct State {
    /// Empty until the listener has read where the topic stands.
    epoch: Arc<str>,
    delivered: u64,
    out: Option<Arc<dyn Deliver>>,
}

pub struct RedisTopic {
    pub(super) name: Arc<str>,
    /// Tells this topic from a later one of the same name (when it closes).
    pub(super) id: u64,
    shared: Arc<Shared>,
    state: Mutex<State>,
}

impl RedisTopic {
    pub(super) fn new(name: &str, id: u64, shared: Arc<Shared>) -> RedisTopic {
        RedisTopic { name: Arc::from(name), id, shared, state: Mutex::new(State { epoch: Arc::from(""), delivered: 0, out: None }) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands one event over, if it is the next one.
    fn deliver(&self, event: StoredEvent) {
        let mut st = self.lock();
        if event.seq != st.delivered + 1 {
            return;
        }
        st.delivered = event.seq;
        if let Some(out) = &st.out {
            out.deliver(&Arc::new(event));
        }
    }

    /// A new epoch: what this node's subscribers hold means nothing in it.
    fn start_over(&self, epoch: &str, delivered: u64) {
        let mut st = self.lock();
        let first = st.epoch.is_empty();
        st.epoch = Arc::from(epoch);
        st.delivered = delivered;
        if let Some(out) = &st.out {
            out.drop_subscribers(CloseReason::HistoryRestarted);
            out.start_after(delivered);
        }
        if !first {
            tracing::warn!(topic = %self.name, epoch, "the broker lost this topic's history: it starts a new epoch");
        }
    }

    /// Delivers (`from`, `to`] from the stream; false when the stream no longer holds it.
    async fn fill(&self, from: u64, to: u64) -> Result<bool, LogError> {
        let mut cursor = from;
        while cursor < to {
            let page = self.shared.range(&self.name, cursor, to, 1_000).await?;
            if !page.complete {
                return Ok(false);
            }
            for e in page.events {
                cursor = e.seq;
                self.deliver(Arc::try_unwrap(e).unwrap_or_else(|e| StoredEvent::stored(e.seq, e.frame.to_string())));
            }
        }
        Ok(true)
    }

    /// Events were missed and are gone: the subscribers cannot be served gapless.
    fn give_up(&self, upto: u64) {
        let mut st = self.lock();
        st.delivered = upto;
        if let Some(out) = &st.out {
            out.drop_subscribers(CloseReason::Unrepairable);
            out.start_after(upto);
        }
        tracing::warn!(topic = %self.name, upto, "events missed on this node are no longer in the broker: its subscribers resume");
    }

    /// An event from pub/sub.
    pub(super) async fn on_message(&self, seq: u64, epoch: &str, frame: String) {
        let (current, delivered) = {
            let st = self.lock();
            (st.epoch.clone(), st.delivered)
        };
        let delivered = if &*current != epoch {
            self.start_over(epoch, 0);
            0
        } else {
            delivered
        };
        if seq <= delivered {
            return;
        }
        if seq > delivered + 1 {
            match self.fill(delivered, seq - 1).await {
                Ok(true) => {}
                Ok(false) => self.give_up(seq - 1),
                Err(e) => {
                    tracing::warn!(topic = %self.name, error = %e, "cannot read a gap from the broker");
                    self.give_up(seq - 1);
                }
            }
        }
        self.deliver(StoredEvent::stored(seq, frame));
    }

    /// Catches up with where the topic stands in Redis: at open, and after the
    /// listener (re)subscribed.
    pub(super) async fn sync(&self) -> Result<(), LogError> {
        let (seq, epoch) = self.shared.position(&self.name).await?;
        let (current, delivered) = {
            let st = self.lock();
            (st.epoch.clone(), st.delivered)
        };
        if current.is_empty() {
            self.start_over(&epoch, seq);
        } else if *current != *epoch {
            self.start_over(&epoch, 0);
            if !self.fill(0, seq).await? {
                self.give_up(seq);
            }
        } else if seq > delivered && !self.fill(delivered, seq).await? {
            self.give_up(seq);
        }
        Ok(())
    }
}

impl LogTopic for RedisTopic {
    fn epoch(&self) -> Arc<str> {
        self.lock().epoch.clone()
    }

    fn last_seq(&self) -> u64 {
        self.lock().delivered
    }

    fn attach(&self, out: Arc<dyn Deliver>) {
        let mut st = self.lock();
        out.start_after(st.delivered);
        st.out = Some(out);
    }

    /// The event reaches this node's subscribers through pub/sub, as every node's do.
    fn append<'a>(&'a self, draft: Draft<'a>, _out: &'a dyn Deliver) -> LogFuture<'a, u64> {
        LogFuture::Pending(Box::pin(self.shared.publish(&self.name, draft)))
    }

    /// Another node's publish reaches this one a moment after its seq is taken: a
    /// client that got seq N there and resumes here must find N here too.
    fn settle(&self) -> LogFuture<'_, ()> {
        LogFuture::Pending(Box::pin(async move {
            let (seq, epoch) = self.shared.position(&self.name).await?;
            let deadline = tokio::time::Instant::now() + SETTLE_AT_MOST;
            loop {
                {
                    let st = self.lock();
                    if *st.epoch != *epoch || st.delivered >= seq {
                        return Ok(());
                    }
                }
                if tokio::time::Instant::now() >= deadline {
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }))
    }

    fn read(&self, since: u64, upto: u64, limit: usize) -> LogFuture<'_, Range> {
        LogFuture::Pending(Box::pin(self.shared.range(&self.name, since, upto, limit)))
    }

    /// Redis keeps everything: dropping the topic here loses nothing.
    fn is_idle(&self) -> bool {
        true
    }

    fn in_memory(&self, _since: u64) -> bool {
        false
    }
}

impl Drop for RedisTopic {
    fn drop(&mut self) {
        let _ = self.shared.requests.send(Request::Close { name: self.name.clone(), id: self.id });
    }
}
