//! Acting on runs: pause, resume, cancel, confirm, restart a stage, chat.

use super::forward::Op;
use super::process::Control;
use super::run::Run;
use super::{lock, topic_of, Engine, EngineError, Entry};

/// A control that met its run just as it was given to another node (engine::handoff).
fn moved_check(entry: &Entry, id: &str) -> Result<(), EngineError> {
    if entry.is_moved() {
        return Err(EngineError::Conflict(format!("workflow {id:?} moved to another node just now: send it again")));
    }
    Ok(())
}
use app::protocol::{ControlAction, StageState, WorkflowState};

impl Engine {
    /// The agent of the stage running now, when that is an agent with no connection:
    /// a signal would not reach it (it is failed `agent lost` after the grace period
    /// unless it comes back).
    fn executor_offline(&self, run: &Run) -> Result<(), EngineError> {
        let stage = run.stage_index.and_then(|i| run.stages.get(i));
        let Some(agent) = stage.filter(|s| matches!(s.status, StageState::Running | StageState::Paused)).and_then(|s| s.agent.as_deref()) else {
            return Ok(());
        };
        if self.inner.agents.is_connected(agent) {
            return Ok(());
        }
        let grace = self.inner.agents.config().grace.as_secs();
        Err(EngineError::AgentOffline(format!(
            "agent {agent:?}, which runs workflow {:?}, is not connected: try again when it is back (its stage fails `agent lost` {grace} s after it was last heard from)",
            run.id
        )))
    }

    /// The state of stage `stage` of run `id`, by its protocol name (`"completed"`).
    pub async fn stage_state(&self, id: &str, stage: &str) -> Result<String, EngineError> {
        let snapshot = self.snapshot(id).await?;
        snapshot
            .stages
            .iter()
            .find(|s| s.id == stage)
            .map(|s| super::stored::name_of(&s.status))
            .ok_or_else(|| EngineError::NoStage { workflow: id.into(), stage: stage.into() })
    }

    pub async fn control(&self, id: &str, action: ControlAction) -> Result<(), EngineError> {
        if let Some(owner) = self.owner_elsewhere(id).await? {
            return self.forward(&owner, id, Op::Control { action }).await;
        }
        let entry = self.entry_or_load(id).await?;
        let state = {
            let run = entry.run.lock().await;
            moved_check(&entry, id)?;
            if !run.state.is_finished() {
                self.executor_offline(&run)?;
            }
            run.state
        };
        let (allowed, control) = match action {
            ControlAction::Pause => (state == WorkflowState::Running, Control::Pause),
            ControlAction::Resume => (state == WorkflowState::Paused, Control::Resume),
            ControlAction::Cancel => (!state.is_finished(), Control::Cancel),
        };
        if !allowed {
            let verb = format!("{action:?}").to_lowercase();
            return Err(EngineError::Conflict(format!("cannot {verb} workflow {id:?}: it is {state:?}").to_lowercase()));
        }
        // sent under the run's lock, so a handover (which takes it) sees the cancel
        let _run = entry.run.lock().await;
        moved_check(&entry, id)?;
        if matches!(control, Control::Cancel) {
            entry.cancelling.store(true, std::sync::atomic::Ordering::Release);
        }
        if !entry.send(control) {
            return Err(EngineError::Conflict(format!("workflow {id:?} is not running")));
        }
        Ok(())
    }

    pub async fn confirm(&self, id: &str) -> Result<(), EngineError> {
        if let Some(owner) = self.owner_elsewhere(id).await? {
            return self.forward(&owner, id, Op::Confirm).await;
        }
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
        self.forget_if_moved(id).await?;
        let entry = self.entry_or_load(id).await?;
        let index = {
            let mut run = entry.run.lock().await;
            let index = run
                .stage_position(stage_id)
                .ok_or_else(|| EngineError::NoStage { workflow: id.into(), stage: stage_id.into() })?;
            if !run.state.is_finished() {
                return Err(EngineError::Conflict(format!("workflow {id:?} is {:?}: cancel it before restarting a stage", run.state)));
            }
            self.claim_restart(id).await?;
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
        self.spawn_run(entry, index, false, None);
        Ok(())
    }

    /// A `chat` event on the run's topic; a stage reading chat gets it on stdin.
    pub async fn chat(&self, id: &str, from: &str, text: &str) -> Result<(), EngineError> {
        let max = self.inner.config.max_chat_bytes;
        if text.len() > max {
            return Err(EngineError::BadRequest(format!("text: {} bytes is over the limit of {max} (SWITCHBOARD_MAX_CHAT_BYTES)", text.len())));
        }
        if let Some(owner) = self.owner_elsewhere(id).await? {
            return self.forward(&owner, id, Op::Chat { from: from.to_owned(), text: text.to_owned() }).await;
        }
        let entry = self.entry_or_load(id).await?;
        // held across the publish: a run given to another node meanwhile is not written here
        let run = entry.run.lock().await;
        moved_check(&entry, id)?;
        self.executor_offline(&run)?;
        let chat = app::protocol::Chat { from: from.to_owned(), text: text.to_owned() };
        let _ = self.inner.hub.publish(&topic_of(id), app::protocol::names::CHAT, &chat).await;
        entry.send(Control::Chat(text.to_owned()));
        drop(run);
        Ok(())
    }
}
