//! This node's pub/sub connection to the broker: one task that subscribes to the
//! channel of every shared topic open here and hands each event to its topic in
//! arrival order. When the connection drops (Redis restarted, `CLIENT KILL`, a cut
//! network) it reconnects with backoff, subscribes again and brings every topic up to
//! date from its stream before reading on, so nothing is skipped.

use super::{RedisTopic, Shared};
use crate::hub::log::LogError;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);
/// A pub/sub connection that stops answering Pings is taken for dead.
const PING_EVERY: Duration = Duration::from_secs(5);

pub enum Request {
    /// Subscribe to the topic's channel, then read where it stands.
    Open { topic: Weak<RedisTopic>, done: oneshot::Sender<Result<(), LogError>> },
    /// The topic was let go here: unsubscribe, unless a newer one took its name.
    Close { name: Arc<str>, id: u64 },
}

pub struct Listener {
    client: redis::Client,
    shared: Arc<Shared>,
    requests: mpsc::UnboundedReceiver<Request>,
    shutdown: CancellationToken,
    topics: HashMap<Arc<str>, Weak<RedisTopic>>,
}

/// How a connected stretch ended.
enum End {
    Shutdown,
    Lost(String),
}

impl Listener {
    pub fn new(client: redis::Client, shared: Arc<Shared>, requests: mpsc::UnboundedReceiver<Request>, shutdown: CancellationToken) -> Listener {
        Listener { client, shared, requests, shutdown, topics: HashMap::new() }
    }

    pub async fn run(mut self) {
        let mut retry = FIRST_RETRY;
        let mut outage: Option<String> = None;
        loop {
            let connecting = tokio::time::timeout(super::OP_TIMEOUT, self.client.get_async_pubsub());
            let pubsub = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                r = connecting => match r {
                    Ok(Ok(p)) => Ok(p),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no connection in time".to_owned()),
                },
            };
            let pubsub = match pubsub {
                Ok(p) => p,
                Err(why) => {
                    if outage.is_none() {
                        tracing::warn!(reason = %why, "cannot reach the broker's pub/sub; retrying");
                        outage = Some(why);
                    }
                    if !self.wait_refusing(retry).await {
                        return;
                    }
                    retry = (retry * 2).min(LAST_RETRY);
                    continue;
                }
            };
            let (mut sink, stream) = pubsub.split();
            match self.resubscribe(&mut sink).await {
                Ok(repaired) => {
                    if outage.take().is_some() {
                        tracing::info!(topics = repaired, "broker pub/sub back: topics subscribed again and brought up to date");
                    }
                    retry = FIRST_RETRY;
                }
                Err(why) => {
                    outage.get_or_insert(why);
                    if !self.wait_refusing(retry).await {
                        return;
                    }
                    retry = (retry * 2).min(LAST_RETRY);
                    continue;
                }
            }
            match self.serve(sink, stream).await {
                End::Shutdown => return,
                End::Lost(why) => {
                    tracing::warn!(reason = %why, "lost the broker's pub/sub connection; reconnecting");
                    outage = Some(why);
                }
            }
        }
    }

    /// While the broker is away: opens are refused (the caller's client retries),
    /// closes are noted. False at shutdown.
    async fn wait_refusing(&mut self, pause: Duration) -> bool {
        let until = tokio::time::sleep(pause);
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return false,
                _ = &mut until => return true,
                request = self.requests.recv() => match request {
                    None => return false,
                    Some(Request::Open { done, .. }) => {
                        let _ = done.send(Err(LogError::Unavailable("no connection to the broker".into())));
                    }
                    Some(Request::Close { name, id }) => {
                        self.forget(&name, id);
                    }
                },
            }
        }
    }

    fn forget(&mut self, name: &str, id: u64) -> bool {
        let stale = self.topics.get(name).is_some_and(|w| w.upgrade().is_none_or(|t| t.id == id));
        if stale {
            self.topics.remove(name);
        }
        stale
    }

    /// Subscribes to every open topic's channel, then brings each up to date.
    async fn resubscribe(&mut self, sink: &mut redis::aio::PubSubSink) -> Result<usize, String> {
        self.topics.retain(|_, t| t.strong_count() > 0);
        let channels: Vec<String> = self.topics.keys().map(|t| self.shared.keys.channel(t)).collect();
        if !channels.is_empty() {
            sink.subscribe(&channels).await.map_err(|e| e.to_string())?;
        }
        let open: Vec<Arc<RedisTopic>> = self.topics.values().filter_map(Weak::upgrade).collect();
        for t in &open {
            t.sync().await.map_err(|e| e.to_string())?;
        }
        Ok(open.len())
    }

    async fn serve(&mut self, mut sink: redis::aio::PubSubSink, mut stream: redis::aio::PubSubStream) -> End {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return End::Shutdown,
                message = stream.next() => match message {
                    None => return End::Lost("the connection closed".into()),
                    Some(m) => self.on_message(m).await,
                },
                request = self.requests.recv() => match request {
                    None => return End::Shutdown,
                    Some(Request::Open { topic, done }) => {
                        let opened = self.open(&mut sink, topic).await;
                        let lost = matches!(opened, Err(LogError::Unavailable(_)));
                        let _ = done.send(opened);
                        if lost {
                            return End::Lost("a subscribe failed".into());
                        }
                    }
                    Some(Request::Close { name, id }) => {
                        if self.forget(&name, id) && sink.unsubscribe(self.shared.keys.channel(&name)).await.is_err() {
                            return End::Lost("an unsubscribe failed".into());
                        }
                    }
                },
                _ = ping.tick() => {
                    let pong = tokio::time::timeout(super::OP_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        return End::Lost("no answer to a Ping".into());
                    }
                }
            }
        }
    }

    async fn open(&mut self, sink: &mut redis::aio::PubSubSink, topic: Weak<RedisTopic>) -> Result<(), LogError> {
        let Some(t) = topic.upgrade() else { return Err(LogError::Closed) };
        let channel = self.shared.keys.channel(&t.name);
        match tokio::time::timeout(super::OP_TIMEOUT, sink.subscribe(&channel)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(LogError::Unavailable(e.to_string())),
            Err(_) => return Err(LogError::Unavailable("no answer to SUBSCRIBE in time".into())),
        }
        self.topics.insert(t.name.clone(), topic);
        t.sync().await
    }

    async fn on_message(&mut self, message: redis::Msg) {
        let channel = message.get_channel_name();
        let Some(name) = self.shared.keys.topic_of(channel) else { return };
        let Some(topic) = self.topics.get(name).and_then(Weak::upgrade) else { return };
        let payload = match std::str::from_utf8(message.get_payload_bytes()) {
            Ok(p) => p,
            Err(_) => {
                tracing::warn!(topic = name, "a broker message that is not UTF-8: ignored");
                return;
            }
        };
        let Some(published) = super::message::parse(payload) else {
            // (a node of another version): read what it carried from the stream now,
            // rather than when the next message shows the gap
            tracing::warn!(topic = name, "a broker message this node cannot read: catching up from the stream");
            if let Err(e) = topic.sync().await {
                tracing::warn!(topic = name, error = %e, "cannot catch up from the broker");
            }
            return;
        };
        for (seq, frame) in (published.first..).zip(published.frames) {
            topic.on_message(seq, published.epoch, frame.to_owned()).await;
        }
    }
}
