//! The form that starts a pipeline: pick one of the server's pipelines, start it; the
//! new run appears in the list (and a toast links to it).

use super::toasts::{use_toasts, ToastKind};
use crate::client::http;
use crate::protocol::{PipelineInfo, PipelineList, WorkflowSnapshot};
use leptos::prelude::*;

#[component]
pub fn StartForm() -> impl IntoView {
    let toasts = use_toasts();
    let pipelines: RwSignal<Option<Result<Vec<PipelineInfo>, http::HttpError>>> = RwSignal::new(None);
    let chosen = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    // effects run in the browser only: the server renders the form as loading
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            let list = http::get_json::<PipelineList>("/api/v1/pipelines").await.map(|l| l.pipelines);
            if let Ok(first) = list.as_ref().map(|l| l.first().map(|p| p.name.clone())) {
                chosen.set(first.unwrap_or_default());
            }
            pipelines.set(Some(list));
        });
    });
    let description = move || {
        pipelines.with(|p| {
            let list = p.as_ref()?.as_ref().ok()?;
            let p = list.iter().find(|p| p.name == chosen.get())?;
            let stages: Vec<String> = p.stages.iter().map(|s| s.name.clone().unwrap_or_else(|| s.id.clone())).collect();
            Some(format!("{} Stages: {}.", p.description.clone().unwrap_or_default(), stages.join(", ")))
        })
    };
    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = chosen.get_untracked();
        if name.is_empty() || busy.get_untracked() {
            return;
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            let body = serde_json::json!({ "pipeline": name });
            match http::post_json::<WorkflowSnapshot>("/api/v1/workflows", &body).await {
                Ok(run) => toasts.push(
                    ToastKind::Success,
                    format!("Started {}", run.name),
                    format!("run {}", run.id),
                    Some(format!("/workflows/{}", run.id)),
                ),
                Err(e) => toasts.error(format!("Could not start {name}"), e.message),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="start-form" on:submit=start aria-label="Start a pipeline">
            <label for="pipeline">"Pipeline"</label>
            {move || match pipelines.get() {
                None => view! { <select id="pipeline" disabled=true><option>"Loading…"</option></select> }.into_any(),
                Some(Err(e)) => view! { <p class="error" role="alert">{format!("Cannot list pipelines: {e}")}</p> }.into_any(),
                Some(Ok(list)) if list.is_empty() => {
                    view! { <p class="muted">"No pipelines: add a .toml file to the pipelines folder."</p> }.into_any()
                }
                Some(Ok(list)) => view! {
                    <select id="pipeline" data-testid="pipeline-select"
                        on:change=move |ev| chosen.set(event_target_value(&ev)) prop:value=move || chosen.get()>
                        {list.into_iter().map(|p| view! { <option value=p.name.clone()>{p.name.clone()}</option> }).collect_view()}
                    </select>
                }
                .into_any(),
            }}
            <button type="submit" class="primary" data-testid="start" disabled=move || busy.get() || chosen.with(String::is_empty)>
                {move || if busy.get() { "Starting…" } else { "Start" }}
            </button>
            <p class="muted form-help">{description}</p>
        </form>
    }
}
