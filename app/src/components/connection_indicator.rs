//! Shows the state of the live connection, and the last round-trip time.

use crate::client::{use_connection, ConnectionState};
use leptos::prelude::*;

#[component]
pub fn ConnectionIndicator() -> impl IntoView {
    let conn = use_connection();
    let label = move || conn.state.get().label();
    let rtt = move || {
        (conn.state.get() == ConnectionState::Connected)
            .then(|| conn.rtt_ms.get())
            .flatten()
            .map(|ms| format!("{ms:.0} ms"))
    };
    view! {
        <div class="connection" role="status" aria-live="polite"
            data-state=move || conn.state.get().label()>
            <span class="dot" aria-hidden="true"></span>
            <span class="connection-label" data-testid="connection-state">{label}</span>
            <span class="rtt" data-testid="rtt">{rtt}</span>
        </div>
    }
}
