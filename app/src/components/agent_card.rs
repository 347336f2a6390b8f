//! One agent: its status, health, counters, capabilities, current task, when it was
//! last heard from, and its machine's load (CPU, memory and each GPU, as sparklines).

use super::badge::{state_name, StateBadge};
use super::sparkline::Sparkline;
use crate::model::machines::{MachineHistory, POINTS};
use crate::model::number::fixed;
use crate::model::workflow::human_duration;
use crate::protocol::AgentStatus;
use leptos::prelude::*;

#[component]
pub fn AgentCard(agent: Signal<Option<AgentStatus>>, machine: Signal<MachineHistory>) -> impl IntoView {
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
    let places = get(|a| match a.concurrency {
        Some(c) => format!("{} of {c}", a.running),
        None => a.running.to_string(),
    });
    let now_ms = crate::live::use_live().now_ms;
    let seen = move || {
        let now = now_ms.get();
        agent.with(|a| match a {
            // the server's own executor: always here
            Some(a) if a.concurrency.is_none() => "now (this server)".to_owned(),
            Some(AgentStatus { last_seen: Some(t), .. }) => format!("{} ago", human_duration(((now - *t as f64) / 1000.0).max(0.0))),
            _ => "never".into(),
        })
    };
    let load = move || {
        let h = machine.get();
        let now = agent.with(|a| a.as_ref().and_then(|a| a.machine.clone()));
        let Some(m) = now else {
            return view! { <p class="muted machine-none">"No machine figures (the server's own are in the bar above)"</p> }.into_any();
        };
        let cpu: Vec<f64> = h.cpu.iter().copied().collect();
        let mem: Vec<f64> = h.memory.iter().copied().collect();
        let gpus = h.gpus.into_iter().map(|(index, (name, util))| {
            let last = util.back().copied().unwrap_or(0.0);
            let values: Vec<f64> = util.into_iter().collect();
            let label = format!("GPU {index} ({name}) utilisation");
            view! {
                <div class="metric" data-testid="agent-gpu">
                    <span class="metric-label">{format!("GPU {index}")}</span>
                    <span class="metric-value">{format!("{}%", fixed(last, 0))}</span>
                    <Sparkline values=Signal::derive(move || values.clone()) label=label capacity=POINTS/>
                </div>
            }
        }).collect_view();
        view! {
            <div class="machine" data-testid="agent-machine">
                <div class="metric" data-testid="agent-cpu">
                    <span class="metric-label">"CPU"</span>
                    <span class="metric-value">{format!("{}%", fixed(m.cpu_percent, 0))}</span>
                    <Sparkline values=Signal::derive(move || cpu.clone()) label="CPU of its machine" capacity=POINTS/>
                </div>
                <div class="metric" data-testid="agent-memory">
                    <span class="metric-label">"Memory"</span>
                    <span class="metric-value">{format!("{}%", fixed(m.memory_percent, 0))}</span>
                    <Sparkline values=Signal::derive(move || mem.clone()) label="Memory of its machine" capacity=POINTS/>
                </div>
                {gpus}
            </div>
        }
        .into_any()
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
                <dt>"Running"</dt><dd data-testid="agent-running">{places}</dd>
                <dt>"Last seen"</dt><dd data-testid="agent-last-seen">{seen}</dd>
                <dt>"Stages run"</dt><dd data-testid="agent-messages">{get(|a| a.metrics.message_count.to_string())}</dd>
                <dt>"Errors"</dt><dd>{get(|a| format!("{} ({}%)", a.metrics.error_count, fixed(a.metrics.error_rate * 100.0, 0)))}</dd>
                <dt>"Average stage"</dt><dd>{get(|a| human_duration(a.metrics.avg_execution_time))}</dd>
                <dt>"Capabilities"</dt><dd>{get(|a| a.capabilities.join(", "))}</dd>
            </dl>
            {load}
        </article>
    }
}
