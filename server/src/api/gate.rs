//! The first stop of every request, pages and sockets included, auth on or off: the
//! `Host` must name this server (421 otherwise: DNS rebinding), and a request that
//! changes anything must not come from another site's page: an `Origin` that is not
//! allowed, or `Sec-Fetch-Site: cross-site` without an origin of `--allowed-origins`,
//! gets 403, and so does a WebSocket upgrade
//! from a foreign `Origin`. The content types an HTML form can send without a
//! preflight (`application/x-www-form-urlencoded`, `multipart/form-data`, `text/plain`)
//! get 415 on every POST (all a form can send): the API takes JSON or nothing, but
//! for artifact uploads (PUT, which no form can send).

use super::error::ApiError;
use crate::AppState;
use app::protocol::ErrorCode;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The request's authority: HTTP/2's `:authority`, else the `Host` header.
fn authority(req: &Request) -> Option<&str> {
    req.uri().authority().map(|a| a.as_str()).or_else(|| req.headers().get(header::HOST)?.to_str().ok())
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The content types a cross-site `<form>` can send without a CORS preflight.
fn is_form_type(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(essence.as_str(), "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain")
}

fn origin_of(headers: &HeaderMap) -> &str {
    headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()).unwrap_or("?")
}

pub async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let host = authority(&req).unwrap_or("");
    if !state.origins.hosts().allows(host) {
        let message = format!(
            "this server does not answer to the host {host:?}: open it by one of its own names, or add it with --allowed-hosts (SWITCHBOARD_ALLOWED_HOSTS)"
        );
        return ApiError::with_status(StatusCode::MISDIRECTED_REQUEST, "misdirected_request", message).into_response();
    }
    let headers = req.headers();
    if changes_state(req.method()) || is_upgrade(headers) {
        if !state.origins.allows(headers) {
            let what = if is_upgrade(headers) { "open the WebSocket" } else { "send requests that change anything" };
            let message = format!("origin {:?} may not {what} (SWITCHBOARD_ALLOWED_ORIGINS)", origin_of(headers));
            return ApiError::new(ErrorCode::Forbidden, message).into_response();
        }
    }
    if changes_state(req.method()) {
        let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        // an origin listed in --allowed-origins is another site on purpose (an app's
        // frontend calling the API with CORS)
        let listed = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()).is_some_and(|o| state.origins.listed(o));
        if site.is_some_and(|s| s.eq_ignore_ascii_case("cross-site")) && !listed {
            return ApiError::new(ErrorCode::Forbidden, "a cross-site page may not send requests that change anything").into_response();
        }
        // only a POST can come from a form (an artifact upload is a PUT of any type)
        if req.method() == Method::POST && is_form_type(headers) {
            let message = "this endpoint takes application/json (or no body): form and text/plain bodies are refused, so a cross-site form cannot reach it";
            return ApiError::with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
                .into_response();
        }
    }
    next.run(req).await
}
