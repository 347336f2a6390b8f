//! The HTTP API (PROTOCOL.md section 8) and the WebSocket doors, each a function
//! returning its routes.

pub mod error;
pub mod session;
pub mod status;
pub mod topics;
pub mod workflows;
pub mod ws;

use crate::AppState;
use axum::routing::{get, post};
use axum::Router;

/// `/api/v1/...`: JSON in, JSON out, errors in one format.
pub fn v1() -> Router<AppState> {
    Router::new()
        .route("/publish", post(topics::publish))
        .route("/topics/{topic}/history", get(topics::history))
        .route("/stats", get(status::stats))
        .route("/session", get(session::session))
        .route("/workflows", post(workflows::start).get(workflows::list))
        .route("/workflows/{id}", get(workflows::get))
        .route("/workflows/{id}/chat", post(workflows::chat))
        .route("/workflows/{id}/{action}", post(workflows::act))
        .route("/workflows/{id}/stages/{stage}/restart", post(workflows::restart))
        .route("/workflows/{id}/artifacts/{*name}", get(workflows::artifact))
        .route("/pipelines", get(workflows::pipelines))
        .route("/agents", get(workflows::agents))
        .fallback(error::not_found_fallback)
}

/// `/ws` and its aliases, `/metrics`, `/healthz`.
pub fn doors() -> Router<AppState> {
    Router::new()
        .route("/ws", get(ws::root))
        .route("/ws/workflow/{id}", get(ws::workflow))
        .route("/ws/projects/{id}", get(ws::workflow))
        .route("/ws/agent/{name}", get(ws::agent))
        .route("/ws/coordinator", get(ws::coordinator))
        .route("/metrics", get(status::prometheus))
        .route("/healthz", get(status::healthz))
}
