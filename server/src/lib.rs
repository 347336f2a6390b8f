//! Switchboard's server: the WebSocket hub, the HTTP API and the server-rendered
//! dashboard, started by `run` on a listener the caller binds (tests bind port 0).
// the views nest deeply in release builds (no `erase_components` there)
#![recursion_limit = "256"]

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod engine;
pub mod hub;
pub mod metrics;
pub mod shutdown;
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
const TOPIC_SWEEP_EVERY: Duration = Duration::from_secs(60);
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
    pub origins: auth::origin::Origins,
    pub http_limits: api::guard::HttpLimits,
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
    let auth = config.auth()?;
    let tracker = TaskTracker::new();
    let database = storage::Database::open(&config.data_dir).await?;
    let clean = database.begin_session().await?;
    let stored = database.load().await?;
    // stopped last, after every task that writes has ended
    let writer_stop = CancellationToken::new();
    let (store, writer) = database.start_writer(writer_stop.clone());
    let hub = Hub::new(HubConfig::from(&config), shutdown.child_token());
    let sink_store = store.clone();
    hub.set_event_sink(Arc::new(move |topic: &str, seq: u64, frame: &str| {
        sink_store.write(storage::Write::Event { topic: topic.to_owned(), seq, frame: frame.to_owned() })
    }));
    tracker.spawn(hub.clone().run_janitor(TOPIC_SWEEP_EVERY));
    tracker.spawn(hub.clone().run_heartbeat());
    let engine_config = engine::EngineConfig {
        concurrency: config.concurrency as usize,
        cancel_grace: Duration::from_secs(config.cancel_grace_s),
        runs_dir: config.data_dir.join("runs"),
        pipelines_dir: config.pipelines_dir.clone(),
    };
    let engine = engine::Engine::new(hub.clone(), engine_config, tracker.clone(), shutdown.child_token(), Some(store));
    engine.restore(stored, clean);
    hub.set_actions(Arc::new(engine.clone()));
    tracker.spawn(engine.clone().run_coordinator(COORDINATOR_EVERY));
    let sampler = metrics::Sampler::for_this_machine(Arc::new(engine.clone()));
    let every = Duration::from_millis(config.metrics_interval_ms);
    tracker.spawn(sampler.run(hub.clone(), every, shutdown.child_token()));

    let http_limits = api::guard::HttpLimits::new(config.http_rate_per_s);
    tracker.spawn(forget_idle_budgets(http_limits.clone(), shutdown.child_token()));
    let public_url = config.public_url(addr);
    let state = AppState {
        leptos_options: site::leptos_options(&config, addr),
        hub,
        engine,
        tracker: tracker.clone(),
        started: Instant::now(),
        auth: auth.clone(),
        origins: auth::origin::Origins::new(&config.allowed_origins),
        http_limits,
        public_url: public_url.clone(),
    };
    let app = site::router(state);
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "listening on http://{addr}");
    match auth.login_path() {
        Some(path) => tracing::info!("auth is on: sign a browser in with {public_url}{path} (the link works once)"),
        None => tracing::info!("auth is off (no signing secret): bound to loopback only; set SWITCHBOARD_AUTH_SECRET or SWITCHBOARD_AUTH_SECRET_FILE to turn it on"),
    }
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await;
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(config.shutdown_grace_s), tracker.wait()).await.is_err() {
        tracing::warn!("some connections did not close in time");
    }
    writer_stop.cancel();
    if tokio::time::timeout(Duration::from_secs(config.shutdown_grace_s), writer).await.is_err() {
        tracing::warn!("the database writer did not finish in time");
    }
    tracing::info!("stopped");
    served.map_err(ServerError::Serve)
}
