//! A subscription that resumes with `since` catches up before it goes live: the
//! fan-out buffers what is published meanwhile, the log's range (`since`, `upto`] is
//! read (from memory at once, or from the database a page at a time, each page sent
//! only when the outbox has room), and the buffered events follow the replay. When
//! the buffer overflows (a long replay while much is published), the rest is read from
//! the log too. A range the log no longer holds whole answers `recovered: false`, as
//! PROTOCOL.md section 3 says, and the subscription is live from `upto` on.

use super::outbox::PushError;
use super::{ConnectionInfo, Hub, TopicHandle};
use app::protocol::{ErrorCode, ErrorMessage, ServerMessage};
use axum::extract::ws::Utf8Bytes;
use std::sync::Arc;

/// Events read from the database at a time.
const PAGE: usize = 500;

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
                        self.conn.outbox.close(super::outbox::CloseReason::SlowConsumer);
                        return Err(Failed::Overflow);
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
