//! The whole router: the API and WebSocket doors, then the server-rendered dashboard
//! and its static files (the WASM bundle, CSS, `public/`).

use crate::config::Config;
use crate::AppState;
use app::{shell, App};
use axum::http::{header, HeaderName, HeaderValue};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::net::SocketAddr;

/// Name of the built bundle: `pkg/switchboard.{js,wasm,css}`.
const OUTPUT_NAME: &str = "switchboard";

/// Under `cargo leptos` (which sets `LEPTOS_OUTPUT_NAME`), its settings; otherwise the
/// server's own, so the binary runs by itself against a built `target/site`.
pub fn leptos_options(config: &Config, addr: SocketAddr) -> LeptosOptions {
    if std::env::var_os("LEPTOS_OUTPUT_NAME").is_some() {
        if let Ok(conf) = leptos::config::get_configuration(None) {
            let mut options = conf.leptos_options;
            options.site_addr = addr;
            return options;
        }
    }
    LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}

/// Headers every response carries. The Content-Security-Policy of pages is set
/// per page by `app::shell` (it holds that response's script nonce).
fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 4] {
    let set = |name, value| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value));
    [
        set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        set(header::REFERRER_POLICY, "no-referrer"),
        set(header::X_FRAME_OPTIONS, "DENY"),
        set(HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    ]
}

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    let [nosniff, referrer, frames, opener] = security_headers();
    Router::new()
        .nest("/api/v1", crate::api::v1(&state).layer(crate::api::cors::layer(&state.origins)))
        .merge(crate::api::doors(&state))
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::api::gate::gate))
        .layer(nosniff)
        .layer(referrer)
        .layer(frames)
        .layer(opener)
        .with_state(state)
}
