//! `/agents`: the agent monitor: the coordinator's figures and a card per agent, live.

use crate::client::{http, use_connection, Loader};
use crate::components::agent_card::AgentCard;
use crate::live::use_live;
use crate::model::machines::MachineHistory;
use crate::protocol::{names, AgentList, AgentStatus, CoordinatorMetrics, AGENTS_TOPIC};
use leptos::prelude::*;
use leptos_meta::Title;
use std::collections::HashMap;
use std::rc::Rc;

/// The route: its code is loaded when the page is first opened (a split release build).
pub struct AgentsRoute;

#[leptos_router::lazy_route]
impl leptos_router::LazyRoute for AgentsRoute {
    fn data() -> Self {
        AgentsRoute
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <Agents/> }.into_any()
    }
}

#[component]
pub fn Agents() -> impl IntoView {
    let live = use_live();
    let agents: RwSignal<Vec<AgentStatus>> = RwSignal::new(Vec::new());
    let loaded = RwSignal::new(false);
    let history: RwSignal<HashMap<String, MachineHistory>> = RwSignal::new(HashMap::new());
    let record = move |s: &AgentStatus| history.update(|h| h.entry(s.agent_name.clone()).or_default().record(s));
    let load: Loader = Rc::new(move || {
        Box::pin(async move {
            let list: AgentList = http::get_json("/api/v1/agents").await.ok()?;
            list.agents.iter().for_each(record);
            agents.set(list.agents);
            live.coordinator.set(Some(list.coordinator));
            loaded.set(true);
            Some(list.seq)
        })
    });
    use_connection().subscribe_synced(AGENTS_TOPIC, load, move |ev| {
        if ev.event != names::AGENT_STATUS {
            return;
        }
        let Ok(status) = ev.payload::<AgentStatus>() else { return };
        record(&status);
        agents.update(|list| match list.iter_mut().find(|a| a.agent_name == status.agent_name) {
            Some(a) => *a = status,
            None => list.push(status),
        });
    });
    let names = Memo::new(move |_| agents.with(|a| a.iter().map(|a| a.agent_name.clone()).collect::<Vec<_>>()));
    let figure = move |f: fn(&CoordinatorMetrics) -> u64| move || live.coordinator.with(|c| c.as_ref().map_or("—".into(), |c| f(c).to_string()));
    view! {
        <Title text="Agents · Switchboard"/>
        <h1>"Agents"</h1>
        <section class="panel" aria-labelledby="coordinator-heading">
            <h2 id="coordinator-heading">"Coordinator"</h2>
            <dl class="figures coordinator" data-testid="coordinator">
                <dt>"Agents"</dt><dd data-testid="registered-agents">{figure(|c| c.registered_agents)}</dd>
                <dt>"Healthy"</dt><dd data-testid="healthy-agents">{figure(|c| c.healthy_agents)}</dd>
                <dt>"Active runs"</dt><dd data-testid="active-workflows">{figure(|c| c.active_workflows)}</dd>
                <dt>"Runs"</dt><dd>{figure(|c| c.total_workflows)}</dd>
                <dt>"Connections"</dt><dd>{figure(|c| c.connections)}</dd>
                <dt>"Messages"</dt><dd>{figure(|c| c.total_messages)}</dd>
            </dl>
        </section>
        <Show when=move || loaded.get() fallback=|| view! { <p class="muted">"Loading agents…"</p> }>
            <div class="agent-grid">
                <For each=move || names.get() key=|n| n.clone() let:name>
                    {
                        let key = name.clone();
                        let agent = Signal::derive(move || agents.with(|a| a.iter().find(|x| x.agent_name == name).cloned()));
                        let machine = Signal::derive(move || history.with(|h| h.get(&key).cloned().unwrap_or_default()));
                        view! { <AgentCard agent machine/> }
                    }
                </For>
            </div>
        </Show>
    }
}
