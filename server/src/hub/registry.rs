//! The open connections: each one's identity, subscriptions, outbox and when it was
//! last heard from; `GET /api/v1/stats`; and the heartbeat, spread over its period so
//! that no instant carries every connection's Ping.

use super::outbox::{self, Outbox};
use super::Hub;
use app::protocol::TimestampMs;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The heartbeat's period is cut into this many slices; each tick pings one slice of
/// the connections (those whose id falls in it), so a round's writes are spread evenly
/// over the period instead of landing on every socket at once.
const HEARTBEAT_SLICES: u64 = 64;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One open WebSocket, as `GET /api/v1/stats` shows it.
pub struct ConnectionInfo {
    pub id: u64,
    /// Who connected, and what they may do.
    pub principal: crate::auth::Principal,
    /// With `id`, the client id `hello` gives (made when asked, not kept as a string).
    tag: u32,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub connected_at: TimestampMs,
    pub subscriptions: Mutex<BTreeSet<String>>,
    pub outbox: Outbox,
    pub last_seen_ms: AtomicI64,
}

impl ConnectionInfo {
    /// `c{id}-{tag}`: unique in this process, and not guessable from the count alone.
    pub fn client_id(&self) -> String {
        format!("c{}-{:06x}", self.id, self.tag)
    }

    pub fn touch(&self) {
        self.last_seen_ms.store(super::now_ms(), Ordering::Relaxed);
    }

    pub fn subscription_count(&self) -> usize {
        lock(&self.subscriptions).len()
    }
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

#[derive(Default)]
pub(super) struct Registry {
    connections: Mutex<HashMap<u64, Arc<ConnectionInfo>>>,
    next_id: AtomicU64,
}

impl Hub {
    /// Registers a new connection with its outbox.
    pub fn connect(
        &self,
        outbox: Outbox,
        principal: crate::auth::Principal,
        user_id: Option<String>,
        session_id: Option<String>,
    ) -> Arc<ConnectionInfo> {
        let registry = &self.inner.connections;
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let now = super::now_ms();
        let info = Arc::new(ConnectionInfo {
            id,
            principal,
            tag: rand::random::<u32>() & 0xff_ffff,
            user_id,
            session_id,
            connected_at: now,
            subscriptions: Mutex::new(BTreeSet::new()),
            outbox,
            last_seen_ms: AtomicI64::new(now),
        });
        lock(&registry.connections).insert(id, info.clone());
        self.inner.counters.connections_total.inc();
        self.inner.counters.connections_active.inc();
        if self.inner.shutdown.is_cancelled() {
            info.outbox.close(outbox::CloseReason::GoingAway);
        }
        info
    }

    /// Server shutdown: every connection is closed with 1001.
    fn close_all(&self) {
        let all: Vec<Arc<ConnectionInfo>> = lock(&self.inner.connections.connections).values().cloned().collect();
        for conn in all {
            conn.outbox.close(outbox::CloseReason::GoingAway);
        }
    }

    /// Forgets a connection and all its subscriptions.
    pub fn disconnect(&self, conn: &ConnectionInfo) {
        let topics: Vec<String> = lock(&conn.subscriptions).iter().cloned().collect();
        for topic in topics {
            self.unsubscribe(conn, &topic);
        }
        if lock(&self.inner.connections.connections).remove(&conn.id).is_some() {
            self.inner.counters.connections_active.dec();
        }
    }

    pub fn active_connections(&self) -> usize {
        lock(&self.inner.connections.connections).len()
    }

    pub fn stats(&self) -> Stats {
        let now = super::now_ms();
        let alive_within = 2 * self.inner.config.heartbeat.as_millis() as i64;
        let clients: Vec<ClientStats> = lock(&self.inner.connections.connections)
            .values()
            .map(|c| ClientStats {
                id: c.client_id(),
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

    /// One slice of the heartbeat: every connection whose id falls in `slice` that has
    /// been silent (no Pong, no message) for two periods is closed with 1001; the others
    /// are sent a WebSocket Ping. Returns how many were closed.
    pub fn heartbeat_slice(&self, slice: u64, slices: u64) -> usize {
        let now = super::now_ms();
        let silent_after = 2 * self.inner.config.heartbeat.as_millis() as i64;
        let due: Vec<Arc<ConnectionInfo>> =
            lock(&self.inner.connections.connections).values().filter(|c| c.id % slices == slice).cloned().collect();
        let mut closed = 0;
        for conn in due {
            if now - conn.last_seen_ms.load(Ordering::Relaxed) > silent_after {
                conn.outbox.close(outbox::CloseReason::HeartbeatTimeout);
                closed += 1;
            } else {
                let _ = conn.outbox.push(outbox::Outbound::Ping);
            }
        }
        closed
    }

    /// Every connection's heartbeat at once (tests).
    pub fn heartbeat(&self) -> usize {
        self.heartbeat_slice(0, 1)
    }

    /// Runs the heartbeat until shutdown (then closes every connection with 1001):
    /// each connection is pinged once per period, the period cut into slices so the
    /// Pings are spread across it.
    pub async fn run_heartbeat(self) {
        let slices = HEARTBEAT_SLICES;
        let step = self.inner.config.heartbeat / slices as u32;
        let mut tick = tokio::time::interval(step.max(std::time::Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut slice = 0;
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return self.close_all(),
                _ = tick.tick() => {
                    let closed = self.heartbeat_slice(slice, slices);
                    if closed > 0 {
                        tracing::debug!(closed, "silent connections closed");
                    }
                    slice = (slice + 1) % slices;
                }
            }
        }
    }
}
