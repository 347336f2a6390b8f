//! Every HTTP request's first stop: who sent it (the principal, put in the request's
//! extensions for handlers to check) and whether its budget allows it. The budget is
//! per token subject with auth on, per client address otherwise (PROTOCOL.md section
//! 6: 10,000 requests a second by default, so a producer with a valid token is not
//! throttled by a person's budget); over it: 429 `rate_limited`.

use super::error::ApiError;
use crate::AppState;
use app::protocol::ErrorCode;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

/// The HTTP budgets, by key.
#[derive(Clone)]
pub struct HttpLimits {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl HttpLimits {
    /// `per_s` requests a second, in bursts of as many.
    pub fn new(per_s: u32) -> HttpLimits {
        let n = NonZeroU32::new(per_s).unwrap_or(NonZeroU32::MIN);
        HttpLimits { limiter: Arc::new(RateLimiter::keyed(Quota::per_second(n).allow_burst(n))) }
    }

    fn allow(&self, key: &str) -> bool {
        self.limiter.check_key(&key.to_owned()).is_ok()
    }

    /// Forgets keys whose budget is full again (the janitor calls it now and then).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

fn client_addr(req: &Request) -> String {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map_or_else(|| "unknown".into(), |c| c.0.ip().to_string())
}

fn rate_limited(state: &AppState) -> Response {
    state.hub.counters().reject(ErrorCode::RateLimited);
    let mut resp = ApiError::new(ErrorCode::RateLimited, "too many requests: slow down and retry in a second").into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// The API's doors: a principal (or 401) and the budget of its key.
pub async fn authenticated(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let principal = state.auth.principal(req.headers(), None);
    let key = match &principal {
        Ok(p) if state.auth.is_on() => format!("sub:{}", p.sub),
        _ => format!("addr:{}", client_addr(&req)),
    };
    if !state.http_limits.allow(&key) {
        return rate_limited(&state);
    }
    match principal {
        Ok(p) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Err(e) => ApiError::unauthorized(e.to_string()).into_response(),
    }
}

/// Doors that check their own credentials (the WebSocket, the sign-in link): the
/// budget of the client's address only.
pub async fn budget_only(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.http_limits.allow(&format!("addr:{}", client_addr(&req))) {
        return rate_limited(&state);
    }
    next.run(req).await
}
