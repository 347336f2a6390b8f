//! Chat on a run: every message broadcast on its topic (a stage that reads chat gets
//! them on stdin), and a box to send one.

use super::toasts::use_toasts;
use crate::client::use_connection;
use crate::model::workflow::WorkflowModel;
use crate::protocol::ClientMessage;
use leptos::prelude::*;

#[component]
pub fn ChatPanel(model: Memo<Option<WorkflowModel>>, workflow_id: String, can_act: Signal<bool>) -> impl IntoView {
    let conn = use_connection();
    let toasts = use_toasts();
    let text = RwSignal::new(String::new());
    let messages = Memo::new(move |_| model.with(|m| m.as_ref().map(|m| m.chat.clone()).unwrap_or_default()));
    let send = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = text.get_untracked();
        if body.trim().is_empty() {
            return;
        }
        let msg = ClientMessage::Chat { workflow_id: Some(workflow_id.clone()), text: body };
        let sent = conn.send(msg, move |reply| {
            if let Err(e) = reply {
                toasts.error("Message not sent", e.message);
            }
        });
        match sent {
            Ok(()) => text.set(String::new()),
            Err(e) => toasts.error("Message not sent", e.to_string()),
        }
    };
    view! {
        <section class="panel chat" aria-labelledby="chat-heading">
            <h2 id="chat-heading">"Chat"</h2>
            <ol class="chat-log" data-testid="chat-log" aria-live="polite">
                {move || messages.get().into_iter().map(|c| view! {
                    <li><strong>{c.from}</strong>": "{c.text}</li>
                }).collect_view()}
            </ol>
            <form on:submit=send class="chat-form">
                <input type="text" aria-label="Message" placeholder="Say something to the run" data-testid="chat-input"
                    prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev)) disabled=move || !can_act.get()/>
                <button type="submit" disabled=move || !can_act.get()>"Send"</button>
            </form>
        </section>
    }
}
