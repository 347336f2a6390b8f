//! Acting on runs: pause, resume, cancel, confirm, restart a stage, chat.

use super::process::Control;
use super::{lock, topic_of, Engine, EngineError};
use app::protocol::{ControlAction, WorkflowState};

impl Engine {
    pub async fn control(&self, id: &str, action: ControlAction) -> Result<(), EngineError> {
        let entry = self.entry_or_load(id).await?;
        let state = entry.run.lock().await.state;
        let (allowed, control) = match action {
            ControlAction::Pause => (state == WorkflowState::Running, Control::Pause),
            ControlAction::Resume => (state == WorkflowState::Paused, Control::Resume),
            ControlAction::Cancel => (!state.is_finished(), Control::Cancel),
        };
        if !allowed {
            let verb = format!("{action:?}").to_lowercase();
            return Err(EngineError::Conflict(format!("cannot {verb} workflow {id:?}: it is {state:?}").to_lowercase()));
        }
        if !entry.send(control) {
            return Err(EngineError::Conflict(format!("workflow {id:?} is not running")));
        }
        Ok(())
    }

    pub async fn confirm(&self, id: &str) -> Result<(), EngineError> {
        let entry = self.entry_or_load(id).await?;
        if entry.run.lock().await.state != WorkflowState::WaitingConfirmation {
            return Err(EngineError::Conflict(format!("workflow {id:?} has no stage waiting for confirmation")));
        }
        entry.send(Control::Confirm);
        Ok(())
    }

    /// Reruns a stage and those after it (the retry of a failed stage too). Only a
    /// run that has ended can be restarted.
    pub async fn restart_stage(&self, id: &str, stage_id: &str) -> Result<(), EngineError> {
        let entry = self.entry_or_load(id).await?;
        let index = {
            let mut run = entry.run.lock().await;
            let index = run
                .stage_position(stage_id)
                .ok_or_else(|| EngineError::NoStage { workflow: id.into(), stage: stage_id.into() })?;
            if !run.state.is_finished() {
                return Err(EngineError::Conflict(format!("workflow {id:?} is {:?}: cancel it before restarting a stage", run.state)));
            }
            for s in &mut run.stages[index..] {
                s.reset();
            }
            run.state = WorkflowState::Pending;
            run.finished_at = None;
            run.error = None;
            run.eta_s = None;
            run.recompute_progress();
            self.publish_status(&entry, &mut run).await;
            for i in index..run.stages.len() {
                self.publish_stage(&entry, &run, i).await;
            }
            index
        };
        lock(&self.inner.finished).retain(|(f, _)| f != id);
        self.spawn_run(entry, index, false);
        Ok(())
    }

    /// A `chat` event on the run's topic; a stage reading chat gets it on stdin.
    pub async fn chat(&self, id: &str, from: &str, text: &str) -> Result<(), EngineError> {
        let max = self.inner.config.max_chat_bytes;
        if text.len() > max {
            return Err(EngineError::BadRequest(format!("text: {} bytes is over the limit of {max} (SWITCHBOARD_MAX_CHAT_BYTES)", text.len())));
        }
        let entry = self.entry_or_load(id).await?;
        let chat = app::protocol::Chat { from: from.to_owned(), text: text.to_owned() };
        let _ = self.inner.hub.publish(&topic_of(id), app::protocol::names::CHAT, &chat).await;
        entry.send(Control::Chat(text.to_owned()));
        Ok(())
    }
}
