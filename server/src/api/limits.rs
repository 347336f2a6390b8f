//! Body limits per endpoint: a body over its limit gets 413 `payload_too_large`,
//! naming the limit and its setting when the request declared its length, before a
//! byte of it is read; a chunked body is cut at the limit by axum's own limit (also
//! 413, through the JSON extractor's rejection).

use super::error::ApiError;
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

pub fn too_large(message: String) -> ApiError {
    ApiError::with_status(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
}

async fn check_declared(max: usize, setting: &'static str, req: Request, next: Next) -> Response {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > max as u64 => {
            too_large(format!("the request body is {len} bytes; this endpoint takes at most {max} ({setting})")).into_response()
        }
        _ => next.run(req).await,
    }
}

/// `routes` with their bodies held to `max` bytes (`setting` names the limit).
pub fn limited(routes: Router<AppState>, max: usize, setting: &'static str) -> Router<AppState> {
    routes
        .layer(from_fn(move |req: Request, next: Next| check_declared(max, setting, req, next)))
        .layer(DefaultBodyLimit::max(max))
}
