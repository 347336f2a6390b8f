//! `/workflows/:id`: one run.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn Workflow() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    view! {
        <Title text=move || format!("Workflow {} · Switchboard", id())/>
        <h1>"Workflow " <code>{id}</code></h1>
    }
}
