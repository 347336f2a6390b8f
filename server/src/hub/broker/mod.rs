//! The hub on Redis (`--broker`): the topics every node shares keep their epoch, seq
//! and history in Redis, and every event reaches every node through Redis pub/sub.
//! One Lua script per publish assigns the seq, appends to the topic's stream and
//! publishes (`scripts`); each node's `listener` hands what arrives to its own
//! subscribers in seq order, filling any gap from the stream (`topic`). Server-owned
//! topics stay each node's own (docs/deployment.md says why).

mod batcher;
mod listener;
mod message;
mod scripts;
mod topic;

use super::event::{frame_parts, Draft, StoredEvent};
use super::log::memory::{new_epoch, Retention};
use super::log::{LogError, LogFuture, LogTopic, Range, TopicLog};
use redis::aio::ConnectionManager;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
pub use topic::RedisTopic;

/// How long one Redis command may take before the caller is told to retry.
const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a silent topic's epoch and seq are kept (its history goes sooner, after
/// the history's age): once they go, its next event starts a new epoch.
const META_TTL_S: u64 = 7 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub url: String,
    pub prefix: String,
    /// Each topic's history: its stream's length and how long it outlives its last event.
    pub retention: Retention,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("--broker {url:?} is not a Redis URL ({reason}); expected redis://[user:password@]host[:port][/db] or rediss://…")]
    BadUrl { url: String, reason: String },
    #[error("cannot reach the broker (Redis) at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error(
        "the broker (Redis) at {addr} has maxmemory-policy {policy:?}: it may evict a topic's stream or seq under memory \
         pressure, and subscribers would miss events without knowing; set `maxmemory-policy noeviction` (docs/deployment.md)"
    )]
    Evicts { addr: String, policy: String },
}

/// The cluster's names in Redis, all under the prefix; `{topic}` is a hash tag, so a
/// topic's keys live on one Redis Cluster slot.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn meta(&self, topic: &str) -> String {
        format!("{}m:{{{topic}}}", self.prefix)
    }
    fn stream(&self, topic: &str) -> String {
        format!("{}s:{{{topic}}}", self.prefix)
    }
    fn channel(&self, topic: &str) -> String {
        format!("{}c:{topic}", self.prefix)
    }
    fn topic_of<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel.strip_prefix(&self.prefix)?.strip_prefix("c:")
    }
}

/// What the topics and the listener share.
struct Shared {
    keys: Keys,
    conn: ConnectionManager,
    publishes: mpsc::UnboundedSender<batcher::Publish>,
    position: redis::Script,
    requests: mpsc::UnboundedSender<listener::Request>,
    next_id: AtomicU64,
}

pub(super) fn unavailable(e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(e.to_string())
}

async fn timed<T>(f: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, LogError> {
    match tokio::time::timeout(OP_TIMEOUT, f).await {
        Ok(r) => r.map_err(unavailable),
        Err(_) => Err(unavailable(format!("no answer within {OP_TIMEOUT:?}"))),
    }
}

impl Shared {
    async fn publish(&self, topic: &str, draft: Draft<'_>) -> Result<u64, LogError> {
        if draft.redaction.is_some() {
            // only server-owned topics are redacted, and those are never the broker's
            return Err(LogError::Read("a redacted event cannot go through the broker".into()));
        }
        let (prefix, suffix) = frame_parts(topic, draft.event, draft.data, draft.ts);
        let (done, seq) = oneshot::channel();
        let publish = batcher::Publish {
            keys: [self.keys.meta(topic), self.keys.stream(topic)],
            channel: self.keys.channel(topic),
            prefix,
            suffix,
            epoch: new_epoch(),
            done,
        };
        self.publishes.send(publish).map_err(|_| LogError::Closed)?;
        seq.await.map_err(|_| LogError::Closed)?
    }

    /// The topic's epoch and last seq in Redis (an epoch is set if it has none).
    async fn position(&self, topic: &str) -> Result<(u64, String), LogError> {
        let mut conn = self.conn.clone();
        let mut call = self.position.prepare_invoke();
        call.key(self.keys.meta(topic)).key(self.keys.stream(topic)).arg(new_epoch()).arg(META_TTL_S);
        timed(call.invoke_async(&mut conn)).await
    }

    /// Up to `limit` events with seq in (`since`, `upto`], from the topic's stream.
    async fn range(&self, topic: &str, since: u64, upto: u64, limit: usize) -> Result<Range, LogError> {
        if since >= upto {
            return Ok(Range { events: Vec::new(), complete: true });
        }
        let count = limit.min((upto - since) as usize).max(1);
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(self.keys.stream(topic)).arg(format!("{}-0", since + 1)).arg(format!("{upto}-0")).arg("COUNT").arg(count);
        let entries: Vec<(String, Vec<String>)> = timed(cmd.query_async(&mut conn)).await?;
        let mut events = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            let seq = id.split('-').next().and_then(|s| s.parse::<u64>().ok());
            let frame = fields.into_iter().nth(1);
            match (seq, frame) {
                (Some(seq), Some(frame)) => events.push(Arc::new(StoredEvent::stored(seq, frame))),
                _ => return Err(LogError::Read(format!("unexpected stream entry {id:?} in {topic:?}"))),
            }
        }
        let complete = events.first().is_some_and(|e| e.seq == since + 1);
        Ok(Range { events, complete })
    }
}

/// The hub's handle to the broker: opens shared topics.
#[derive(Clone)]
pub struct Broker {
    shared: Arc<Shared>,
}

impl Broker {
    /// Connects, refuses a Redis that may evict keys, and starts this node's listener.
    pub async fn connect(config: BrokerConfig, shutdown: CancellationToken) -> Result<Broker, BrokerError> {
        let bad_url = |reason: String| BrokerError::BadUrl { url: crate::config::redacted(&config.url), reason };
        let client = redis::Client::open(config.url.as_str()).map_err(|e| bad_url(e.to_string()))?;
        let addr = client.get_connection_info().addr().to_string();
        let unreachable = |reason: String| BrokerError::Unreachable { addr: addr.clone(), reason };
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let connecting = tokio::time::timeout(OP_TIMEOUT * 2, client.get_connection_manager_with_config(manager));
        let mut conn = match connecting.await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable(format!("no connection within {:?}", OP_TIMEOUT * 2))),
        };
        let policy = eviction_policy(&mut conn).await.map_err(unreachable)?;
        if policy != "noeviction" {
            return Err(BrokerError::Evicts { addr, policy });
        }
        let (requests, received) = mpsc::unbounded_channel();
        let (publishes, queued) = mpsc::unbounded_channel();
        let limits = batcher::Limits {
            max_events: config.retention.max_events.max(1).to_string(),
            stream_ttl_s: config.retention.max_age.as_secs().max(1).to_string(),
            meta_ttl_s: META_TTL_S.to_string(),
        };
        tokio::spawn(batcher::run(conn.clone(), limits, queued));
        let shared = Arc::new(Shared {
            keys: Keys { prefix: config.prefix.clone() },
            conn,
            publishes,
            position: redis::Script::new(scripts::POSITION),
            requests,
            next_id: AtomicU64::new(1),
        });
        let listen = listener::Listener::new(client, shared.clone(), received, shutdown);
        tokio::spawn(listen.run());
        tracing::info!(%addr, prefix = %config.prefix, "hub on Redis: shared topics go through the broker");
        Ok(Broker { shared })
    }
}

impl TopicLog for Broker {
    fn open<'a>(&'a self, topic: &'a str) -> LogFuture<'a, Arc<dyn LogTopic>> {
        LogFuture::Pending(Box::pin(async move {
            let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
            let t = Arc::new(RedisTopic::new(topic, id, self.shared.clone()));
            let (done, answer) = oneshot::channel();
            let request = listener::Request::Open { topic: Arc::downgrade(&t), done };
            self.shared.requests.send(request).map_err(|_| LogError::Closed)?;
            answer.await.map_err(|_| LogError::Closed)??;
            Ok(t as Arc<dyn LogTopic>)
        }))
    }
}

/// Redis's `maxmemory-policy`, from CONFIG GET or, where CONFIG is renamed away (many
/// managed services), from INFO.
async fn eviction_policy(conn: &mut ConnectionManager) -> Result<String, String> {
    let config: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query_async(conn).await;
    if let Ok(pair) = config {
        if let Some(policy) = pair.get(1) {
            return Ok(policy.clone());
        }
    }
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await.map_err(|e| e.to_string())?;
    info.lines()
        .find_map(|l| l.strip_prefix("maxmemory_policy:"))
        .map(|p| p.trim().to_owned())
        .ok_or_else(|| "neither CONFIG GET nor INFO memory says its maxmemory-policy".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(crate::config::redacted("redis://u:secret@host:6379/0"), "redis://…@host:6379/0");
        assert_eq!(crate::config::redacted("redis://host:6379"), "redis://host:6379");
    }
}
