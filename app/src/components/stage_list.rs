//! A run's stages: status, duration (live while running), progress, and for a failed
//! stage its error and a Retry that reruns it and the stages after it.

use super::badge::{state_name, ProgressBar, StateBadge};
use super::run_controls::{restart_stage, Act};
use crate::live::use_live;
use crate::model::workflow::{human_duration, WorkflowModel};
use crate::protocol::{StageSnapshot, StageState};
use leptos::prelude::*;

#[component]
pub fn StageList(model: Memo<Option<WorkflowModel>>, workflow_id: String, can_act: Signal<bool>) -> impl IntoView {
    let ids = Memo::new(move |_| model.with(|m| m.as_ref().map(|m| m.stages.iter().map(|s| s.id.clone()).collect::<Vec<_>>()).unwrap_or_default()));
    view! {
        <ol class="stages" data-testid="stages" aria-label="Stages">
            <For each=move || ids.get() key=|id| id.clone() let:stage_id>
                <StageRow model workflow_id=workflow_id.clone() stage_id can_act/>
            </For>
        </ol>
    }
}

#[component]
fn StageRow(model: Memo<Option<WorkflowModel>>, workflow_id: String, stage_id: String, can_act: Signal<bool>) -> impl IntoView {
    let live = use_live();
    let busy = RwSignal::new(false);
    let act = Act::new();
    let key = stage_id.clone();
    let stage = Memo::new(move |_| model.with(|m| m.as_ref().and_then(|m| m.stages.iter().find(|s| s.id == key).cloned())));
    let run_finished = Memo::new(move |_| model.with(|m| m.as_ref().and_then(|m| m.state).is_some_and(|s| s.is_finished())));
    let get = move |f: fn(&StageSnapshot) -> String| move || stage.with(|s| s.as_ref().map(f).unwrap_or_default());
    let state = Signal::derive(get(|s| state_name(&s.status)));
    let progress = Signal::derive(move || stage.with(|s| s.as_ref().map_or(0.0, |s| s.progress)));
    let duration = move || {
        let s = stage.get()?;
        let start = s.started_at?;
        let end = s.finished_at.map_or_else(|| live.now_ms.get(), |f| f as f64);
        Some(human_duration((end - start as f64) / 1000.0))
    };
    let error = move || stage.with(|s| s.as_ref().and_then(|s| s.error.clone()).filter(|_| stage.with(|s| s.as_ref().is_some_and(|s| s.status != StageState::Completed))));
    let retryable = move || {
        run_finished.get() && stage.with(|s| s.as_ref().is_some_and(|s| matches!(s.status, StageState::Failed | StageState::Cancelled)))
    };
    let retry = {
        let (w, s) = (workflow_id.clone(), stage_id.clone());
        move |_| act.send(restart_stage(&w, &s), "Retry", busy)
    };
    let waiting = move || stage.with(|s| s.as_ref().is_some_and(|s| s.status == StageState::WaitingConfirmation));
    view! {
        <li class=move || format!("stage state-{}", state.get()) data-testid="stage" data-stage=stage_id.clone()>
            <span class="stage-index">{move || stage.with(|s| s.as_ref().map(|s| s.index + 1))}</span>
            <span class="stage-name">{get(|s| s.name.clone())}</span>
            <StateBadge state/>
            <ProgressBar value=progress label=format!("progress of stage {stage_id}")/>
            <span class="muted stage-duration" data-testid="stage-duration">{duration}</span>
            <Show when=waiting>
                <span class="attention">"waiting for your confirmation"</span>
            </Show>
            {move || error().map(|e| view! { <p class="stage-error" role="alert" data-testid="stage-error">{e}</p> })}
            <Show when=retryable>
                <button data-testid="retry" on:click=retry.clone() disabled=move || busy.get() || !can_act.get()>"Retry"</button>
            </Show>
        </li>
    }
}
