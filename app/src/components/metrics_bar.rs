//! The metrics bar on every page: CPU, memory, each GPU, the job queue, the current
//! task and the connection, each figure with a sparkline of the last 10 minutes,
//! backfilled from the `metrics` topic's history when the page loads.

use super::connection_indicator::ConnectionIndicator;
use super::sparkline::Sparkline;
use crate::client::use_connection;
use crate::model::number::fixed;
use crate::protocol::{MetricsSample, TimestampMs, METRICS_TOPIC};
use leptos::prelude::*;
use std::collections::VecDeque;

/// How far back the sparklines reach.
const WINDOW_MS: TimestampMs = 10 * 60 * 1000;
/// Most points a sparkline draws (10 minutes at the default 2 s interval).
const POINTS: usize = 300;

fn gib(bytes: u64) -> String {
    fixed(bytes as f64 / (1u64 << 30) as f64, 1)
}

fn pct(v: f64) -> String {
    format!("{}%", fixed(v, 1))
}

#[derive(Clone, PartialEq)]
struct GpuView {
    index: u32,
    name: String,
    util: Option<f64>,
    mem: Option<f64>,
    series: Vec<f64>,
}

#[component]
pub fn MetricsBar() -> impl IntoView {
    let samples: RwSignal<VecDeque<(TimestampMs, MetricsSample)>> = RwSignal::new(VecDeque::new());
    use_connection().subscribe(METRICS_TOPIC, Some(0), move |ev| {
        let Ok(sample) = ev.payload::<MetricsSample>() else { return };
        samples.update(|s| {
            s.push_back((ev.ts, sample));
            while s.front().is_some_and(|(ts, _)| ev.ts - ts > WINDOW_MS) {
                s.pop_front();
            }
        });
    });
    let latest = Memo::new(move |_| samples.with(|s| s.back().map(|(_, m)| m.clone())));
    let series = move |f: fn(&MetricsSample) -> f64| {
        Signal::derive(move || samples.with(|s| s.iter().map(|(_, m)| f(m)).collect::<Vec<f64>>()))
    };
    let cpu = move || latest.get().map(|m| pct(m.cpu_percent)).unwrap_or_else(|| "—".into());
    let mem = move || latest.get().map(|m| pct(m.memory_percent)).unwrap_or_else(|| "—".into());
    let mem_detail = move || {
        latest.get().map(|m| format!("{} / {} GiB", gib(m.memory_used_bytes), gib(m.memory_total_bytes)))
    };
    let gpus = Memo::new(move |_| {
        samples.with(|s| {
            let Some((_, last)) = s.back() else { return Vec::new() };
            last.gpus
                .iter()
                .map(|g| GpuView {
                    index: g.index,
                    name: g.name.clone(),
                    util: g.util_percent,
                    mem: match (g.memory_used_bytes, g.memory_total_bytes) {
                        (Some(u), Some(t)) if t > 0 => Some(100.0 * u as f64 / t as f64),
                        _ => None,
                    },
                    series: s
                        .iter()
                        .filter_map(|(_, m)| m.gpus.iter().find(|x| x.index == g.index).and_then(|x| x.util_percent))
                        .collect(),
                })
                .collect()
        })
    });
    let has_sample = move || latest.with(Option::is_some);
    let queue = move || latest.get().map(|m| format!("{} pending · {} running", m.pending_count, m.running_count));
    let task = move || latest.get().and_then(|m| m.current_task);

    view! {
        <section class="metrics-bar" aria-label="System metrics">
            <div class="metric" data-testid="metric-cpu">
                <span class="metric-label">"CPU"</span>
                <span class="metric-value" data-testid="cpu-value">{cpu}</span>
                <Sparkline values=series(|m| m.cpu_percent) label="CPU, last 10 minutes" capacity=POINTS/>
            </div>
            <div class="metric" data-testid="metric-memory">
                <span class="metric-label">"Memory"</span>
                <span class="metric-value" data-testid="memory-value">{mem}</span>
                <span class="metric-detail">{mem_detail}</span>
                <Sparkline values=series(|m| m.memory_percent) label="Memory, last 10 minutes" capacity=POINTS/>
            </div>
            {move || {
                let list = gpus.get();
                if list.is_empty() {
                    let text = if has_sample() { "none" } else { "—" };
                    view! {
                        <div class="metric" data-testid="metric-gpu">
                            <span class="metric-label">"GPU"</span>
                            <span class="metric-value muted">{text}</span>
                        </div>
                    }
                    .into_any()
                } else {
                    list.into_iter()
                        .map(|g| {
                            let label = format!("GPU {} utilisation, last 10 minutes", g.index);
                            let series = g.series.clone();
                            view! {
                                <div class="metric" data-testid="metric-gpu" title=g.name.clone()>
                                    <span class="metric-label">{format!("GPU {}", g.index)}</span>
                                    <span class="metric-value">{g.util.map(pct).unwrap_or_else(|| "—".into())}</span>
                                    <span class="metric-detail">
                                        {g.mem.map(|m| format!("mem {}", pct(m))).unwrap_or_default()}
                                    </span>
                                    <Sparkline values=Signal::derive(move || series.clone()) label=label capacity=POINTS/>
                                </div>
                            }
                        })
                        .collect_view()
                        .into_any()
                }
            }}
            <div class="metric" data-testid="metric-queue">
                <span class="metric-label">"Queue"</span>
                <span class="metric-value">{move || queue().unwrap_or_else(|| "—".into())}</span>
            </div>
            <div class="metric current-task" data-testid="metric-task">
                <span class="metric-label">"Task"</span>
                {move || match task() {
                    Some(t) => view! {
                        <a class="metric-value" href=format!("/workflows/{}", t.id)>{t.name.clone()}</a>
                        <progress max="1" value=fixed(t.progress, 3) aria-label=format!("{} progress", t.name)></progress>
                    }
                    .into_any(),
                    None => view! { <span class="metric-value muted">"idle"</span> }.into_any(),
                }}
            </div>
            <ConnectionIndicator/>
        </section>
    }
}
