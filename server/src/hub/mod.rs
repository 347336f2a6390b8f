//! The hub: topics with per-topic seq and history, fan-out where each event is
//! serialized once and shared by every subscriber, a bounded outbound queue per
//! connection, heartbeats and limits (PROTOCOL.md sections 1 to 4 and 6).

pub mod budget;
pub mod connection;
pub mod counters;
pub mod outbox;
pub mod rate;
pub mod topic;

use crate::config::Config;
use app::protocol::{validate_topic, ControlAction, ErrorCode, MessageId, TimestampMs, TopicError, METRICS_TOPIC};
use counters::Counters;
use outbox::{Outbox, PushError};
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use topic::{EventSink, Redaction, Retention, StoredEvent, SubscribeOutcome, Topic};

/// Topics whose events are durable: stored, kept for the life of the run, restored.
pub const DURABLE_PREFIX: &str = "workflow:";

/// The whole run's events stay resumable: no count or age limit.
const DURABLE_RETENTION: Retention = Retention { max_events: usize::MAX, max_age: Duration::from_secs(100 * 365 * 24 * 3600) };

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
}

impl From<&Config> for HubConfig {
    fn from(c: &Config) -> Self {
        let c = &c.hub;
        let metrics_age = Duration::from_secs(c.metrics_history_seconds);
        HubConfig {
            retention: Retention {
                max_events: c.history_events as usize,
                max_age: Duration::from_secs(c.history_seconds),
            },
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
}

impl HubError {
    pub fn code(&self) -> ErrorCode {
        match self {
            HubError::BadTopic { .. } | HubError::BadEvent(_) | HubError::BadData(_) => ErrorCode::BadRequest,
            HubError::TooManySubscriptions(_) => ErrorCode::TooManySubscriptions,
            HubError::Overflow => ErrorCode::Internal,
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
    fn control(&self, id: &str, action: ControlAction) -> Result<(), (ErrorCode, String)>;
    fn confirm(&self, id: &str) -> Result<(), (ErrorCode, String)>;
    fn restart_stage(&self, id: &str, stage_id: &str) -> Result<(), (ErrorCode, String)>;
    fn chat(&self, id: &str, from: &str, text: &str) -> Result<(), (ErrorCode, String)>;
}

/// One open WebSocket, as `GET /api/v1/stats` shows it.
pub struct ConnectionInfo {
    pub id: u64,
    /// Who connected, and what they may do.
    pub principal: crate::auth::Principal,
    pub client_id: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub connected_at: TimestampMs,
    pub subscriptions: Mutex<BTreeSet<String>>,
    pub outbox: Outbox,
    pub last_seen_ms: AtomicI64,
}

impl ConnectionInfo {
    pub fn touch(&self) {
        self.last_seen_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn subscription_count(&self) -> usize {
        lock(&self.subscriptions).len()
    }
}

/// A page of a topic's history.
pub struct HistoryPage {
    pub events: Vec<Arc<StoredEvent>>,
    pub seq: u64,
    pub epoch: String,
}

#[derive(Debug, Serialize)]
pub struct ClientStats {
    pub id: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub subscriptions: Vec<String>,
    pub is_alive: bool,
    pub connected_at: TimestampMs,
    pub queue_len: usize,
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub total_connections: u64,
    pub active_connections: u64,
    pub topics: usize,
    pub messages_in: u64,
    pub messages_out: u64,
    pub clients: Vec<ClientStats>,
}

struct Inner {
    config: HubConfig,
    topics: RwLock<HashMap<Arc<str>, Arc<Topic>>>,
    connections: Mutex<HashMap<u64, Arc<ConnectionInfo>>>,
    next_conn_id: AtomicU64,
    counters: Counters,
    shutdown: CancellationToken,
    actions: std::sync::OnceLock<Arc<dyn WorkflowActions>>,
    sink: std::sync::OnceLock<EventSink>,
    budget: Arc<budget::MemoryBudget>,
}

/// A cheap, cloneable handle to the hub.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn now_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as TimestampMs)
        .unwrap_or(0)
}

fn new_epoch() -> String {
    format!("{:08x}", rand::random::<u32>())
}

impl Hub {
    pub fn new(config: HubConfig, shutdown: CancellationToken) -> Hub {
        Hub {
            inner: Arc::new(Inner {
                topics: RwLock::new(HashMap::new()),
                connections: Mutex::new(HashMap::new()),
                next_conn_id: AtomicU64::new(1),
                counters: Counters::default(),
                shutdown,
                actions: std::sync::OnceLock::new(),
                sink: std::sync::OnceLock::new(),
                budget: Arc::new(budget::MemoryBudget::new(config.history_memory_bytes)),
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

    /// A topic's last seq and epoch now (a snapshot's position in the stream).
    pub fn position(&self, topic: &str) -> Result<(u64, String), HubError> {
        check_topic(topic)?;
        let t = self.topic(topic);
        Ok((t.last_seq(), t.epoch().to_owned()))
    }

    /// (messages in + out, open connections), for `coordinator_metrics`.
    pub fn stats_counts(&self) -> (u64, u64) {
        let c = &self.inner.counters;
        (c.messages_in.get() + c.messages_out.get(), self.active_connections() as u64)
    }

    /// The topic of that (valid) name, created on first use with a fresh epoch.
    fn topic(&self, name: &str) -> Arc<Topic> {
        if let Some(t) = self.inner.topics.read().unwrap_or_else(|p| p.into_inner()).get(name) {
            return t.clone();
        }
        let mut topics = self.inner.topics.write().unwrap_or_else(|p| p.into_inner());
        topics
            .entry(Arc::from(name))
            .or_insert_with(|| match self.inner.sink.get() {
                Some(sink) if name.starts_with(DURABLE_PREFIX) => {
                    Arc::new(Topic::durable(name, new_epoch(), DURABLE_RETENTION, sink.clone(), Vec::new()))
                }
                _ => {
                    let retention = if name == METRICS_TOPIC {
                        self.inner.config.metrics_retention
                    } else {
                        self.inner.config.retention
                    };
                    Arc::new(Topic::budgeted(name, new_epoch(), retention, self.inner.budget.clone()))
                }
            })
            .clone()
    }

    /// Where the events of durable topics go (the database writer), set once.
    pub fn set_event_sink(&self, sink: EventSink) {
        let _ = self.inner.sink.set(sink);
    }

    /// Brings back a durable topic as an earlier process left it: its events, seq
    /// continuing after the last, and its epoch (a new one when `None`).
    pub fn restore_topic(&self, name: &str, epoch: Option<String>, events: Vec<(u64, String)>) -> Result<(), HubError> {
        check_topic(name)?;
        let epoch = epoch.unwrap_or_else(new_epoch);
        let Some(sink) = self.inner.sink.get() else { return Ok(()) };
        let topic = Arc::new(Topic::durable(name, epoch, DURABLE_RETENTION, sink.clone(), events));
        self.inner.topics.write().unwrap_or_else(|p| p.into_inner()).insert(Arc::from(name), topic);
        Ok(())
    }

    /// Publishes an event whose data is already JSON; returns its seq.
    pub fn publish_raw(&self, topic: &str, event: &str, data: &RawValue) -> Result<u64, HubError> {
        self.publish_raw_redacted(topic, event, data, None)
    }

    fn publish_raw_redacted(&self, topic: &str, event: &str, data: &RawValue, redaction: Option<Redaction<'_>>) -> Result<u64, HubError> {
        check_topic(topic)?;
        check_event(event)?;
        let published = self.topic(topic).publish_redacted(event, data, now_ms(), redaction);
        let counters = &self.inner.counters;
        counters.events_published.inc();
        if published.overflowed > 0 {
            counters.slow_consumer_closes.inc_by(published.overflowed as u64);
        }
        if self.inner.budget.is_over() {
            self.evict_history();
        }
        Ok(published.seq)
    }

    /// Publishes a serializable payload (server-side producers).
    pub fn publish<T: Serialize>(&self, topic: &str, event: &str, data: &T) -> Result<u64, HubError> {
        let raw = serde_json::value::to_raw_value(data).map_err(|e| HubError::BadData(e.to_string()))?;
        self.publish_raw(topic, event, &raw)
    }

    /// Publishes an event that mentions run `scope` (a run's topic): subscribers that
    /// may not see that run get `redacted` instead, at the same seq.
    pub fn publish_scoped<T: Serialize>(&self, topic: &str, event: &str, data: &T, scope: &str, redacted: &T) -> Result<u64, HubError> {
        let bad = |e: serde_json::Error| HubError::BadData(e.to_string());
        let raw = serde_json::value::to_raw_value(data).map_err(bad)?;
        let other = serde_json::value::to_raw_value(redacted).map_err(bad)?;
        self.publish_raw_redacted(topic, event, &raw, Some(Redaction { scope, data: &other }))
    }

    /// Evicts the oldest events of the non-durable topics, oldest first whatever their
    /// topic, until their histories fit the budget again.
    fn evict_history(&self) {
        use std::cmp::Reverse;
        let budget = &self.inner.budget;
        let Ok(_one_evictor) = budget.evicting.try_lock() else { return };
        let topics: Vec<Arc<Topic>> =
            self.inner.topics.read().unwrap_or_else(|p| p.into_inner()).values().filter(|t| t.is_budgeted()).cloned().collect();
        let mut oldest: std::collections::BinaryHeap<Reverse<(std::time::Instant, usize)>> =
            topics.iter().enumerate().filter_map(|(i, t)| t.oldest().map(|at| Reverse((at, i)))).collect();
        let mut evicted = 0u64;
        while budget.used() > budget.target() {
            let Some(Reverse((_, i))) = oldest.pop() else { break };
            if topics[i].evict_oldest() {
                evicted += 1;
            }
            if let Some(at) = topics[i].oldest() {
                oldest.push(Reverse((at, i)));
            }
        }
        self.inner.counters.history_evictions.inc_by(evicted);
        tracing::debug!(evicted, used = budget.used(), limit = budget.limit(), "history over its memory budget: oldest events evicted");
    }

    /// Bytes the non-durable histories hold now.
    pub fn history_bytes(&self) -> usize {
        self.inner.budget.used()
    }

    /// Subscribes a connection (see `Topic::subscribe`), enforcing its subscription limit.
    pub fn subscribe(
        &self,
        conn: &ConnectionInfo,
        topic: &str,
        since: Option<u64>,
        epoch: Option<&str>,
        id: Option<MessageId>,
    ) -> Result<SubscribeOutcome, HubError> {
        check_topic(topic)?;
        {
            let subs = lock(&conn.subscriptions);
            let max = self.inner.config.max_subscriptions;
            if !subs.contains(topic) && subs.len() >= max {
                return Err(HubError::TooManySubscriptions(max));
            }
        }
        let outcome = self.topic(topic).subscribe(conn.id, &conn.outbox, &conn.principal, since, epoch, id).map_err(|e| {
            if e == PushError::Overflow {
                self.inner.counters.slow_consumer_closes.inc();
            }
            HubError::Overflow
        })?;
        lock(&conn.subscriptions).insert(topic.to_owned());
        Ok(outcome)
    }

    pub fn unsubscribe(&self, conn: &ConnectionInfo, topic: &str) {
        let existing = self.inner.topics.read().unwrap_or_else(|p| p.into_inner()).get(topic).cloned();
        if let Some(t) = existing {
            t.unsubscribe(conn.id);
        }
        lock(&conn.subscriptions).remove(topic);
    }

    /// Up to `limit` retained events after `since`; an unknown topic has none and seq 0.
    pub fn history(&self, topic: &str, since: u64, limit: usize) -> Result<HistoryPage, HubError> {
        check_topic(topic)?;
        let t = self.topic(topic);
        let (events, seq) = t.history(since, limit);
        Ok(HistoryPage { events, seq, epoch: t.epoch().to_owned() })
    }

    /// Registers a new connection with its outbox.
    pub fn connect(
        &self,
        outbox: Outbox,
        principal: crate::auth::Principal,
        user_id: Option<String>,
        session_id: Option<String>,
    ) -> Arc<ConnectionInfo> {
        let id = self.inner.next_conn_id.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(ConnectionInfo {
            id,
            principal,
            client_id: format!("c{id}-{:06x}", rand::random::<u32>() & 0xff_ffff),
            user_id,
            session_id,
            connected_at: now_ms(),
            subscriptions: Mutex::new(BTreeSet::new()),
            outbox,
            last_seen_ms: AtomicI64::new(now_ms()),
        });
        lock(&self.inner.connections).insert(id, info.clone());
        self.inner.counters.connections_total.inc();
        self.inner.counters.connections_active.inc();
        info
    }

    /// Forgets a connection and all its subscriptions.
    pub fn disconnect(&self, conn: &ConnectionInfo) {
        let topics: Vec<String> = lock(&conn.subscriptions).iter().cloned().collect();
        for topic in topics {
            self.unsubscribe(conn, &topic);
        }
        if lock(&self.inner.connections).remove(&conn.id).is_some() {
            self.inner.counters.connections_active.dec();
        }
    }

    pub fn active_connections(&self) -> usize {
        lock(&self.inner.connections).len()
    }

    pub fn stats(&self) -> Stats {
        let now = now_ms();
        let alive_within = 2 * self.inner.config.heartbeat.as_millis() as i64;
        let clients: Vec<ClientStats> = lock(&self.inner.connections)
            .values()
            .map(|c| ClientStats {
                id: c.client_id.clone(),
                user_id: c.user_id.clone(),
                session_id: c.session_id.clone(),
                subscriptions: lock(&c.subscriptions).iter().cloned().collect(),
                is_alive: !c.outbox.is_closing() && now - c.last_seen_ms.load(Ordering::Relaxed) < alive_within,
                connected_at: c.connected_at,
                queue_len: c.outbox.len(),
            })
            .collect();
        let c = &self.inner.counters;
        Stats {
            total_connections: c.connections_total.get(),
            active_connections: clients.len() as u64,
            topics: self.inner.topics.read().unwrap_or_else(|p| p.into_inner()).len(),
            messages_in: c.messages_in.get(),
            messages_out: c.messages_out.get(),
            clients,
        }
    }

    /// Drops topics that hold nothing: no subscriber, no retained event, and no one
    /// using them right now (only the registry holds a reference). Their next use
    /// starts a new epoch, as PROTOCOL.md section 3 requires.
    pub fn sweep_idle_topics(&self) -> usize {
        let mut topics = self.inner.topics.write().unwrap_or_else(|p| p.into_inner());
        let before = topics.len();
        topics.retain(|_, t| Arc::strong_count(t) > 1 || !t.is_idle());
        before - topics.len()
    }

    /// One heartbeat for every connection: a connection silent (no Pong, no message)
    /// for two periods is closed with 1001; every other one is sent a WebSocket Ping.
    /// One task for the hub rather than a timer per connection keeps idle ones small.
    pub fn heartbeat(&self) -> usize {
        let now = now_ms();
        let silent_after = 2 * self.inner.config.heartbeat.as_millis() as i64;
        let connections: Vec<Arc<ConnectionInfo>> = lock(&self.inner.connections).values().cloned().collect();
        let mut closed = 0;
        for conn in connections {
            if now - conn.last_seen_ms.load(Ordering::Relaxed) > silent_after {
                conn.outbox.close(outbox::CloseReason::HeartbeatTimeout);
                closed += 1;
            } else {
                let _ = conn.outbox.push(outbox::Outbound::Ping);
            }
        }
        closed
    }

    /// Runs the heartbeat every `heartbeat` period until shutdown.
    pub async fn run_heartbeat(self) {
        let period = self.inner.config.heartbeat;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tick.tick() => {
                    let closed = self.heartbeat();
                    if closed > 0 {
                        tracing::debug!(closed, "silent connections closed");
                    }
                }
            }
        }
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
}
