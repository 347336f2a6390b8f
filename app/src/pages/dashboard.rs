//! `/`: the dashboard: start a pipeline, watch every run, read what happened.

use crate::client::browser;
use crate::components::activity_log::ActivityLog;
use crate::components::run_list::RunList;
use crate::components::start_form::StartForm;
use crate::live::use_live;
use leptos::prelude::*;
use leptos_meta::Title;

/// Offers browser notifications (a run completed or failed) until they are decided.
#[component]
fn NotificationOffer() -> impl IntoView {
    let askable = RwSignal::new(false);
    let allowed = RwSignal::new(false);
    Effect::new(move |_| {
        askable.set(browser::notifications_askable());
        allowed.set(browser::notifications_allowed());
    });
    let ask = move |_| browser::ask_notifications(move |ok| {
        allowed.set(ok);
        askable.set(false);
    });
    view! {
        <Show when=move || askable.get()>
            <button class="link" on:click=ask data-testid="enable-notifications">"Notify me when a run ends"</button>
        </Show>
        <Show when=move || allowed.get()>
            <span class="muted">"Browser notifications are on."</span>
        </Show>
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let live = use_live();
    let active = move || live.runs.with(|l| l.active());
    view! {
        <Title text="Dashboard · Switchboard"/>
        <h1>"Dashboard"</h1>
        <div class="dashboard-grid">
            <section class="panel" aria-labelledby="start-heading">
                <h2 id="start-heading">"Start a run"</h2>
                <StartForm/>
            </section>
            <section class="panel runs-panel" aria-labelledby="workflows-heading">
                <div class="panel-head">
                    <h2 id="workflows-heading">"Workflows"</h2>
                    <span class="muted" data-testid="active-count">{move || format!("{} active", active())}</span>
                </div>
                <RunList/>
            </section>
            <section class="panel" aria-labelledby="activity-heading">
                <div class="panel-head">
                    <h2 id="activity-heading">"Activity"</h2>
                    <NotificationOffer/>
                </div>
                <ActivityLog/>
            </section>
        </div>
    }
}
