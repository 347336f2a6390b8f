//! `/agents`: the agent monitor.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn Agents() -> impl IntoView {
    view! {
        <Title text="Agents · Switchboard"/>
        <h1>"Agents"</h1>
    }
}
