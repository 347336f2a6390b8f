//! `/topics`: every topic the viewer may see that the server holds now, live: its last
//! seq, events per second, subscribers and its last event's time. The list is read
//! again each second (one small read of the hub's table; the rates come from the seq
//! advance between two reads).

use crate::client::{browser, http};
use crate::components::activity_log::clock_time;
use crate::live::use_live;
use crate::model::number::fixed;
use crate::model::topics::TopicRates;
use crate::protocol::TopicList;
use leptos::prelude::*;
use leptos_meta::Title;

/// One row as drawn: a row redraws only when one of its figures changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Row {
    name: String,
    seq: u64,
    rate: String,
    subscribers: u64,
    last: String,
    durable: bool,
}

fn rows(list: &TopicList, rates: &TopicRates, filter: &str) -> Vec<Row> {
    list.topics
        .iter()
        .filter(|t| t.name.contains(filter))
        .map(|t| Row {
            name: t.name.clone(),
            seq: t.seq,
            rate: rates.rate(&t.name).map_or("—".into(), |r| fixed(r, 1)),
            subscribers: t.subscribers,
            last: t.last_event_ts.map_or("—".into(), clock_time),
            durable: t.durable,
        })
        .collect()
}

/// The route: its code is loaded when the page is first opened (a split release build).
pub struct TopicsRoute;

#[leptos_router::lazy_route]
impl leptos_router::LazyRoute for TopicsRoute {
    fn data() -> Self {
        TopicsRoute
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <Topics/> }.into_any()
    }
}

#[component]
pub fn Topics() -> impl IntoView {
    let live = use_live();
    let list: RwSignal<Option<TopicList>> = RwSignal::new(None);
    let rates = StoredValue::new(TopicRates::default());
    let error = RwSignal::new(None::<String>);
    let filter = RwSignal::new(String::new());
    let reading = StoredValue::new(false);
    Effect::new(move |_| {
        live.now_ms.track();
        if reading.try_get_value().unwrap_or(true) {
            return;
        }
        reading.set_value(true);
        leptos::task::spawn_local(async move {
            match http::get_json::<TopicList>("/api/v1/topics?limit=1000").await {
                Ok(l) => {
                    rates.try_update_value(|r| r.observe(&l.topics, browser::now_ms()));
                    list.try_set(Some(l));
                    error.try_set(None);
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
            reading.try_set_value(false);
        });
    });
    let shown = Memo::new(move |_| list.with(|l| l.as_ref().map(|l| filter.with(|f| rows(l, &rates.read_value(), f)))));
    let total = move || list.with(|l| l.as_ref().map(|l| format!("{} topics", l.total)));
    view! {
        <Title text="Topics · Switchboard"/>
        <div class="run-head">
            <h1>"Topics"</h1>
            <span class="muted" data-testid="topic-count">{total}</span>
            <label class="controls">
                <span class="visually-hidden">"Filter topics"</span>
                <input type="search" placeholder="Filter by name" data-testid="topic-filter"
                    prop:value=move || filter.get() on:input=move |ev| filter.set(event_target_value(&ev))/>
            </label>
        </div>
        <p class="error" role="alert">{move || error.get()}</p>
        <p class="muted" hidden=move || shown.with(Option::is_some)>"Loading topics…"</p>
        <table class="topics panel" data-testid="topics" hidden=move || shown.with(Option::is_none)>
            <thead>
                <tr><th>"Topic"</th><th>"Last seq"</th><th>"Events/s"</th><th>"Subscribers"</th><th>"Last event"</th></tr>
            </thead>
            <tbody>
                <For each=move || shown.get().unwrap_or_default() key=|r| r.clone() let:r>
                    <tr data-testid="topic" data-name=r.name.clone()>
                        <td>
                            <a href=format!("/topics/{}", r.name)>{r.name.clone()}</a>
                            {r.durable.then(|| view! { " " <span class="badge" title="stored in the database">"durable"</span> })}
                        </td>
                        <td class="num" data-testid="topic-seq">{r.seq}</td>
                        <td class="num" data-testid="topic-rate">{r.rate.clone()}</td>
                        <td class="num" data-testid="topic-subscribers">{r.subscribers}</td>
                        <td class="num">{r.last.clone()}</td>
                    </tr>
                </For>
            </tbody>
        </table>
        <p class="muted" data-testid="no-topics" hidden=move || !shown.with(|s| s.as_ref().is_some_and(Vec::is_empty))>
            "No topic you may see is active now."
        </p>
    }
}
