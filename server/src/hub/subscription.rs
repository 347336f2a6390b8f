//! Subscriptions. Without `since` (or with another epoch) a subscriber is live at once,
//! its `subscribed` queued in the same critical section as its registration. One that
//! resumes with `since` catches up before it goes live: the
//! fan-out buffers what is published meanwhile, the log's range (`since`, `upto`] is
//! read (from memory at once, or from the database a page at a time, each page sent
//! only when the outbox has room), and the buffered events follow the replay. When
//! the buffer overflows (a long replay while much is published), the rest is read from
//! the log too. A range the log no longer holds whole answers `recovered: false`, as
//! PROTOCOL.md section 3 says, and the subscription is live from `upto` on.

use super::fanout::Start;
use super::outbox::PushError;
use super::{check_topic, registry, ConnectionInfo, Hub, HubError, TopicHandle};
use app::protocol::{ErrorCode, ErrorMessage, MessageId, ServerMessage, Subscribed};
use axum::extract::ws::Utf8Bytes;
use std::sync::Arc;

/// Events read from the database at a time.
const PAGE: usize = 500;

impl Hub {
    /// Subscribes a connection, enforcing its subscription limit. Without `since`, or
    /// when the replay can be read from memory, everything (`subscribed`, the replay) is
    /// queued before this returns; a replay from the database is read in the background.
    pub async fn subscribe(
        &self,
        conn: &Arc<ConnectionInfo>,
        topic: &str,
        since: Option<u64>,
        epoch: Option<&str>,
        id: Option<MessageId>,
    ) -> Result<(), HubError> {
        check_topic(topic)?;
        {
            let subs = registry::lock(&conn.subscriptions);
            let max = self.inner.config.max_subscriptions;
            if !subs.contains(topic) && subs.len() >= max {
                return Err(HubError::TooManySubscriptions(max));
            }
        }
        let t = self.topic(topic).await?;
        if since.is_some_and(|s| s > t.log.last_seq()) {
            // perhaps seen on another node, not yet delivered here (several nodes)
            t.log.settle().await?;
        }
        let log_epoch = t.log.epoch();
        let subscribed = |seq: u64, recovered: bool, id: Option<MessageId>| {
            let msg = ServerMessage::Subscribed(Subscribed { topic: topic.to_owned(), seq, epoch: log_epoch.to_string(), recovered, id });
            axum::extract::ws::Utf8Bytes::from(msg.to_json())
        };
        let overflow = |e: PushError| {
            // a connection already closing is not a slow consumer again
            if e == PushError::Overflow {
                self.inner.counters.slow_consumer_closes.inc();
            }
            HubError::Overflow
        };
        let recovered_live = match since {
            None => Some(true),
            // another epoch: the client's seqs mean nothing here; live from now on
            Some(_) if epoch.is_some_and(|e| e != &*log_epoch) => Some(false),
            Some(_) => None,
        };
        if let Some(recovered) = recovered_live {
            let id = id.clone();
            t.fanout
                .add(conn.id, &conn.outbox, &conn.principal, Start::Live, |seq| vec![subscribed(seq, recovered, id)])
                .map_err(overflow)?;
            registry::lock(&conn.subscriptions).insert(topic.to_owned());
            return Ok(());
        }
        let since = since.unwrap_or(0);
        let upto = t.fanout.add(conn.id, &conn.outbox, &conn.principal, Start::CatchUp, |_| Vec::new()).map_err(overflow)?;
        registry::lock(&conn.subscriptions).insert(topic.to_owned());
        let job = CatchUp {
            hub: self.clone(),
            topic: t.clone(),
            conn: conn.clone(),
            since,
            upto,
            recovered: subscribed(upto, true, id.clone()),
            not_recovered: subscribed(upto, false, id),
        };
        if t.log.in_memory(since) {
            job.run().await;
        } else {
            self.inner.tasks.spawn(job.run());
        }
        Ok(())
    }

    pub fn unsubscribe(&self, conn: &ConnectionInfo, topic: &str) {
        if let Some(t) = self.existing(topic) {
            t.fanout.remove(conn.id);
        }
        registry::lock(&conn.subscriptions).remove(topic);
    }
}

pub struct CatchUp {
    pub hub: Hub,
    pub topic: Arc<TopicHandle>,
    pub conn: Arc<ConnectionInfo>,
    pub since: u64,
    /// The last seq delivered before the subscriber was registered.
    pub upto: u64,
    /// `subscribed` with `recovered: true` and without.
    pub recovered: Utf8Bytes,
    pub not_recovered: Utf8Bytes,
}

impl CatchUp {
    pub async fn run(self) {
        match self.replay().await {
            Ok(()) => {}
            Err(Failed::Gone) => {}
            Err(Failed::Overflow) => {
                self.hub.counters().slow_consumer_closes.inc();
            }
            Err(Failed::Log(message)) => {
                // the subscription cannot be kept gapless: it ends, and the client is told
                self.hub.unsubscribe(&self.conn, &self.topic.name);
                let mut err = ErrorMessage::new(ErrorCode::Internal, format!("cannot replay {}: {message}", self.topic.name));
                err.retryable = true;
                let _ = self.conn.outbox.push_frame(ServerMessage::Error(err).to_json());
            }
        }
    }

    fn frames(&self, events: &[Arc<super::StoredEvent>]) -> Vec<Utf8Bytes> {
        events.iter().map(|e| e.pick(&self.conn.principal).clone()).collect()
    }

    async fn replay(&self) -> Result<(), Failed> {
        let log = &self.topic.log;
        let limit = if log.in_memory(self.since) { usize::MAX } else { PAGE };
        let (mut frames, mut cursor) = if self.since > self.upto {
            // beyond the topic's last seq: nothing of what the client saw is here
            (vec![self.not_recovered.clone()], self.upto)
        } else {
            let first = log.read(self.since, self.upto, limit).await.map_err(|e| Failed::Log(e.to_string()))?;
            if first.complete {
                let cursor = first.events.last().map_or(self.since, |e| e.seq);
                let mut frames = vec![self.recovered.clone()];
                frames.extend(self.frames(&first.events));
                (frames, cursor)
            } else {
                (vec![self.not_recovered.clone()], self.upto)
            }
        };
        let mut target = self.upto;
        loop {
            while cursor < target {
                self.send(std::mem::take(&mut frames)).await?;
                let page = log.read(cursor, target, PAGE).await.map_err(|e| Failed::Log(e.to_string()))?;
                match page.events.first() {
                    Some(e) if e.seq == cursor + 1 => {}
                    // the log let go of what this subscriber still needs: it cannot keep
                    // up, and the protocol's rule for that is 1013
                    _ => {
                        // counted only if this closed it (not if it was already closing)
                        let first = self.conn.outbox.close(super::outbox::CloseReason::SlowConsumer);
                        return Err(if first { Failed::Overflow } else { Failed::Gone });
                    }
                }
                cursor = page.events.last().map_or(cursor, |e| e.seq);
                frames = self.frames(&page.events);
            }
            match self.topic.fanout.finish_catch_up(self.conn.id, cursor, std::mem::take(&mut frames)) {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(delivered)) => target = delivered,
                Err(PushError::Closed) => return Err(Failed::Gone),
                Err(PushError::Overflow) => return Err(Failed::Overflow),
            }
        }
    }

    /// Queues frames once the outbox has room for them (a replay never overflows it).
    async fn send(&self, frames: Vec<Utf8Bytes>) -> Result<(), Failed> {
        if frames.is_empty() {
            return Ok(());
        }
        if !self.topic.fanout.has(self.conn.id) {
            return Err(Failed::Gone);
        }
        self.conn.outbox.wait_room().await;
        match self.conn.outbox.push(super::outbox::Outbound::Batch(frames.into_boxed_slice())) {
            Ok(()) => Ok(()),
            Err(PushError::Closed) => Err(Failed::Gone),
            Err(PushError::Overflow) => Err(Failed::Overflow),
        }
    }
}

enum Failed {
    Gone,
    Overflow,
    Log(String),
}
