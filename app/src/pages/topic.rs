//! `/topics/:name`: one topic's events as they arrive, newest first, data indented:
//! the latest from history first, live ones after (snapshot + delta, so none is missed
//! or shown twice, across reconnects), older ones on demand; a filter by event name,
//! pause and follow, and a `curl` that publishes an event again.

use crate::client::{browser, http, use_connection, Loader};
use crate::components::activity_log::clock_time;
use crate::model::topics::{pretty_json, republish_curl, FeedEvent, TopicFeed, FEED_PAGE};
use crate::protocol::{validate_topic, HistoryPage};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use std::rc::Rc;

/// The route: its code is loaded when the page is first opened (a split release build).
pub struct TopicRoute;

#[leptos_router::lazy_route]
impl leptos_router::LazyRoute for TopicRoute {
    fn data() -> Self {
        TopicRoute
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        topic().into_any()
    }
}

/// The route's view (a plain function, as is `topic_page`: each component is one more
/// erased view type in the bundle).
pub fn topic() -> impl IntoView {
    let params = use_params_map();
    let name = Memo::new(move |_| params.read().get("name").unwrap_or_default());
    // another topic is another page: its own subscription and feed
    move || {
        let name = name.get();
        topic_page(name)
    }
}

fn history_url(topic: &str, since: u64, limit: u64) -> String {
    format!("/api/v1/topics/{topic}/history?since={since}&limit={limit}")
}

/// The topic's latest events: where it stands, then the page before that.
async fn latest(topic: &str) -> Result<HistoryPage, http::HttpError> {
    let now: HistoryPage = http::get_json(&history_url(topic, 0, 0)).await?;
    let since = now.seq.saturating_sub(FEED_PAGE);
    let mut page: HistoryPage = http::get_json(&history_url(topic, since, now.seq - since)).await?;
    // what the page reflects: up to `now.seq` (events after it come live)
    page.seq = now.seq;
    Ok(page)
}

fn topic_page(name: String) -> impl IntoView {
    let feed = RwSignal::new(TopicFeed::default());
    let loaded = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let filter = RwSignal::new(String::new());
    let topic = name.clone();
    let load: Loader = Rc::new(move || {
        let topic = topic.clone();
        Box::pin(async move {
            match latest(&topic).await {
                Ok(page) => {
                    feed.try_update(|f| f.reset(&page.epoch, &page.events));
                    loaded.try_set(true);
                    error.try_set(None);
                    Some(page.seq)
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                    None
                }
            }
        })
    });
    match validate_topic(&name) {
        Ok(()) => use_connection().subscribe_synced(&name, load, move |ev| feed.update(|f| f.push(ev))),
        Err(e) => error.set(Some(e.to_string())),
    }
    let older_topic = StoredValue::new(name.clone());
    let load_older = move |_| {
        let Some((since, limit)) = feed.with_untracked(TopicFeed::older_request) else { return };
        let topic = older_topic.get_value();
        leptos::task::spawn_local(async move {
            match http::get_json::<HistoryPage>(&history_url(&topic, since, limit)).await {
                Ok(page) => {
                    let reached_start = (page.events.len() as u64) < limit;
                    feed.try_update(|f| f.prepend_older(&page.epoch, &page.events, reached_start));
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    let paused = move || feed.with(TopicFeed::is_paused);
    let toggle = move |_| feed.update(|f| if f.is_paused() { f.follow() } else { f.pause() });
    let status = move || {
        feed.with(|f| {
            let mut s = format!("{} events shown", f.len());
            if f.held() > 0 {
                s.push_str(&format!(", {} new while paused", f.held()));
            }
            if f.restarts > 0 {
                s.push_str(" · its history started over (a new epoch): reloaded");
            }
            s
        })
    };
    // keyed by (times its history started over, seq): a reload's events are new rows
    let shown = move || feed.with(|f| filter.with(|flt| f.matching(flt).map(|e| (f.restarts, e.clone())).collect::<Vec<_>>()));
    let row_topic = StoredValue::new(name.clone());
    view! {
        <Title text=format!("{name} · Topics · Switchboard")/>
        <div class="run-head">
            <h1><a href="/topics">"Topics"</a>" / "<code data-testid="topic-name">{name.clone()}</code></h1>
            <div class="controls">
                <label>
                    <span class="visually-hidden">"Filter by event name"</span>
                    <input type="search" placeholder="Event name" data-testid="event-filter"
                        prop:value=move || filter.get() on:input=move |ev| filter.set(event_target_value(&ev))/>
                </label>
                <button data-testid="pause" aria-pressed=move || paused().to_string() on:click=toggle>
                    {move || if paused() { "Follow" } else { "Pause" }}
                </button>
            </div>
        </div>
        <p class="muted" data-testid="feed-status" aria-live="polite">{status}</p>
        <p class="error" role="alert">{move || error.get()}</p>
        <p class="muted" hidden=move || loaded.get() || error.with(Option::is_some)>"Loading events…"</p>
        <p class="muted" data-testid="no-events" hidden=move || !loaded.get() || !feed.with(TopicFeed::is_empty)>
            "No events kept yet: new ones appear here as they are published."
        </p>
        <ol class="feed" data-testid="events">
            <For each=shown key=|(r, e)| (*r, e.seq) let:((_, e))>
                {row_topic.with_value(|t| event_row(t, &e))}
            </For>
        </ol>
        <button class="more" data-testid="load-older" hidden=move || feed.with(|f| f.older_request().is_none()) on:click=load_older>
            "Load older"
        </button>
    }
}

/// One event: seq, time, name, its data indented, and (on topics anyone may publish
/// to) the `curl` that publishes it again, shown and copied on request.
fn event_row(topic: &str, e: &FeedEvent) -> impl IntoView {
    let origin = browser::origin();
    let curl = republish_curl(&origin, topic, e);
    let shown = RwSignal::new(false);
    let copied = RwSignal::new(None::<bool>);
    let curl_view = curl.map(|cmd| {
        let text = cmd.clone();
        let copy = move |_| {
            shown.set(true);
            browser::copy_text(&text, move |ok| {
                copied.try_set(Some(ok));
            });
        };
        view! {
            <button class="link" data-testid="copy-curl" on:click=copy>"Copy curl"</button>
            <span class="muted" aria-live="polite">
                {move || copied.get().map(|ok| if ok { " copied" } else { " select it below to copy" })}
            </span>
            <pre class="curl" data-testid="curl" hidden=move || !shown.get()>{cmd}</pre>
        }
    });
    view! {
        <li class="feed-event" data-testid="event" data-seq=e.seq data-event=e.event.clone()>
            <div class="feed-head">
                <code class="muted">"#"{e.seq}</code>
                <time class="muted">{clock_time(e.ts)}</time>
                <strong data-testid="event-name">{e.event.clone()}</strong>
                {curl_view}
            </div>
            <pre class="feed-data" data-testid="event-data">{pretty_json(&e.data)}</pre>
        </li>
    }
}
