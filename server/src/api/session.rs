//! How a person gets in. `GET /login?code=…` spends the one-time code the server
//! printed and sets the session cookie (HttpOnly, SameSite=Strict); `GET
//! /api/v1/session` then gives the page a short-lived access token for its WebSocket.
//! With auth off there is nothing to get: every door is open on loopback.

use super::error::ApiError;
use crate::auth::{Principal, SESSION_COOKIE};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

/// `GET /api/v1/session` (behind the guard: a 401 there says "not signed in").
pub async fn session(State(state): State<AppState>, Extension(who): Extension<Principal>) -> Result<Response, ApiError> {
    let Some(minted) = state.auth.access_token_for(&who) else {
        return Ok(Json(json!({ "auth": false, "control": true })).into_response());
    };
    let (token, exp) = minted.map_err(|e| ApiError::new(app::protocol::ErrorCode::Internal, e.to_string()))?;
    let body = json!({
        "auth": true,
        "sub": who.sub.as_ref(),
        "token": token,
        "expires_at": exp as i64 * 1000,
        "control": who.may_control(),
    });
    // a token in a response: never cached
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    code: String,
}

/// `GET /login?code=…`: signs this browser in, once per printed code.
pub async fn login(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    if !state.auth.is_on() {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    }
    match state.auth.login(&q.code) {
        Ok((token, ttl)) => {
            let secure = if state.public_url.starts_with("https://") { "; Secure" } else { "" };
            let cookie = format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}", ttl.as_secs());
            if let Some(next) = state.auth.login_path() {
                tracing::info!("signed a browser in; the next sign-in link is {}{next}", state.public_url);
            }
            let Ok(cookie) = HeaderValue::from_str(&cookie) else {
                return ApiError::new(app::protocol::ErrorCode::Internal, "cannot set the session cookie").into_response();
            };
            let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => (StatusCode::UNAUTHORIZED, [(header::CACHE_CONTROL, "no-store")], e.to_string()).into_response(),
    }
}
