//! Shows the state of the live connection: the round-trip time while connected; while
//! reconnecting, when the next attempt is due and a "Retry now"; the messages waiting
//! to be sent; and, when the server refused the session, why.

use crate::client::{use_connection, ConnectionState};
use crate::live::use_live;
use crate::model::number::fixed;
use leptos::prelude::*;

#[component]
pub fn ConnectionIndicator() -> impl IntoView {
    let conn = use_connection();
    let live = use_live();
    let label = move || conn.state.get().label();
    let rtt = move || {
        (conn.state.get() == ConnectionState::Connected)
            .then(|| conn.rtt_ms.get())
            .flatten()
            .map(|ms| format!("{} ms", fixed(ms, 0)))
    };
    let retry_in = move || {
        let at = conn.retry_at.get()?;
        let s = ((at - live.now_ms.get()) / 1000.0).ceil().max(0.0);
        Some(format!("retry in {} s", fixed(s, 0)))
    };
    let queued = move || {
        let n = conn.queued.get();
        (n > 0).then(|| format!("{n} to send"))
    };
    let reconnecting = move || conn.state.get() == ConnectionState::Reconnecting;
    let refused = move || {
        (conn.state.get() == ConnectionState::Unauthorized).then(|| {
            let why = conn.refused.get().filter(|r| !r.is_empty()).unwrap_or_else(|| "not authorised".into());
            format!("Not authorised ({why}): open the login link the server printed, then reload.")
        })
    };
    view! {
        <div class="connection" role="status" aria-live="polite" data-state=move || conn.state.get().label()>
            <span class="dot" aria-hidden="true"></span>
            <span class="connection-label" data-testid="connection-state">{label}</span>
            <span class="rtt" data-testid="rtt">{rtt}</span>
            <span class="muted" data-testid="retry-in">{retry_in}</span>
            <span class="muted" data-testid="queued">{queued}</span>
            <Show when=reconnecting>
                <button class="link" data-testid="retry-now" on:click=move |_| conn.retry_now()>"Retry now"</button>
            </Show>
            <span class="refused" data-testid="refused">{refused}</span>
        </div>
    }
}
