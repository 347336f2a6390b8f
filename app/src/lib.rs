//! Switchboard's shared crate: the wire protocol (`protocol`, plain serde), and the
//! Leptos app (components, pages, and the browser's WebSocket client), compiled for
//! the server with `ssr` and for the browser with `hydrate`.
// the views nest deeply in release builds (no `erase_components` there)
#![recursion_limit = "256"]

pub mod client;
pub mod components;
pub mod live;
pub mod model;
pub mod pages;
pub mod protocol;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, Lazy};

/// The page's Content-Security-Policy: scripts only from here or carrying this
/// response's nonce (the hydration script), WebAssembly allowed to compile, no
/// framing. Inline `style` attributes are allowed: the terminal colours and the
/// windowed list's offsets are set through them.
#[cfg(feature = "ssr")]
fn set_content_security_policy(options: &LeptosOptions) {
    let (Some(nonce), Some(resp)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>()) else {
        return;
    };
    // `cargo leptos watch` reloads the page through a socket of its own
    let reload = std::env::var_os("LEPTOS_WATCH")
        .map(|_| format!(" ws://{}:{}", options.site_addr.ip(), options.reload_port))
        .unwrap_or_default();
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; connect-src 'self'{reload}; object-src 'none'; base-uri 'self'; \
         form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = http::HeaderValue::from_str(&csp) {
        resp.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy(&options);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The whole dashboard: one live connection shared by every page.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    client::provide_connection();
    components::toasts::provide_toasts();
    live::provide_live();

    view! {
        <Stylesheet id="leptos" href="/pkg/switchboard.css"/>
        <Title text="Switchboard"/>
        <Router>
            <components::header::Header/>
            <components::toasts::ToastRegion/>
            <main id="main">
                <Routes fallback=|| view! { <pages::not_found::NotFound/> }>
                    <Route path=path!("/") view=pages::dashboard::Dashboard/>
                    <Route path=path!("/workflows/:id") view=pages::workflow::Workflow/>
                    // loaded on first use in a split build (`cargo leptos build --release --split`)
                    <Route path=path!("/agents") view={Lazy::<pages::agents::AgentsRoute>::new()}/>
                    <Route path=path!("/topics") view={Lazy::<pages::topics::TopicsRoute>::new()}/>
                    <Route path=path!("/topics/:name") view={Lazy::<pages::topic::TopicRoute>::new()}/>
                </Routes>
            </main>
        </Router>
    }
}
