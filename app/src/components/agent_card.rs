//! One agent: its status, health, counters, capabilities and current task.

use super::badge::{state_name, StateBadge};
use crate::model::number::fixed;
use crate::model::workflow::human_duration;
use crate::protocol::AgentStatus;
use leptos::prelude::*;

#[component]
pub fn AgentCard(agent: Signal<Option<AgentStatus>>) -> impl IntoView {
    let get = move |f: fn(&AgentStatus) -> String| move || agent.with(|a| a.as_ref().map(f).unwrap_or_default());
    let state = Signal::derive(get(|a| state_name(&a.status)));
    let health = get(|a| if a.metrics.is_healthy { "healthy".into() } else { "unhealthy".into() });
    let task = move || {
        agent.with(|a| match a.as_ref().and_then(|a| a.current_task.clone()) {
            Some(t) => {
                let run = t.split('/').next().unwrap_or_default().to_owned();
                view! { <a href=format!("/workflows/{run}") data-testid="agent-task">{t}</a> }.into_any()
            }
            None => view! { <span class="muted" data-testid="agent-task">"none"</span> }.into_any(),
        })
    };
    view! {
        <article class="panel agent-card" data-testid="agent" data-agent=get(|a| a.agent_name.clone())>
            <header class="agent-head">
                <h2>{get(|a| a.agent_name.clone())}</h2>
                <StateBadge state/>
                <span class=move || format!("health {}", health()) data-testid="agent-health">{health}</span>
            </header>
            <dl class="figures">
                <dt>"Current task"</dt><dd>{task}</dd>
                <dt>"Stages run"</dt><dd data-testid="agent-messages">{get(|a| a.metrics.message_count.to_string())}</dd>
                <dt>"Errors"</dt><dd>{get(|a| format!("{} ({}%)", a.metrics.error_count, fixed(a.metrics.error_rate * 100.0, 0)))}</dd>
                <dt>"Average stage"</dt><dd>{get(|a| human_duration(a.metrics.avg_execution_time))}</dd>
                <dt>"Capabilities"</dt><dd>{get(|a| a.capabilities.join(", "))}</dd>
            </dl>
        </article>
    }
}
