//! The header on every page: the product name, navigation, and the metrics bar with
//! the connection state.

use super::metrics_bar::MetricsBar;
use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn Header() -> impl IntoView {
    view! {
        <header class="site-header">
            <div class="header-row">
                <a class="brand" href="/">"Switchboard"</a>
                <nav aria-label="Main">
                    <A href="/" exact=true>"Dashboard"</A>
                    <A href="/agents">"Agents"</A>
                    <A href="/topics">"Topics"</A>
                </nav>
            </div>
            <MetricsBar/>
        </header>
    }
}
