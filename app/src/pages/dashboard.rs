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
            <p class="muted">"Runs started here or published by your backends appear in this list."</p>
        </section>
    }
}
