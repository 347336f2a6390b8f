//! `GET /api/v1/stats`, `GET /metrics` (Prometheus text) and `GET /healthz`.

use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use crate::auth::Principal;

/// The hub's figures; each client's details (user and session ids, subscriptions)
/// only for a token with the `admin` right.
pub async fn stats(State(state): State<AppState>, Extension(who): Extension<Principal>) -> impl IntoResponse {
    let mut stats = state.hub.stats();
    if !who.is_admin() {
        stats.clients.clear();
    }
    Json(stats)
}

pub async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    let storage = &state.storage;
    let body = state.hub.counters().encode(|out| {
        use std::fmt::Write;
        let _ = writeln!(out, "# HELP switchboard_storage_write_failures Database transactions that failed (each is retried).");
        let _ = writeln!(out, "# TYPE switchboard_storage_write_failures counter");
        let _ = writeln!(out, "switchboard_storage_write_failures_total {}", storage.failures());
        let _ = writeln!(out, "# HELP switchboard_storage_degraded Whether database writes are failing now.");
        let _ = writeln!(out, "# TYPE switchboard_storage_degraded gauge");
        let _ = writeln!(out, "switchboard_storage_degraded {}", u8::from(storage.degraded().is_some()));
        let _ = writeln!(out, "# HELP switchboard_runs_in_memory Runs the engine holds in memory (the rest are read from the database).");
        let _ = writeln!(out, "# TYPE switchboard_runs_in_memory gauge");
        let _ = writeln!(out, "switchboard_runs_in_memory {}", state.engine.runs_in_memory());
        let _ = writeln!(out, "# HELP switchboard_history_bytes Bytes held by the histories of non-durable topics.");
        let _ = writeln!(out, "# TYPE switchboard_history_bytes gauge");
        let _ = writeln!(out, "switchboard_history_bytes {}", state.hub.history_bytes());
    });
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
}

/// `ok`, or `degraded` (503) while database writes fail: they are being retried, and
/// nothing is lost while producers wait, but the node should not take new work.
pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let degraded = state.storage.degraded();
    let status = if degraded.is_some() { axum::http::StatusCode::SERVICE_UNAVAILABLE } else { axum::http::StatusCode::OK };
    let body = serde_json::json!({
        "status": if degraded.is_some() { "degraded" } else { "ok" },
        "uptime_s": state.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
        "storage": match &degraded {
            Some(error) => serde_json::json!({ "status": "failing", "error": error, "failures": state.storage.failures() }),
            None => serde_json::json!({ "status": "ok", "failures": state.storage.failures() }),
        },
    });
    (status, Json(body))
}
