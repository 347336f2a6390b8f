//! Metric charts: every `metric_scalar` series of a run as an SVG line chart by step,
//! live; a legend that shows or hides each series (the axis follows what is shown),
//! the values under the pointer, and the same numbers as a table for screen readers.

use crate::model::number::{compact, fixed};
use crate::model::chart::{nearest, polyline, tick_label, ticks, Bounds, Frame, SERIES_COLOURS};
use crate::model::workflow::{Series, WorkflowModel};
use leptos::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn fmt(v: f64) -> String {
    compact(v, if v.abs() >= 1000.0 { 0 } else { 4 })
}

/// An SVG coordinate.
fn px(v: f64) -> String {
    fixed(v, 1)
}

#[component]
pub fn MetricChart(model: Memo<Option<WorkflowModel>>) -> impl IntoView {
    let frame = Frame::default();
    let series: Memo<BTreeMap<String, Series>> = Memo::new(move |_| model.with(|m| m.as_ref().map(|m| m.metrics.clone()).unwrap_or_default()));
    let hidden = RwSignal::new(BTreeSet::<String>::new());
    let hover = RwSignal::new(None::<f64>);
    let shown = Memo::new(move |_| {
        let hidden = hidden.get();
        series.with(|s| {
            s.iter()
                .enumerate()
                .filter(|(_, (name, _))| !hidden.contains(*name))
                .map(|(i, (name, pts))| (i % SERIES_COLOURS, name.clone(), pts.clone()))
                .collect::<Vec<_>>()
        })
    });
    let bounds = Memo::new(move |_| shown.with(|s| Bounds::of(s.iter().map(|(_, _, p)| p))));
    let on_move = move |ev: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(b) = bounds.get_untracked() else { return };
            let Some(svg) = ev.current_target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return };
            let rect = svg.get_bounding_client_rect();
            if rect.width() <= 0.0 {
                return;
            }
            let px = (ev.client_x() as f64 - rect.left()) / rect.width() * frame.width;
            hover.set(Some(b.px_to_x(&frame, px)));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    let axes = move || {
        let b = bounds.get()?;
        let yt = ticks(b.y_min, b.y_max, 4);
        let ystep = if yt.len() > 1 { yt[1] - yt[0] } else { 1.0 };
        let xt = ticks(b.x_min, b.x_max, 6);
        let xstep = if xt.len() > 1 { xt[1] - xt[0] } else { 1.0 };
        let y_lines = yt.into_iter().map(move |v| {
            let y = b.y_to_px(&frame, v);
            view! {
                <line class="grid" x1=px(frame.left) x2=px(frame.width - frame.right) y1=px(y) y2=px(y)/>
                <text class="tick" x=px(frame.left - 6.0) y=px(y + 4.0) text-anchor="end">{tick_label(v, ystep)}</text>
            }
        });
        let x_labels = xt.into_iter().map(move |v| {
            let x = b.x_to_px(&frame, v);
            view! { <text class="tick" x=px(x) y=px(frame.height - 8.0) text-anchor="middle">{tick_label(v, xstep)}</text> }
        });
        Some(view! { {y_lines.collect_view()} {x_labels.collect_view()} })
    };
    let lines = move || {
        let b = bounds.get()?;
        Some(
            shown
                .get()
                .into_iter()
                .map(|(c, name, pts)| {
                    view! { <polyline class=format!("series c{c}") data-series=name points=polyline(&pts, &b, &frame)/> }
                })
                .collect_view(),
        )
    };
    let cursor = move || {
        let (b, x) = (bounds.get()?, hover.get()?);
        let points: Vec<(usize, String, (f64, f64))> =
            shown.get().into_iter().filter_map(|(c, name, pts)| nearest(&pts, x).map(|p| (c, name, p))).collect();
        let step = points.first()?.2 .0;
        let cx = b.x_to_px(&frame, step);
        let dots = points.iter().map(|(c, _, (x, y))| {
            view! { <circle class=format!("dot c{c}") cx=px(b.x_to_px(&frame, *x)) cy=px(b.y_to_px(&frame, *y)) r="4"/> }
        });
        let label = points.iter().map(|(_, n, (_, v))| format!("{n} {}", fmt(*v))).collect::<Vec<_>>().join(" · ");
        Some(view! {
            <line class="cursor" x1=px(cx) x2=px(cx) y1=px(frame.top) y2=px(frame.height - frame.bottom)/>
            {dots.collect_view()}
            <text class="hover-label" data-testid="chart-hover" x=px(frame.left + 4.0) y=px(frame.top + 12.0)>{format!("step {} · {label}", fmt(step))}</text>
        })
    };
    let legend = move || {
        series.with(|s| {
            s.iter()
                .enumerate()
                .map(|(i, (name, pts))| {
                    let n = name.clone();
                    let on = move || !hidden.with(|h| h.contains(&n));
                    let toggle = {
                        let n = name.clone();
                        move |_| hidden.update(|h| if !h.remove(&n) { h.insert(n.clone()); })
                    };
                    let last = pts.last().map(|(_, v)| fmt(*v)).unwrap_or_default();
                    view! {
                        <button class="legend-item" aria-pressed=move || on().to_string() on:click=toggle
                            data-testid=format!("series-{name}")>
                            <span class=format!("swatch c{}", i % SERIES_COLOURS)></span>
                            {name.clone()} " " <span class="muted">{last}</span>
                        </button>
                    }
                })
                .collect_view()
        })
    };
    let table = move || {
        series.with(|s| {
            s.iter()
                .map(|(name, pts)| {
                    let rows = pts.iter().map(|(x, y)| view! { <tr><td>{fmt(*x)}</td><td>{fmt(*y)}</td></tr> }).collect_view();
                    view! {
                        <table><caption>{name.clone()}</caption>
                            <thead><tr><th scope="col">"step"</th><th scope="col">"value"</th></tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <section class="panel chart" aria-labelledby="chart-heading" data-testid="chart">
            <h2 id="chart-heading">"Metrics"</h2>
            <Show when=move || series.with(|s| !s.is_empty()) fallback=|| view! {
                <p class="muted">"No metrics yet: a stage reports them with " <code>"::metric name=value step=N"</code> "."</p>
            }>
                <div class="legend-row" role="group" aria-label="Series">{legend}</div>
                <svg viewBox=format!("0 0 {} {}", px(frame.width), px(frame.height)) class="chart-svg" role="img"
                    aria-label="Metric values by step" on:mousemove=on_move on:mouseleave=move |_| hover.set(None)>
                    {axes}
                    {lines}
                    {cursor}
                </svg>
                <details class="chart-data"><summary>"The values as a table"</summary>{table}</details>
            </Show>
        </section>
    }
}
