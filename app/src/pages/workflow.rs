//! `/workflows/:id`: one run, live: its stages, progress and ETA, controls, terminal,
//! metric charts, artifacts and chat. Its state is the snapshot's structure replayed
//! through the run's durable log (over HTTP), then every live event after it, so the
//! page and the log cannot disagree, across reconnects and server restarts alike.

use crate::client::{http, use_connection, Loader};
use crate::components::artifact_gallery::ArtifactGallery;
use crate::components::badge::{state_name, ProgressBar, StateBadge};
use crate::components::chat::ChatPanel;
use crate::components::metric_chart::MetricChart;
use crate::components::run_controls::RunControls;
use crate::components::stage_list::StageList;
use crate::components::terminal::{Terminal, TerminalView};
use crate::live::use_live;
use crate::model::number::fixed;
use crate::model::workflow::{human_duration, Applied, WorkflowModel};
use crate::protocol::{names, EventMessage, HistoryPage, LogLevel, TerminalOutput, TopicKind, WorkflowSnapshot};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use std::rc::Rc;

/// Events asked for per history request while a page rebuilds a run.
const HISTORY_PAGE: usize = 1_000;
/// Notifications shown at the top of a run's page, the newest first.
const NOTICES_SHOWN: usize = 3;

#[component]
pub fn Workflow() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    // a new id is a new page: its own subscription, model and terminal
    move || {
        let id = id.get();
        view! { <WorkflowPage id/> }
    }
}

/// The run's snapshot and its log up to the snapshot's seq, applied to a fresh model;
/// the terminal's lines come back apart. Err(true) when there is no such run.
async fn rebuild(id: &str, topic: &str) -> Result<(WorkflowModel, Vec<TerminalOutput>, u64), bool> {
    let snap: WorkflowSnapshot = http::get_json(&format!("/api/v1/workflows/{id}")).await.map_err(|e| e.status == Some(404))?;
    let mut model = WorkflowModel::initial(&snap);
    let mut output = Vec::new();
    let mut since = 0;
    while since < snap.seq {
        let url = format!("/api/v1/topics/{topic}/history?since={since}&limit={HISTORY_PAGE}");
        let page: HistoryPage = http::get_json(&url).await.map_err(|_| false)?;
        let Some(last) = page.events.last().map(|e| e.seq) else { break };
        for ev in page.events.iter().filter(|e| e.seq <= snap.seq) {
            if let Applied::Terminal(t) = model.apply(ev) {
                output.push(t);
            }
        }
        since = last;
    }
    Ok((model, output, snap.seq))
}

#[component]
fn WorkflowPage(id: String) -> impl IntoView {
    let live = use_live();
    let model: RwSignal<Option<WorkflowModel>> = RwSignal::new(None);
    let missing = RwSignal::new(false);
    let terminal = Terminal::new();
    let topic = TopicKind::Workflow.topic(&id).ok();
    if let Some(topic) = topic.clone() {
        let (lid, ltopic) = (id.clone(), topic.clone());
        let load: Loader = Rc::new(move || {
            let (id, topic) = (lid.clone(), ltopic.clone());
            Box::pin(async move {
                match rebuild(&id, &topic).await {
                    Ok((m, output, seq)) => {
                        terminal.update(|b| {
                            b.clear();
                            for t in &output {
                                b.push_output(&t.stage_id, t.stream, &t.output);
                            }
                        });
                        model.set(Some(m));
                        Some(seq)
                    }
                    Err(true) => {
                        missing.set(true);
                        Some(0)
                    }
                    Err(false) => None,
                }
            })
        });
        use_connection().subscribe_synced(&topic, load, move |ev: &EventMessage| {
            // the hot path: terminal batches skip the model entirely
            if ev.event == names::TERMINAL_OUTPUT {
                if let Ok(t) = ev.payload::<TerminalOutput>() {
                    terminal.update(|b| b.push_output(&t.stage_id, t.stream, &t.output));
                }
                return;
            }
            model.update(|m| {
                if let Some(m) = m {
                    m.apply(ev);
                }
            });
        });
    } else {
        missing.set(true);
    }
    let m = Memo::new(move |_| model.get());
    let name = move || m.with(|m| m.as_ref().map(|m| m.name.clone()).unwrap_or_default());
    let state = Signal::derive(move || m.with(|m| m.as_ref().and_then(|m| m.state).map(|s| state_name(&s)).unwrap_or_else(|| "pending".into())));
    let progress = Signal::derive(move || m.with(|m| m.as_ref().map_or(0.0, |m| m.progress)));
    let eta = move || {
        m.with(|m| {
            let m = m.as_ref()?;
            // an ETA means something only while the run is making progress
            let eta = m.eta_s.filter(|_| m.state == Some(crate::protocol::WorkflowState::Running))?;
            Some(format!("ETA {}", human_duration(eta)))
        })
    };
    let elapsed = move || {
        m.with(|m| {
            let m = m.as_ref()?;
            let start = m.started_at? as f64;
            let end = m.finished_at.map_or_else(|| live.now_ms.get(), |f| f as f64);
            Some(format!("{} elapsed", human_duration((end - start) / 1000.0)))
        })
    };
    let error = move || m.with(|m| m.as_ref().and_then(|m| m.error.clone()));
    // announced to screen readers: the stage and every tenth of progress, not each tick
    let announcement = Memo::new(move |_| {
        m.with(|m| {
            let m = m.as_ref()?;
            let stage = m.stage_index.and_then(|i| m.stages.get(i)).map(|s| format!(", stage {}", s.name)).unwrap_or_default();
            let tenth = (m.progress * 10.0).floor() * 10.0;
            Some(format!("{} {}{stage}, {}%", m.name, state.get().replace('_', " "), fixed(tenth, 0)))
        })
    });
    let can_act = Signal::derive(move || live.can_control.get());
    let export_name = format!("switchboard-{id}.txt");
    let logs = move || {
        m.with(|m| {
            m.as_ref().map(|m| {
                m.logs
                    .iter()
                    .map(|l| {
                        let class = match l.level {
                            LogLevel::Error => "log error",
                            LogLevel::Warning => "log warning",
                            _ => "log",
                        };
                        view! { <li class=class>{l.message.clone()}</li> }
                    })
                    .collect_view()
            })
        })
    };
    // the run's notifications (a gate waiting for you, the end), newest first
    let notices = move || {
        m.with(|m| {
            m.as_ref().map(|m| {
                m.notifications
                    .iter()
                    .rev()
                    .take(NOTICES_SHOWN)
                    .map(|n| {
                        let class = format!("notification priority-{}", n.priority);
                        view! { <li class=class data-testid="notification"><strong>{n.title.clone()}</strong>" "{n.message.clone()}</li> }
                    })
                    .collect_view()
            })
        })
    };
    let wid = id.clone();
    view! {
        <Title text=move || format!("{} · Switchboard", if name().is_empty() { "Workflow".into() } else { name() })/>
        <Show when=move || !missing.get() fallback=move || view! {
            <h1>"No such run"</h1>
            <p>"There is no workflow " <code>{wid.clone()}</code> ". " <a href="/">"Back to the dashboard"</a></p>
        }>
            <header class="run-head">
                <div>
                    <h1 data-testid="run-name">{move || if name().is_empty() { "Loading…".to_owned() } else { name() }}</h1>
                    <code class="muted">{id.clone()}</code>
                </div>
                <StateBadge state/>
                <ProgressBar value=progress label="overall progress".to_string()/>
                <span class="muted" data-testid="eta">{eta}</span>
                <span class="muted">{elapsed}</span>
                <RunControls model=m workflow_id=id.clone() can_act/>
            </header>
            <p class="visually-hidden" aria-live="polite" data-testid="announce">{move || announcement.get()}</p>
            {move || error().map(|e| view! { <p class="run-error" role="alert" data-testid="run-error">{e}</p> })}
            <ul class="notifications" data-testid="notifications" aria-label="Notifications">{notices}</ul>
            <div class="run-grid">
                <section class="panel" aria-labelledby="stages-heading">
                    <h2 id="stages-heading">"Stages"</h2>
                    <StageList model=m workflow_id=id.clone() can_act/>
                    <ul class="logs" data-testid="logs">{logs}</ul>
                </section>
                <ChatPanel model=m workflow_id=id.clone() can_act/>
                <TerminalView terminal export_name=export_name.clone()/>
                <MetricChart model=m/>
                <ArtifactGallery model=m/>
            </div>
        </Show>
    }
}
