//! The header on every page: the product name, navigation and the connection state.

use super::connection_indicator::ConnectionIndicator;
use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn Header() -> impl IntoView {
    view! {
        <header class="site-header">
            <a class="brand" href="/">"Switchboard"</a>
            <nav aria-label="Main">
                <A href="/" exact=true>"Dashboard"</A>
                <A href="/agents">"Agents"</A>
            </nav>
            <ConnectionIndicator/>
        </header>
    }
}
