//! Publishes a connection keeps in flight on shared topics (several nodes): each waits
//! for Redis, and one at a time would hold a producer to one publish per round trip.
//! Each is queued to the broker's batcher the moment it starts, in the order read, so
//! seqs follow that order; replies go out in that order too. Any other message waits
//! until none is in flight, so its effect still follows every publish before it.

use super::connection::{reply, reply_error};
use super::{ConnectionInfo, Hub};
use app::protocol::{ClientEnvelope, ClientMessage, ErrorMessage, ServerMessage};
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use std::sync::Arc;

/// Publishes in flight per connection, at most; the next waits for the oldest.
pub const MAX_IN_FLIGHT: usize = 256;

pub type Reply = Result<Option<ServerMessage>, ErrorMessage>;

#[derive(Default)]
pub struct InFlight {
    publishes: FuturesOrdered<BoxFuture<'static, Reply>>,
}

impl InFlight {
    pub fn is_empty(&self) -> bool {
        self.publishes.is_empty()
    }

    /// Starts a publish, first waiting for the oldest when `MAX_IN_FLIGHT` are out.
    pub async fn start(&mut self, hub: &Hub, conn: &Arc<ConnectionInfo>, env: ClientEnvelope) {
        if self.publishes.len() >= MAX_IN_FLIGHT {
            self.finish_one(hub, conn).await;
        }
        // opened here, in turn: a publish that found its topic still opening would
        // wait for it while later ones, finding it open, were queued first
        if let ClientMessage::Publish { topic, .. } = &env.msg {
            // an error is the publish's own to report, in its turn
            let _ = hub.topic(topic).await;
        }
        let (hub, conn) = (hub.clone(), conn.clone());
        let mut publish: BoxFuture<'static, Reply> = Box::pin(async move { super::dispatch::publish(&hub, &conn, &env).await });
        // polled once now: everything up to the broker's queue runs without waiting,
        // so this publish is queued before any later one
        let waker = futures::task::noop_waker();
        match publish.as_mut().poll(&mut std::task::Context::from_waker(&waker)) {
            std::task::Poll::Ready(done) => self.publishes.push_back(Box::pin(async move { done })),
            std::task::Poll::Pending => self.publishes.push_back(publish),
        }
    }

    /// The oldest publish's reply, once it is done (pending while none is in flight).
    pub async fn next(&mut self) -> Reply {
        match self.publishes.next().await {
            Some(reply) => reply,
            None => std::future::pending().await,
        }
    }

    async fn finish_one(&mut self, hub: &Hub, conn: &ConnectionInfo) {
        if let Some(done) = self.publishes.next().await {
            send(hub, conn, done);
        }
    }

    /// Waits for every publish in flight, replying to each in order.
    pub async fn drain(&mut self, hub: &Hub, conn: &ConnectionInfo) {
        while !self.publishes.is_empty() {
            self.finish_one(hub, conn).await;
        }
    }
}

pub fn send(hub: &Hub, conn: &ConnectionInfo, done: Reply) {
    match done {
        Ok(Some(ack)) => reply(conn, ack),
        Ok(None) => {}
        Err(err) => reply_error(hub, conn, err),
    }
}
