//! The whole router: the API and WebSocket doors, then the server-rendered dashboard
//! and its static files (the WASM bundle, CSS, `public/`).

use crate::config::Config;
use crate::AppState;
use app::{shell, App};
use axum::Router;
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

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    Router::new()
        .nest("/api/v1", crate::api::v1())
        .merge(crate::api::doors())
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .with_state(state)
}
