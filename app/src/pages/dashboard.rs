//! `/`: the dashboard.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn Dashboard() -> impl IntoView {
    view! {
        <Title text="Dashboard · Switchboard"/>
        <h1>"Dashboard"</h1>
        <section class="panel" aria-labelledby="workflows-heading">
            <h2 id="workflows-heading">"Workflows"</h2>
            <p class="muted">
                "Start a run with " <code>"POST /api/v1/workflows"</code>
                " (see the README); its live progress is on the metrics bar above. "
                "The list of runs is not shown here yet."
            </p>
        </section>
    }
}
