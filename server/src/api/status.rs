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
    let body = state.hub.counters().encode(|_| {});
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
}

pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    Json(serde_json::json!({
        "status": "ok",
        "uptime_s": state.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
