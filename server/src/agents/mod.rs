//! Agents: whoever executes a stage. The server's own local executor is the first; a
//! `switchboard agent` on another machine, or an app's backend running an external
//! run's stages, connects out to `/api/v1/agents/connect` (`door`), registers its
//! capabilities and concurrency, is given work and signals, and reports in one
//! vocabulary (`reports`). The engine keeps every run's state machine; `remote` is its
//! side of a stage an agent runs. `client` is the `switchboard agent` program.
//!
//! The registry below knows every agent seen: status, capabilities, what each runs,
//! counters, when it was last heard from, and its machine's metrics; it publishes
//! `agent_status` on `agents` and `agent:{name}` at each change.

pub mod client;
mod cluster;
pub mod door;
pub mod remote;
pub mod reports;
mod status;

pub use status::as_seen_by;

use crate::hub::{now_ms, Hub};
use app::protocol::{AgentStatus, MachineMetrics, ServerToAgent, StageKey};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// The name of the server's own executor.
pub const LOCAL_AGENT: &str = "local";
/// What the local executor can do.
const LOCAL_CAPABILITIES: [&str; 3] = ["shell", "process-group", "artifacts"];

/// How agents are waited for and given up on.
#[derive(Debug, Clone, Copy)]
pub struct AgentsConfig {
    /// An agent silent this long (no connection, no report) is lost: its stages fail
    /// `agent lost` (or are queued again).
    pub grace: Duration,
    /// How long a stage waits for an agent with its capabilities, by default.
    pub wait: Duration,
    /// The agents' heartbeat period.
    pub heartbeat: Duration,
}

/// An open connection to an agent.
struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<ServerToAgent>,
}

struct Agent {
    capabilities: Vec<String>,
    concurrency: u32,
    local: bool,
    conn: Option<Conn>,
    running: BTreeSet<StageKey>,
    last_seen: i64,
    stages_run: u64,
    errors: u64,
    total_seconds: f64,
    machine: Option<MachineMetrics>,
}

impl Agent {
    /// An agent known by name only, until it connects.
    fn unseen() -> Agent {
        Agent {
            capabilities: Vec::new(),
            concurrency: 1,
            local: false,
            conn: None,
            running: BTreeSet::new(),
            last_seen: now_ms(),
            stages_run: 0,
            errors: 0,
            total_seconds: 0.0,
            machine: None,
        }
    }
}

struct Inner {
    hub: Hub,
    config: AgentsConfig,
    agents: Mutex<BTreeMap<String, Agent>>,
    slots: Mutex<HashMap<StageKey, Arc<reports::Slot>>>,
    /// Report receivers of re-attached stages, until their tasks take them.
    parked: Mutex<HashMap<StageKey, tokio::sync::mpsc::Receiver<(u64, app::protocol::ReportKind)>>>,
    /// Woken when an agent connects, leaves or frees a place: waiting stages look again.
    changed: Notify,
    next_conn: AtomicU64,
    /// Where each status goes to be shared with other nodes (several nodes only), with
    /// whether the agent is connected here.
    shared: std::sync::OnceLock<mpsc::UnboundedSender<(AgentStatus, bool)>>,
    /// Brings a stage an agent says it runs, of a run another node owns (several
    /// nodes only): whether the stage is this node's now.
    bring: std::sync::OnceLock<Bring>,
    /// The last stages agents were told to drop (in `welcome`), newest last.
    dropped: Mutex<std::collections::VecDeque<StageKey>>,
    /// What was last shared of each agent (its figures and last seen left out), when.
    last_shared: Mutex<HashMap<String, (AgentStatus, bool, std::time::Instant)>>,
    /// Agents not connected here, as other nodes last said (several nodes only):
    /// what this node's `agents` topic last said of each.
    elsewhere: Mutex<HashMap<String, AgentStatus>>,
}

/// An agent's status unchanged but for its machine's figures is shared this often.
const SHARE_FIGURES_EVERY: Duration = Duration::from_secs(10);

/// How many of the stages agents were told to drop are remembered.
const DROPPED_KEPT: usize = 256;

/// engine::agent_moves::bring_stage, as the door calls it.
pub type Bring = Arc<dyn Fn(StageKey, String) -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

/// The agent registry. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    pub fn new(hub: Hub, config: AgentsConfig) -> Registry {
        let mut agents = BTreeMap::new();
        let local = Agent { capabilities: LOCAL_CAPABILITIES.iter().map(|c| c.to_string()).collect(), concurrency: u32::MAX, local: true, ..Agent::unseen() };
        agents.insert(LOCAL_AGENT.to_owned(), local);
        Registry {
            inner: Arc::new(Inner {
                hub,
                config,
                agents: Mutex::new(agents),
                slots: Mutex::new(HashMap::new()),
                parked: Mutex::new(HashMap::new()),
                changed: Notify::new(),
                next_conn: AtomicU64::new(1),
                shared: std::sync::OnceLock::new(),
                bring: std::sync::OnceLock::new(),
                dropped: Mutex::new(std::collections::VecDeque::new()),
                last_shared: Mutex::new(HashMap::new()),
                elsewhere: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &AgentsConfig {
        &self.inner.config
    }

    /// An agent (re)connects: its capabilities and concurrency, and the sender of its
    /// connection (an earlier connection of the same name is replaced). Returns the
    /// connection's id.
    pub async fn connect(&self, name: &str, capabilities: Vec<String>, concurrency: u32, tx: mpsc::UnboundedSender<ServerToAgent>) -> u64 {
        let id = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        {
            let mut agents = lock(&self.inner.agents);
            let agent = agents.entry(name.to_owned()).or_insert_with(Agent::unseen);
            agent.capabilities = capabilities;
            agent.concurrency = concurrency.max(1);
            agent.conn = Some(Conn { id, tx });
            agent.last_seen = now_ms();
        }
        self.inner.changed.notify_waiters();
        self.wake_slots(name);
        self.publish(name).await;
        id
    }

    /// Its connection `conn` ended (a newer one may have replaced it already).
    pub async fn disconnect(&self, name: &str, conn: u64) {
        let gone = {
            let mut agents = lock(&self.inner.agents);
            match agents.get_mut(name) {
                Some(a) if a.conn.as_ref().is_some_and(|c| c.id == conn) => {
                    a.conn = None;
                    true
                }
                _ => false,
            }
        };
        if gone {
            self.wake_slots(name);
            self.publish(name).await;
        }
    }

    /// The agent was heard from (a message, a Pong).
    pub fn heard_from(&self, name: &str) {
        if let Some(a) = lock(&self.inner.agents).get_mut(name) {
            a.last_seen = now_ms();
        }
    }

    /// Its machine's figures now.
    pub async fn machine(&self, name: &str, metrics: MachineMetrics) {
        if let Some(a) = lock(&self.inner.agents).get_mut(name) {
            a.machine = Some(metrics);
            a.last_seen = now_ms();
        }
        self.publish(name).await;
    }

    pub fn is_connected(&self, name: &str) -> bool {
        name == LOCAL_AGENT || lock(&self.inner.agents).get(name).is_some_and(|a| a.conn.is_some())
    }

    /// Sends a message on the agent's connection; false when it has none.
    pub fn send(&self, name: &str, msg: ServerToAgent) -> bool {
        let agents = lock(&self.inner.agents);
        agents.get(name).and_then(|a| a.conn.as_ref()).is_some_and(|c| c.tx.send(msg).is_ok())
    }

    /// A connected agent (not the server itself) with every capability in `needs` and a
    /// free place, the least busy first; the stage `key` takes its place.
    fn claim(&self, needs: &[String], key: &StageKey) -> Option<String> {
        let mut agents = lock(&self.inner.agents);
        let name = agents
            .iter()
            .filter(|(_, a)| !a.local && a.conn.is_some() && (a.running.len() as u32) < a.concurrency)
            .filter(|(_, a)| needs.iter().all(|n| a.capabilities.contains(n)))
            .min_by_key(|(_, a)| a.running.len())
            .map(|(n, _)| n.clone())?;
        if let Some(a) = agents.get_mut(&name) {
            a.running.insert(key.clone());
        }
        Some(name)
    }

    /// Waits up to `timeout` for an agent with `needs` and a free place (`claim`).
    pub async fn wait_for_agent(&self, needs: &[String], key: &StageKey, timeout: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.inner.changed.notified();
            if let Some(name) = self.claim(needs, key) {
                return Some(name);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }

    /// Stage `key` runs on `name` now (for its status and its place). An executor not
    /// seen yet (an external run's, which may report over HTTP only) is listed now.
    pub async fn started(&self, name: &str, key: &StageKey) {
        lock(&self.inner.agents).entry(name.to_owned()).or_insert_with(Agent::unseen).running.insert(key.clone());
        self.publish(name).await;
    }

    /// Stage `key` ended on `name` after `seconds`; its place is free.
    pub async fn finished(&self, name: &str, key: &StageKey, seconds: f64, failed: bool) {
        if let Some(a) = lock(&self.inner.agents).get_mut(name) {
            a.running.remove(key);
            a.stages_run += 1;
            a.total_seconds += seconds;
            if failed {
                a.errors += 1;
            }
        }
        self.inner.changed.notify_waiters();
        self.publish(name).await;
    }

    /// Stage `key` left `name` without ending (its run went to another node).
    pub async fn released(&self, name: &str, key: &StageKey) {
        if let Some(a) = lock(&self.inner.agents).get_mut(name) {
            a.running.remove(key);
        }
        self.inner.changed.notify_waiters();
        self.publish(name).await;
    }

    /// Every agent's status, as the API and the agents topics show it.
    pub fn statuses(&self) -> Vec<AgentStatus> {
        let agents = lock(&self.inner.agents);
        agents.iter().map(|(name, a)| status::of(name, a, self.inner.config)).collect()
    }

    /// (registered, healthy) agents, for `coordinator_metrics`.
    pub fn counts(&self) -> (u64, u64) {
        let statuses = self.statuses();
        let healthy = statuses.iter().filter(|s| s.metrics.is_healthy && s.status != app::protocol::AgentState::Offline).count();
        (statuses.len() as u64, healthy as u64)
    }

    /// Publishes one agent's status on `agents` and `agent:{name}` (and shares it).
    pub async fn publish(&self, name: &str) {
        let (status, connected) = {
            let agents = lock(&self.inner.agents);
            let Some(a) = agents.get(name) else { return };
            (status::of(name, a, self.inner.config), a.conn.is_some())
        };
        self.share(&status, connected);
        // offline here but connected to another node: this node's topic says so already
        if !connected && lock(&self.inner.elsewhere).get(name).is_some_and(|s| s.status != app::protocol::AgentState::Offline) {
            return;
        }
        status::publish(&self.inner.hub, &status).await;
    }

    /// Publishes every agent's status (at start-up).
    pub async fn publish_all(&self) {
        for s in self.statuses() {
            status::publish(&self.inner.hub, &s).await;
        }
    }

    fn wake_slots(&self, name: &str) {
        for slot in lock(&self.inner.slots).values() {
            if slot.agent == name {
                slot.wake.notify_waiters();
            }
        }
    }

    /// When `name` was last heard from, and whether it is connected now.
    pub fn liveness(&self, name: &str) -> Option<(i64, bool)> {
        lock(&self.inner.agents).get(name).map(|a| (a.last_seen, a.conn.is_some()))
    }

    pub(crate) fn parked(&self) -> MutexGuard<'_, HashMap<StageKey, tokio::sync::mpsc::Receiver<(u64, app::protocol::ReportKind)>>> {
        lock(&self.inner.parked)
    }

    pub(crate) fn slots(&self) -> MutexGuard<'_, HashMap<StageKey, Arc<reports::Slot>>> {
        lock(&self.inner.slots)
    }

    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }
}
