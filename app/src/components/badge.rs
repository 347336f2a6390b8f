//! A run's or a stage's state as a coloured badge, and its progress as a bar with its
//! percentage (both readable without colour).

use crate::model::number::fixed;
use leptos::prelude::*;
use serde::Serialize;

/// The protocol's name of a state (`waiting_confirmation`), for classes and tests.
pub fn state_name<T: Serialize>(state: &T) -> String {
    serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The same, for people: `waiting confirmation`.
pub fn state_label<T: Serialize>(state: &T) -> String {
    state_name(state).replace('_', " ")
}

#[component]
pub fn StateBadge(#[prop(into)] state: Signal<String>) -> impl IntoView {
    view! {
        <span class=move || format!("badge state-{}", state.get()) data-testid="state">
            {move || state.get().replace('_', " ")}
        </span>
    }
}

#[component]
pub fn ProgressBar(#[prop(into)] value: Signal<f64>, #[prop(into)] label: String) -> impl IntoView {
    let pct = move || format!("{}%", fixed((value.get() * 100.0).clamp(0.0, 100.0), 0));
    view! {
        <span class="progress">
            <progress max="1" value=move || fixed(value.get().clamp(0.0, 1.0), 3) aria-label=label></progress>
            <span class="progress-pct" data-testid="progress-pct">{pct}</span>
        </span>
    }
}
