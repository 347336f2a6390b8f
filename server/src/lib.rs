//! Switchboard's server: the WebSocket hub, the HTTP API and the server-rendered
//! dashboard, started by `run` on a listener the caller binds (tests bind port 0).
// the views nest deeply in release builds (no `erase_components` there)
#![recursion_limit = "256"]

pub mod agents;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod engine;
pub mod http_server;
pub mod hub;
pub mod metrics;
pub mod shutdown;
pub mod terminal;
pub mod site;
pub mod storage;
pub mod telemetry;

use axum::extract::FromRef;
use config::Config;
use hub::{Hub, HubConfig};
use leptos::config::LeptosOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often topics that hold nothing are dropped.
const TOPIC_SWEEP_EVERY: Duration = Duration::from_secs(10);
/// How often `coordinator_metrics` is published.
const COORDINATOR_EVERY: Duration = Duration::from_secs(5);

/// What every handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub hub: Hub,
    pub engine: engine::Engine,
    pub tracker: TaskTracker,
    pub started: Instant,
    pub auth: auth::Auth,
    /// The hosts and origins a browser may reach this server under.
    pub origins: auth::origin::Origins,
    pub http_limits: api::guard::HttpLimits,
    pub http: config::HttpSettings,
    pub agents: config::AgentSettings,
    /// The database writer's health (for `/healthz` and `/metrics`).
    pub storage: Arc<storage::Health>,
    /// Where people reach the dashboard (`--public-url`, else http://ADDR).
    pub public_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create the data folder {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot read the listener's address: {0}")]
    Addr(std::io::Error),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Broker(#[from] hub::broker::BrokerError),
    #[error("cannot read or keep this node's id in the data folder: {0}")]
    NodeId(std::io::Error),
    #[error("stopped: this node lost its lease, and another node took its runs over (see the log)")]
    LeaseLost,
}

fn log_auth(auth: &auth::Auth, secret: Option<&auth::secret::Secret>, public_url: &str) {
    match (auth.login_path(), secret) {
        (Some(path), Some(secret)) => {
            if secret.created {
                tracing::info!(file = %secret.source_name, "created a signing secret (first run): `switchboard token create` reads it too");
            } else {
                tracing::info!(from = %secret.source_name, "signing secret loaded");
            }
            tracing::info!("auth is on: sign a browser in with {public_url}{path} (the link works once)");
        }
        _ => tracing::warn!(
            "auth is OFF (SWITCHBOARD_AUTH=off): anyone who can reach this port may watch, publish, start and cancel runs; it is bound to loopback only"
        ),
    }
}

/// How often keys whose HTTP budget is full again are forgotten.
const BUDGET_SWEEP_EVERY: Duration = Duration::from_secs(60);

async fn forget_idle_budgets(limits: api::guard::HttpLimits, stop: CancellationToken) {
    let mut tick = tokio::time::interval(BUDGET_SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => limits.forget_idle(),
        }
    }
}

/// Serves until `shutdown` is cancelled, then closes every WebSocket with 1001 and
/// waits (at most the configured grace) for every task to end.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> Result<(), ServerError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| ServerError::DataDir { path: config.data_dir.display().to_string(), source })?;
    let addr = listener.local_addr().map_err(ServerError::Addr)?;
    let (auth, secret) = config.make_auth()?;
    let hosts = config.allowed_hosts(addr)?;
    let tracker = TaskTracker::new();
    let location = config.storage.location(&config.data_dir);
    let node = match location {
        storage::Location::Server(_) => Some(storage::nodes::node_id(&config.data_dir).map_err(ServerError::NodeId)?),
        storage::Location::DataDir(_) => None,
    };
    let database = storage::Database::open(&location, node.clone()).await?;
    let clean = database.begin_session().await?;
    if !clean {
        tracing::warn!("the last process did not stop cleanly: every run's topic starts a new epoch (clients reload)");
    }
    let reader = database.reader();
    let unfinished = reader.unfinished(database.node()).await.map_err(storage::StorageError::Sql)?;
    let stored_runs = reader.run_count().await.map_err(storage::StorageError::Sql)?;
    let durations = reader.durations().await.map_err(storage::StorageError::Sql)?;
    // stopped last, after every task that writes has ended
    let writer_stop = CancellationToken::new();
    let limits = storage::StorageLimits { queue: config.storage.db_queue as usize };
    let (store, writer) = database.start_writer(limits, writer_stop.clone());
    let hub_config = HubConfig::from(&config);
    let durable = hub::log::durable::DurableLog::new(store.clone(), reader.clone(), hub_config.durable_window).shared(database.node().is_some());
    let broker = match &config.broker.broker {
        Some(url) => {
            let settings = hub::broker::BrokerConfig { url: url.clone(), prefix: config.broker.broker_prefix.clone(), retention: hub_config.retention };
            Some(hub::broker::Broker::connect(settings, shutdown.child_token()).await?)
        }
        None => None,
    };
    let hub = Hub::with_broker(hub_config, Some(durable), broker, shutdown.child_token());
    tracker.spawn(hub.clone().run_janitor(TOPIC_SWEEP_EVERY));
    tracker.spawn(hub.clone().run_heartbeat());
    let mut engine_config = engine::EngineConfig::from_settings(&config.engine, config.data_dir.join("runs"));
    engine_config.node = node.clone();
    let registry = agents::Registry::new(hub.clone(), config.agents.registry());
    let engine = engine::Engine::new(hub.clone(), registry.clone(), engine_config, tracker.clone(), shutdown.child_token(), store.clone(), reader);
    if let Some(slots) = config.storage.cluster_concurrency.and_then(|limit| database.slots(limit)) {
        // this node's runs from before queue again: the slots they held are free
        slots.release_all().await.map_err(storage::StorageError::Sql)?;
        engine.limit_cluster(slots);
    }
    engine.restore(unfinished, stored_runs.max(0) as u64, durations).await;
    hub.set_actions(Arc::new(engine.clone()));
    tracker.spawn(engine.clone().run_coordinator(COORDINATOR_EVERY));
    let lease_lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lease_len = Duration::from_secs(config.storage.node_lease_s);
    if let Some(lease) = database.lease(lease_len) {
        tracing::info!(node = %lease.node, lease_s = lease_len.as_secs(), "one of several nodes on PostgreSQL");
        tracker.spawn(engine.clone().keep_lease(lease, lease_len, lease_lost.clone(), shutdown.clone()));
    }
    if let Some(claims) = database.claims() {
        engine.share_claims(claims);
    }
    if let (Some(relay), storage::Location::Server(url)) = (database.relay(), &location) {
        engine.relay_controls(relay, url.clone(), &tracker, shutdown.child_token());
        if let Some(handoff) = database.handoff(lease_len) {
            engine.balance_queue(handoff, &tracker, shutdown.child_token());
        }
        if let Some(presence) = database.presence(lease_len) {
            engine.share_agents(presence, &tracker, shutdown.child_token());
        }
    }
    let every = Duration::from_secs(config.storage.prune_every_s);
    tracker.spawn(engine.clone().run_retention(config.storage.retention(), every));
    let sampler = metrics::Sampler::for_this_machine(Arc::new(engine.clone()));
    let every = Duration::from_millis(config.hub.metrics_interval_ms);
    tracker.spawn(sampler.run(hub.clone(), every, shutdown.child_token()));

    let http_limits = api::guard::HttpLimits::new(config.http.http_rate_per_s);
    tracker.spawn(forget_idle_budgets(http_limits.clone(), shutdown.child_token()));
    let public_url = config.public_url(addr);
    let state = AppState {
        leptos_options: site::leptos_options(&config, addr),
        hub,
        engine,
        tracker: tracker.clone(),
        started: Instant::now(),
        auth: auth.clone(),
        origins: auth::origin::Origins::new(&config.auth.allowed_origins, hosts.clone()),
        http_limits,
        http: config.http.clone(),
        agents: config.agents.clone(),
        storage: store.health().clone(),
        public_url: public_url.clone(),
    };
    let counters_hub = state.hub.clone();
    let hub_for_shutdown = state.hub.clone();
    let app = site::router(state);
    let worker_threads = tokio::runtime::Handle::current().metrics().num_workers();
    tracing::info!(%addr, data_dir = %config.data_dir.display(), worker_threads, "listening on http://{addr}");
    tracing::info!(hosts = %hosts.describe(), "answering to these hosts only (add others with --allowed-hosts)");
    log_auth(&auth, secret.as_ref(), &public_url);
    let limits = http_server::ServeLimits {
        header_timeout: config.http.header_timeout(),
        idle_timeout: config.http.idle_timeout(),
        max_per_ip: config.http.max_connections_per_ip as usize,
    };
    let refused = move || {
        counters_hub.counters().connections_refused.inc();
    };
    let served = http_server::serve(listener, app, limits, shutdown.clone(), refused).await;
    shutdown.cancel();
    tracker.close();
    let grace = Duration::from_secs(config.shutdown_grace_s);
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("some connections did not close in time");
    }
    let _ = tokio::time::timeout(grace, hub_for_shutdown.wait_tasks()).await;
    drop(store);
    writer_stop.cancel();
    // a node that lost its lease can write nothing more: no point waiting to
    let lost = lease_lost.load(std::sync::atomic::Ordering::SeqCst);
    let flush = if lost { Duration::from_secs(1) } else { Duration::from_secs(config.shutdown_grace_s) };
    if tokio::time::timeout(flush, writer).await.is_err() {
        tracing::warn!("the database writer did not finish in time");
    }
    tracing::info!("stopped");
    if lost {
        return Err(ServerError::LeaseLost);
    }
    served.map_err(ServerError::Serve)
}
