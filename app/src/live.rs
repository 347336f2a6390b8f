//! App-wide live state, shared by every page through context: the list of runs and the
//! activity log (from `coordinator`, snapshot + delta), the coordinator's figures, and
//! a clock that ticks each second for the durations on screen. Notable changes (a run
//! completed, failed, or waits for a person) become toasts and, when allowed, browser
//! notifications, whichever page is open.

use crate::client::{browser, http, use_connection, Loader};
use crate::components::toasts::{use_toasts, ToastKind, Toasts};
use crate::model::runs::{RunList, Transition};
use crate::protocol::{names, CoordinatorMetrics, WorkflowList, WorkflowState, WorkflowStatus, COORDINATOR_TOPIC};
use leptos::prelude::*;
use std::collections::VecDeque;
use std::rc::Rc;

/// Lines kept in the activity log.
const ACTIVITY_MAX: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub at_ms: i64,
    pub transition: Transition,
}

#[derive(Debug, Clone, Copy)]
pub struct Live {
    pub runs: RwSignal<RunList>,
    /// Whether the list has been loaded once (before that it is unknown, not empty).
    pub runs_loaded: RwSignal<bool>,
    pub activity: RwSignal<VecDeque<Activity>>,
    pub coordinator: RwSignal<Option<CoordinatorMetrics>>,
    /// `Date.now()`, to the second.
    pub now_ms: RwSignal<f64>,
    /// Whether this session may act on runs (its token's `control`; true without auth).
    pub can_control: RwSignal<bool>,
    /// Where the list of runs goes on, when there are older runs than it shows.
    pub older: RwSignal<Option<String>>,
}

pub fn use_live() -> Live {
    use_context::<Live>().expect("provide_live() runs in App")
}

fn tell(toasts: Toasts, t: &Transition) {
    let kind = match t.to {
        WorkflowState::Failed => ToastKind::Error,
        WorkflowState::WaitingConfirmation => ToastKind::Attention,
        _ => ToastKind::Success,
    };
    let title = t.describe();
    toasts.push(kind, title.clone(), String::new(), Some(format!("/workflows/{}", t.id)));
    browser::notify(&title, "Switchboard");
}

/// Appends the next page of older runs to the list.
pub async fn load_older(live: Live) {
    let Some(cursor) = live.older.get_untracked() else { return };
    if let Ok(page) = http::get_json::<WorkflowList>(&format!("/api/v1/workflows?cursor={cursor}")).await {
        live.runs.update(|l| l.append_older(&page.workflows));
        live.older.set(page.next_cursor);
    }
}

pub fn provide_live() -> Live {
    let live = Live {
        runs: RwSignal::new(RunList::default()),
        runs_loaded: RwSignal::new(false),
        activity: RwSignal::new(VecDeque::new()),
        coordinator: RwSignal::new(None),
        now_ms: RwSignal::new(browser::now_ms()),
        can_control: RwSignal::new(true),
        older: RwSignal::new(None),
    };
    provide_context(live);
    let toasts = use_toasts();
    let load: Loader = Rc::new(move || {
        Box::pin(async move {
            let list: WorkflowList = http::get_json("/api/v1/workflows").await.ok()?;
            live.runs.set(RunList::from_snapshots(&list.workflows));
            live.older.set(list.next_cursor);
            live.runs_loaded.set(true);
            Some(list.seq)
        })
    });
    use_connection().subscribe_synced(COORDINATOR_TOPIC, load, move |ev| match ev.event.as_str() {
        names::WORKFLOW_STATUS => {
            let Ok(status) = ev.payload::<WorkflowStatus>() else { return };
            let mut change = None;
            live.runs.update(|l| change = l.apply(&status));
            let Some(t) = change else { return };
            if t.notable() {
                tell(toasts, &t);
            }
            live.activity.update(|a| {
                a.push_front(Activity { at_ms: ev.ts, transition: t });
                a.truncate(ACTIVITY_MAX);
            });
        }
        names::COORDINATOR_METRICS => {
            if let Ok(m) = ev.payload::<CoordinatorMetrics>() {
                live.coordinator.set(Some(m));
            }
        }
        _ => {}
    });
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            if let Ok(session) = http::session().await {
                live.can_control.set(!session.auth || session.control);
            }
        });
    });
    #[cfg(feature = "hydrate")]
    gloo_timers::callback::Interval::new(1_000, move || live.now_ms.set(browser::now_ms())).forget();
    live
}
