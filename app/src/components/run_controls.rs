//! Acting on a run: Pause, Resume, Cancel and Confirm, each offered only when it can
//! apply, sent over the WebSocket (queued while offline) and answered with an `ack` or
//! an `error` the page shows.

use super::toasts::{use_toasts, Toasts};
use crate::client::{use_connection, Connection};
use crate::model::workflow::WorkflowModel;
use crate::protocol::{ClientMessage, CommandName, ControlAction, WorkflowState};
use leptos::prelude::*;

/// Sends actions on a run; made while the component is created (contexts are not
/// reachable from an event handler).
#[derive(Clone, Copy)]
pub struct Act {
    conn: Connection,
    toasts: Toasts,
}

impl Act {
    pub fn new() -> Act {
        Act { conn: use_connection(), toasts: use_toasts() }
    }

    /// Sends `msg`; a refusal (or a lost connection) becomes a toast naming `what`.
    pub fn send(&self, msg: ClientMessage, what: &'static str, busy: RwSignal<bool>) {
        let toasts = self.toasts;
        busy.set(true);
        let sent = self.conn.send(msg, move |reply| {
            busy.set(false);
            if let Err(e) = reply {
                toasts.error(format!("{what} failed"), e.message);
            }
        });
        if let Err(e) = sent {
            busy.set(false);
            toasts.error(format!("{what} failed"), e.to_string());
        }
    }
}

pub fn restart_stage(workflow_id: &str, stage_id: &str) -> ClientMessage {
    ClientMessage::Command {
        command: CommandName::RestartStage,
        args: Some(serde_json::json!({ "stage_id": stage_id })),
        workflow_id: Some(workflow_id.to_owned()),
    }
}

#[component]
pub fn RunControls(model: Memo<Option<WorkflowModel>>, workflow_id: String, can_act: Signal<bool>) -> impl IntoView {
    let busy = RwSignal::new(false);
    let act = Act::new();
    let state = Memo::new(move |_| model.with(|m| m.as_ref().and_then(|m| m.state)));
    let is = move |s: WorkflowState| state.get() == Some(s);
    let enabled = move || can_act.get() && !busy.get();
    let wid = workflow_id.clone();
    let control = move |action: ControlAction, what: &'static str| {
        let id = wid.clone();
        move |_| act.send(ClientMessage::Control { action, workflow_id: Some(id.clone()) }, what, busy)
    };
    let confirm = {
        let id = workflow_id.clone();
        move |_| act.send(ClientMessage::Confirm { workflow_id: Some(id.clone()) }, "Confirm", busy)
    };
    let pause = control(ControlAction::Pause, "Pause");
    let resume = control(ControlAction::Resume, "Resume");
    let cancel = control(ControlAction::Cancel, "Cancel");
    view! {
        <div class="controls" role="group" aria-label="Run controls">
            <Show when=move || is(WorkflowState::WaitingConfirmation)>
                <button class="primary" data-testid="confirm" on:click=confirm.clone() disabled=move || !enabled()>"Confirm"</button>
            </Show>
            <Show when=move || is(WorkflowState::Running)>
                <button data-testid="pause" on:click=pause.clone() disabled=move || !enabled()>"Pause"</button>
            </Show>
            <Show when=move || is(WorkflowState::Paused)>
                <button class="primary" data-testid="resume" on:click=resume.clone() disabled=move || !enabled()>"Resume"</button>
            </Show>
            <Show when=move || state.get().is_some_and(|s| !s.is_finished())>
                <button class="danger" data-testid="cancel" on:click=cancel.clone() disabled=move || !enabled()>"Cancel"</button>
            </Show>
        </div>
    }
}
