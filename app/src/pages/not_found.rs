//! Any other path.

use leptos::prelude::*;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(http_status_not_found());
    }
    view! {
        <h1>"Not found"</h1>
        <p><a href="/">"Back to the dashboard"</a></p>
    }
}

#[cfg(feature = "ssr")]
fn http_status_not_found() -> http::StatusCode {
    http::StatusCode::NOT_FOUND
}
