//! The hub, in two halves (docs/architecture.md): the topic log (`log`: seq, epoch,
//! storage, ranges) and the fan-out (`fanout`: subscribers, outboxes, encode-once
//! delivery, backpressure), which the log feeds in seq order. This module joins them:
//! topics by name, publish, subscribe (live, or catching up from the log), history.
//! Connections, their heartbeat and stats are `registry`'s (PROTOCOL.md sections 1-4, 6).

pub mod broker;
pub mod budget;
pub mod connection;
pub mod counters;
pub mod directory;
mod dispatch;
mod follow;
mod in_flight;
pub mod event;
pub mod fanout;
pub mod log;
pub mod outbox;
pub mod rate;
pub mod registry;
pub mod subscription;

pub use registry::{ClientStats, ConnectionInfo, Stats};

use crate::config::Config;
use app::protocol::{validate_topic, ControlAction, ErrorCode, TopicError};
use counters::Counters;
use event::{Draft, Redaction, StoredEvent};
use fanout::FanoutTopic;
use log::durable::{DurableLog, Window};
use log::memory::{MemoryLog, Retention};
use log::{LogError, LogTopic, TopicLog};
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Topics whose events are durable: stored, kept for the life of the run, resumable.
pub const DURABLE_PREFIX: &str = "workflow:";

/// The hub's limits, from `Config`.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub retention: Retention,
    pub metrics_retention: Retention,
    pub max_subscriptions: usize,
    pub max_message_bytes: usize,
    pub rate_per_min: u32,
    pub rate_burst: u32,
    pub publish_rate_per_s: u32,
    pub abuse_limit: u32,
    pub heartbeat: Duration,
    pub outbound_queue: usize,
    /// Bytes of history all non-durable topics keep together.
    pub history_memory_bytes: usize,
    /// What a durable topic keeps in memory.
    pub durable_window: Window,
}

impl From<&Config> for HubConfig {
    fn from(c: &Config) -> Self {
        let c = &c.hub;
        let metrics_age = Duration::from_secs(c.metrics_history_seconds);
        HubConfig {
            retention: Retention { max_events: c.history_events as usize, max_age: Duration::from_secs(c.history_seconds) },
            // sized by time: every sample of the window, whatever the interval
            metrics_retention: Retention {
                max_events: (metrics_age.as_millis() / c.metrics_interval_ms.max(1) as u128) as usize + 2,
                max_age: metrics_age,
            },
            max_subscriptions: c.max_subscriptions as usize,
            max_message_bytes: c.max_message_bytes as usize,
            rate_per_min: c.rate_per_min,
            rate_burst: c.rate_burst,
            publish_rate_per_s: c.publish_rate_per_s,
            abuse_limit: c.abuse_limit,
            heartbeat: c.heartbeat(),
            outbound_queue: c.outbound_queue as usize,
            history_memory_bytes: c.history_memory_bytes as usize,
            durable_window: Window { max_events: c.durable_window_events as usize, max_bytes: c.durable_window_bytes as usize },
        }
    }
}

/// Longest event name accepted.
pub const MAX_EVENT_NAME_LEN: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("invalid topic {topic:?}: {source}")]
    BadTopic { topic: String, source: TopicError },
    #[error("invalid event name {0:?}: it must be 1 to 128 characters with no control characters")]
    BadEvent(String),
    #[error("`data` is not valid JSON: {0}")]
    BadData(String),
    #[error("this connection already has {0} subscriptions, the most allowed")]
    TooManySubscriptions(usize),
    #[error("the connection's outbound queue is full")]
    Overflow,
    #[error(transparent)]
    Log(#[from] LogError),
}

impl HubError {
    pub fn code(&self) -> ErrorCode {
        match self {
            HubError::BadTopic { .. } | HubError::BadEvent(_) | HubError::BadData(_) => ErrorCode::BadRequest,
            HubError::TooManySubscriptions(_) => ErrorCode::TooManySubscriptions,
            HubError::Overflow | HubError::Log(_) => ErrorCode::Internal,
        }
    }
}

/// Why `who` may not publish to `topic`, if it may not (the same at every door).
pub fn publish_refusal(who: &crate::auth::Principal, topic: &str) -> Option<String> {
    if app::protocol::is_server_owned(topic) {
        return Some(format!(
            "{topic:?} is written only by the server (workflow:*, coordinator, agents, agent:*, metrics): \
             no token may publish to it, whatever its pub_topics"
        ));
    }
    (!who.may_publish(topic)).then(|| format!("this token may not publish to {topic:?} (see its pub_topics)"))
}

pub fn check_topic(topic: &str) -> Result<(), HubError> {
    validate_topic(topic).map_err(|source| HubError::BadTopic { topic: topic.to_owned(), source })
}

fn check_event(event: &str) -> Result<(), HubError> {
    if event.is_empty() || event.len() > MAX_EVENT_NAME_LEN || event.chars().any(char::is_control) {
        return Err(HubError::BadEvent(event.to_owned()));
    }
    Ok(())
}

/// What the hub's clients may do to workflows (the job engine implements it), so the
/// connection code needs no engine of its own. Errors are (code, message).
pub trait WorkflowActions: Send + Sync {
    fn control<'a>(&'a self, id: &'a str, action: ControlAction) -> futures::future::BoxFuture<'a, Result<(), (ErrorCode, String)>>;
    fn confirm<'a>(&'a self, id: &'a str) -> futures::future::BoxFuture<'a, Result<(), (ErrorCode, String)>>;
    fn restart_stage<'a>(&'a self, id: &'a str, stage_id: &'a str) -> futures::future::BoxFuture<'a, Result<(), (ErrorCode, String)>>;
    fn chat<'a>(&'a self, id: &'a str, from: &'a str, text: &'a str) -> futures::future::BoxFuture<'a, Result<(), (ErrorCode, String)>>;
}

/// A page of a topic's history.
pub struct HistoryPage {
    pub events: Vec<Arc<StoredEvent>>,
    pub seq: u64,
    pub epoch: String,
}

/// One topic: its log and its fan-out.
pub struct TopicHandle {
    pub name: Arc<str>,
    pub log: Arc<dyn LogTopic>,
    pub fanout: Arc<FanoutTopic>,
    pub durable: bool,
    /// When its last event was published here (ms; 0 before the first since it opened).
    pub last_event_ts: std::sync::atomic::AtomicI64,
}

struct Inner {
    config: HubConfig,
    topics: RwLock<HashMap<Arc<str>, Arc<TopicHandle>>>,
    /// Opening a topic takes turns, so two first uses never make two logs of one topic.
    opening: tokio::sync::Mutex<()>,
    memory: MemoryLog,
    durable: Option<DurableLog>,
    /// Where shared topics live when this node is one of a cluster (`--broker`).
    broker: Option<broker::Broker>,
    connections: registry::Registry,
    counters: Counters,
    shutdown: CancellationToken,
    actions: std::sync::OnceLock<Arc<dyn WorkflowActions>>,
    budget: Arc<budget::MemoryBudget>,
    /// Catch-ups that read the log in the background (a durable topic's far past).
    tasks: tokio_util::task::TaskTracker,
}

/// A cheap, cloneable handle to the hub.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

pub fn now_ms() -> app::protocol::TimestampMs {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Hub {
    /// A hub whose `workflow:*` topics are kept by `durable` (in memory only without).
    pub fn new(config: HubConfig, durable: Option<DurableLog>, shutdown: CancellationToken) -> Hub {
        Hub::with_broker(config, durable, None, shutdown)
    }

    /// The same, its shared topics (all but the server-owned ones) on `broker`.
    pub fn with_broker(config: HubConfig, durable: Option<DurableLog>, broker: Option<broker::Broker>, shutdown: CancellationToken) -> Hub {
        let budget = Arc::new(budget::MemoryBudget::new(config.history_memory_bytes));
        Hub {
            inner: Arc::new(Inner {
                memory: MemoryLog::new(config.retention, config.metrics_retention, Some(budget.clone())),
                durable,
                broker,
                topics: RwLock::new(HashMap::new()),
                opening: tokio::sync::Mutex::new(()),
                connections: registry::Registry::default(),
                counters: Counters::default(),
                shutdown,
                actions: std::sync::OnceLock::new(),
                budget,
                tasks: tokio_util::task::TaskTracker::new(),
                config,
            }),
        }
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Attaches the job engine (once).
    pub fn set_actions(&self, actions: Arc<dyn WorkflowActions>) {
        let _ = self.inner.actions.set(actions);
    }

    pub fn actions(&self) -> Option<&Arc<dyn WorkflowActions>> {
        self.inner.actions.get()
    }

    fn existing(&self, name: &str) -> Option<Arc<TopicHandle>> {
        self.inner.topics.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// The topic of that name, opened on first use (a durable one from the database).
    pub async fn topic(&self, name: &str) -> Result<Arc<TopicHandle>, HubError> {
        if let Some(t) = self.existing(name) {
            return Ok(t);
        }
        check_topic(name)?;
        let _turn = self.inner.opening.lock().await;
        if let Some(t) = self.existing(name) {
            return Ok(t);
        }
        let durable = match &self.inner.durable {
            Some(d) if name.starts_with(DURABLE_PREFIX) => Some(d),
            _ => None,
        };
        let log = match (durable, &self.inner.broker) {
            (Some(d), _) => d.open(name).await?,
            (None, Some(b)) if !app::protocol::is_server_owned(name) => b.open(name).await?,
            _ => self.inner.memory.open(name).await?,
        };
        let fanout = Arc::new(FanoutTopic::new(0, self.inner.config.outbound_queue));
        log.attach(fanout.clone());
        let handle = Arc::new(TopicHandle {
            name: Arc::from(name),
            log,
            fanout,
            durable: durable.is_some(),
            last_event_ts: Default::default(),
        });
        self.inner.topics.write().unwrap_or_else(|p| p.into_inner()).insert(handle.name.clone(), handle.clone());
        Ok(handle)
    }

    /// Whether the topic lives in the broker, shared with other nodes.
    pub fn is_shared(&self, topic: &str) -> bool {
        self.inner.broker.is_some() && !app::protocol::is_server_owned(topic)
    }

    /// A topic's last seq and epoch now (a snapshot's position in the stream).
    pub async fn position(&self, topic: &str) -> Result<(u64, String), HubError> {
        let t = self.topic(topic).await?;
        Ok((t.log.last_seq(), t.log.epoch().to_string()))
    }

    /// (messages in + out, open connections), for `coordinator_metrics`.
    pub fn stats_counts(&self) -> (u64, u64) {
        let c = &self.inner.counters;
        (c.messages_in.get() + c.messages_out.get(), self.active_connections() as u64)
    }

    /// Publishes an event whose data is already JSON; returns its seq. Waits only when
    /// the topic's log must (a durable topic whose writer queue is full).
    pub async fn publish_raw(&self, topic: &str, event: &str, data: &RawValue) -> Result<u64, HubError> {
        self.publish_draft(topic, Draft { event, data, ts: now_ms(), redaction: None }).await
    }

    async fn publish_draft(&self, topic: &str, draft: Draft<'_>) -> Result<u64, HubError> {
        check_event(draft.event)?;
        let t = self.topic(topic).await?;
        let ts = draft.ts;
        let seq = t.log.append(draft, &*t.fanout).await?;
        t.last_event_ts.fetch_max(ts, std::sync::atomic::Ordering::Relaxed);
        let counters = &self.inner.counters;
        counters.events_published.inc();
        let overflowed = t.fanout.take_overflowed();
        if overflowed > 0 {
            counters.slow_consumer_closes.inc_by(overflowed as u64);
        }
        if self.inner.budget.is_over() {
            self.evict_history();
        }
        Ok(seq)
    }

    /// Publishes a serializable payload (server-side producers).
    pub async fn publish<T: Serialize>(&self, topic: &str, event: &str, data: &T) -> Result<u64, HubError> {
        let raw = serde_json::value::to_raw_value(data).map_err(|e| HubError::BadData(e.to_string()))?;
        self.publish_raw(topic, event, &raw).await
    }

    /// Publishes an event that mentions run `scope` (a run's topic): subscribers that
    /// may not see that run get `redacted` instead, at the same seq.
    pub async fn publish_scoped<T: Serialize>(&self, topic: &str, event: &str, data: &T, scope: &str, redacted: &T) -> Result<u64, HubError> {
        let bad = |e: serde_json::Error| HubError::BadData(e.to_string());
        let raw = serde_json::value::to_raw_value(data).map_err(bad)?;
        let other = serde_json::value::to_raw_value(redacted).map_err(bad)?;
        let draft = Draft { event, data: &raw, ts: now_ms(), redaction: Some(Redaction { scope, data: &other }) };
        self.publish_draft(topic, draft).await
    }

    /// Up to `limit` retained events after `since`; an unknown topic has none and seq 0.
    pub async fn history(&self, topic: &str, since: u64, limit: usize) -> Result<HistoryPage, HubError> {
        let t = self.topic(topic).await?;
        t.log.settle().await?;
        let seq = t.log.last_seq();
        let range = t.log.read(since, seq, limit).await?;
        Ok(HistoryPage { events: range.events, seq, epoch: t.log.epoch().to_string() })
    }

    /// Lets a topic go from memory now if nothing needs it there (no subscriber, no one
    /// holding it, its log idle): a finished run's, once the engine lets the run go.
    pub fn release_topic(&self, name: &str) {
        let mut topics = self.inner.topics.write().unwrap_or_else(|p| p.into_inner());
        let idle = topics.get(name).is_some_and(|t| Arc::strong_count(t) == 1 && t.fanout.subscriber_count() == 0 && t.log.is_idle());
        if idle {
            topics.remove(name);
        }
    }

    /// Forgets a topic whose log was deleted (a pruned run): its next use opens it anew.
    pub fn forget_topic(&self, name: &str) {
        self.inner.topics.write().unwrap_or_else(|p| p.into_inner()).remove(name);
    }

    /// Drops topics that hold nothing only memory keeps: no subscriber, nothing in use
    /// right now (only the registry holds them), and a log that is idle. A memory
    /// topic's next use starts a new epoch, as PROTOCOL.md section 3 requires; a durable
    /// one's is opened again from the database, as it was.
    pub fn sweep_idle_topics(&self) -> usize {
        let mut topics = self.inner.topics.write().unwrap_or_else(|p| p.into_inner());
        let before = topics.len();
        topics.retain(|_, t| Arc::strong_count(t) > 1 || t.fanout.subscriber_count() > 0 || !t.log.is_idle());
        before - topics.len()
    }

    /// Runs the idle-topic sweep until shutdown.
    pub async fn run_janitor(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tick.tick() => {
                    let removed = self.sweep_idle_topics();
                    if removed > 0 {
                        tracing::debug!(removed, "idle topics dropped");
                    }
                }
            }
        }
    }

    /// Waits for the background catch-ups to end (at shutdown).
    pub async fn wait_tasks(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests;
