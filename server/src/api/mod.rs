//! The HTTP API (PROTOCOL.md section 8) and the WebSocket doors, each a function
//! returning its routes.

pub mod agents;
pub mod cors;
pub mod error;
pub mod gate;
pub mod guard;
pub mod limits;
pub mod listing;
pub mod session;
pub mod status;
pub mod tokens;
pub mod topics;
pub mod workflows;
pub mod ws;

use crate::AppState;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, put};
use axum::Router;
use limits::limited;

/// `/api/v1/...`: JSON in, JSON out, errors in one format; every request identified
/// and within its budget first (`guard`); every body within its endpoint's limit.
pub fn v1(state: &AppState) -> Router<AppState> {
    let message_bytes = state.hub.config().max_message_bytes;
    let pipeline_bytes = state.http.max_pipeline_bytes as usize;
    let start = Router::new().route("/workflows", post(workflows::start).get(listing::list));
    let report_bytes = state.agents.max_report_bytes as usize;
    let reports = Router::new().route("/workflows/{id}/reports", post(agents::reports));
    // its own limit, checked as the body streams in (uploads are large)
    let upload = Router::new()
        .route("/workflows/{id}/artifacts/{*name}", put(agents::upload))
        .layer(axum::extract::DefaultBodyLimit::disable());
    let rest = Router::new()
        .route("/publish", post(topics::publish))
        .route("/tokens", post(tokens::mint))
        .route("/topics", get(topics::list))
        .route("/topics/{topic}/history", get(topics::history))
        .route("/stats", get(status::stats))
        .route("/session", get(session::session))
        .route("/workflows/{id}", get(workflows::get))
        .route("/workflows/{id}/chat", post(workflows::chat))
        .route("/workflows/{id}/{action}", post(workflows::act))
        .route("/workflows/{id}/stages/{stage}/restart", post(workflows::restart))
        .route("/workflows/{id}/artifacts/{*name}", get(workflows::artifact))
        .route("/agents/connect", get(agents::connect))
        .route("/pipelines", get(workflows::pipelines))
        .route("/agents", get(workflows::agents));
    Router::new()
        .merge(limited(start, pipeline_bytes, "SWITCHBOARD_MAX_PIPELINE_BYTES"))
        .merge(limited(reports, report_bytes, "SWITCHBOARD_MAX_REPORT_BYTES"))
        .merge(upload)
        .merge(limited(rest, message_bytes, "SWITCHBOARD_MAX_MESSAGE_BYTES"))
        .fallback(error::not_found_fallback)
        .layer(from_fn_with_state(state.clone(), guard::authenticated))
}

/// `/ws` and its aliases and `/login` (each checks its own credentials), `/metrics`
/// (like the API), `/healthz` (open: it says only that the server is up).
pub fn doors(state: &AppState) -> Router<AppState> {
    let own_credentials = Router::new()
        .route("/ws", get(ws::root))
        .route("/ws/workflow/{id}", get(ws::workflow))
        .route("/ws/projects/{id}", get(ws::workflow))
        .route("/ws/agent/{name}", get(ws::agent))
        .route("/ws/coordinator", get(ws::coordinator))
        .route("/login", get(session::login))
        .layer(from_fn_with_state(state.clone(), guard::budget_only));
    let metrics = Router::new()
        .route("/metrics", get(status::prometheus))
        .layer(from_fn_with_state(state.clone(), guard::authenticated));
    Router::new().merge(own_credentials).merge(metrics).route("/healthz", get(status::healthz))
}
