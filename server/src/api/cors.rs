//! CORS for the HTTP API: an app's frontend on another origin (its own dev server, its
//! own domain) fetches snapshots and history and acts on runs with a token in
//! `Authorization`. Only the origins listed in `--allowed-origins` get the headers (the
//! dashboard is same-origin and needs none); credentials (cookies) are never allowed
//! cross-origin, so a listed `*` reflects the origin and still sends no cookie.

use crate::auth::origin::Origins;
use axum::http::{header, HeaderValue, Method};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

pub fn layer(origins: &Origins) -> CorsLayer {
    let origins = origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| origin.to_str().is_ok_and(|o| origins.listed(o))))
        .allow_methods([Method::GET, Method::POST, Method::PUT])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER])
        .allow_credentials(false)
        .max_age(PREFLIGHT_MAX_AGE)
}
