//! The dashboard's list of runs: live state, progress and ETA for each, newest first.

use super::badge::{state_name, ProgressBar, StateBadge};
use crate::live::use_live;
use crate::model::runs::RunSummary;
use crate::model::workflow::human_duration;
use leptos::prelude::*;

#[component]
pub fn RunList() -> impl IntoView {
    let live = use_live();
    let ids = Memo::new(move |_| live.runs.with(|l| l.runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>()));
    let empty = move || live.runs_loaded.get() && ids.with(Vec::is_empty);
    view! {
        <Show when=move || live.runs_loaded.get() fallback=|| view! { <p class="muted">"Loading runs…"</p> }>
            <Show when=move || !empty() fallback=|| view! { <p class="muted" data-testid="no-runs">"No runs yet: start one above."</p> }>
                <ul class="run-list" data-testid="run-list">
                    <For each=move || ids.get() key=|id| id.clone() let:id>
                        <RunRow id/>
                    </For>
                </ul>
                <Show when=move || live.older.with(Option::is_some)>
                    <button class="more" data-testid="older-runs" on:click=move |_| leptos::task::spawn_local(crate::live::load_older(live))>
                        "Older runs"
                    </button>
                </Show>
            </Show>
        </Show>
    }
}

/// One run; it reads its own fields, so a progress change redraws one row.
#[component]
fn RunRow(id: String) -> impl IntoView {
    let live = use_live();
    let key = id.clone();
    let run = Memo::new(move |_| live.runs.with(|l| l.runs.iter().find(|r| r.id == key).cloned()));
    let field = move |f: fn(&RunSummary) -> String| move || run.with(|r| r.as_ref().map(f).unwrap_or_default());
    let state = Signal::derive(field(|r| state_name(&r.state)));
    let progress = Signal::derive(move || run.with(|r| r.as_ref().map_or(0.0, |r| r.progress)));
    let eta = move || {
        run.with(|r| {
            let r = r.as_ref()?;
            let eta = r.eta_s.filter(|_| r.state == crate::protocol::WorkflowState::Running)?;
            Some(format!("ETA {}", human_duration(eta)))
        })
    };
    let name = field(|r| r.name.clone());
    view! {
        <li class="run" data-testid="run" data-id=id.clone()>
            <a class="run-name" href=format!("/workflows/{id}")>{name}</a>
            <code class="run-id muted">{id.clone()}</code>
            <StateBadge state/>
            <ProgressBar value=progress label=format!("progress of run {id}")/>
            <span class="muted run-eta">{eta}</span>
        </li>
    }
}
