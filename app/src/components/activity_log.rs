//! The activity log: every change of state of every run, newest first.

use crate::live::use_live;
use leptos::prelude::*;

/// `HH:MM:SS` of a timestamp, in the browser's time zone.
pub fn clock_time(ms: i64) -> String {
    #[cfg(feature = "hydrate")]
    {
        let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
        format!("{:02}:{:02}:{:02}", d.get_hours(), d.get_minutes(), d.get_seconds())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let s = (ms / 1000).rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
    }
}

#[component]
pub fn ActivityLog() -> impl IntoView {
    let live = use_live();
    view! {
        <ol class="activity" data-testid="activity" aria-label="Activity">
            {move || {
                live.activity.with(|a| {
                    if a.is_empty() {
                        return view! { <li class="muted">"Nothing has happened since this page opened."</li> }.into_any();
                    }
                    a.iter()
                        .map(|e| {
                            let href = format!("/workflows/{}", e.transition.id);
                            view! {
                                <li>
                                    <time class="muted">{clock_time(e.at_ms)}</time>
                                    " "
                                    <a href=href>{e.transition.describe()}</a>
                                </li>
                            }
                        })
                        .collect_view()
                        .into_any()
                })
            }}
        </ol>
    }
}
