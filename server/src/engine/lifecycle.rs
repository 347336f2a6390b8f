//! A run's life once it has its turn: its stages one after another, each a process
//! whose output the interpreter turns into events; confirmation gates; pauses from the
//! stage; and the end (state, skipped stages, ETA history, a notification).

use super::coordinator::SUMMARY_STEP;
use super::interpreter::{Notice, Notices};
use super::pipeline::StageDef;
use super::agent_moves::Move;
use super::placement::{Placed, Placement};
use super::process::{Control, StageEnd};
use super::stored::name_of;
use super::{lock, run, topic_of, Engine, Entry};
use crate::hub::now_ms;
use app::protocol::{names, LogLevel, LogLine, Progress, StageKey, StageState, WorkflowState};
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::mpsc;

/// How a run ends, when a stage ends it.
type Ending = (WorkflowState, Option<String>);
/// After a move to another node's agent that could not be made, the wait before the
/// stage looks for an agent again.
const MOVE_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl Engine {
    /// Waits for its turn in line and a slot (`wait_turn`), then runs the stages from
    /// `from` (first waiting for the confirmation of stage `from` when asked).
    pub(super) async fn drive(
        &self,
        entry: Arc<Entry>,
        ticket: u64,
        from: usize,
        confirm_first: bool,
        mut resume: Option<(String, u64)>,
        mut controls: mpsc::UnboundedReceiver<Control>,
    ) {
        let id = entry.run.lock().await.id.clone();
        let Some(permit) = self.wait_turn(ticket, &id, resume.is_some(), &mut controls).await else {
            // a run given to another node leaves the line without a word (engine::handoff)
            if !self.inner.shutdown.is_cancelled() && !entry.is_moved() {
                self.finish(&entry, WorkflowState::Cancelled, Some("cancelled before it started".into()), from).await;
            }
            return;
        };
        // the engine's cost of starting the first stage is counted from here
        let mut dequeued = std::time::Instant::now();
        let mut index = from;
        if confirm_first {
            if let Err((state, error)) = self.wait_for_confirmation(&entry, from, &mut controls).await {
                if self.inner.shutdown.is_cancelled() {
                    return; // still waiting, as stored: the next start waits again
                }
                self.finish(&entry, state, error, from + 1).await;
                drop(permit);
                return;
            }
            index += 1;
        } else if resume.is_none() {
            let mut run = entry.run.lock().await;
            if entry.is_moved() {
                return; // given away while this waited for the lock: another node runs it
            }
            run.state = WorkflowState::Running;
            run.started_at.get_or_insert(now_ms());
            self.publish_status(&entry, &mut run).await;
        }
        let outcome = loop {
            let Some(stage) = entry.run.lock().await.pipeline.stages.get(index).cloned() else {
                break (WorkflowState::Completed, None);
            };
            if self.inner.shutdown.is_cancelled() {
                return; // stopping: nothing new starts; the next start goes on from here
            }
            match self.run_one(&entry, index, stage, dequeued, &mut controls, resume.take()).await {
                Ok(()) => index += 1,
                Err(end) => break end,
            }
            dequeued = std::time::Instant::now();
        };
        if entry.is_moved() {
            return; // it went to the node of its next stage's agent (engine::agent_moves)
        }
        if self.inner.shutdown.is_cancelled() && outcome.0 == WorkflowState::Cancelled {
            // a shutdown ends the wait at a gate, which is not the run's end: it stays as
            // stored and the next start takes it up again (a stage's own end is recorded:
            // the writer outlives the engine)
            return;
        }
        // finished before the slot is given back, so no sample ever sees one run too many
        self.finish(&entry, outcome.0, outcome.1, index + 1).await;
        drop(permit);
    }

    /// Runs stage `index` where it goes (here, or on an agent), again while its agent
    /// is lost and its `retries` allow; Ok to go on, Err with how the run ends. `resume`
    /// takes up a stage an agent still runs (after a restart): its agent and report seq.
    pub(super) async fn run_one(
        &self,
        entry: &Arc<Entry>,
        index: usize,
        stage: StageDef,
        dequeued: std::time::Instant,
        controls: &mut mpsc::UnboundedReceiver<Control>,
        mut resume: Option<(String, u64)>,
    ) -> Result<(), Ending> {
        // when this attempt began to look for where to run
        let mut looking_since = None;
        loop {
            let (id, executor, attempt) = {
                let run = entry.run.lock().await;
                let attempt = run.stages[index].attempt + u32::from(resume.is_none());
                (run.id.clone(), run.pipeline.executor.clone(), attempt.max(1))
            };
            let key = StageKey { run: id.clone(), stage: stage.id.clone(), attempt };
            let placement = match resume.take() {
                Some((name, next_seq)) => Placement::Agent { name, resume: Some(next_seq) },
                None => match self.place(&id, executor.as_deref(), &stage, &key, *looking_since.get_or_insert_with(tokio::time::Instant::now)).await {
                    Ok(Placed::Run(p)) => {
                        looking_since = None;
                        p
                    }
                    Ok(Placed::MoveTo { node, agent }) => match self.move_for_agent(entry, index, &stage, &node, &agent).await {
                        Move::Done => return Err((WorkflowState::Pending, None)),
                        Move::Cancelled => return self.record_end(entry, index, &stage, StageEnd::Cancelled, 0).await,
                        Move::NotNow => {
                            tokio::time::sleep(MOVE_AGAIN_AFTER).await;
                            continue;
                        }
                    },
                    Err(why) => {
                        let end = StageEnd::Failed(why);
                        return self.record_end(entry, index, &stage, end, 0).await;
                    }
                },
            };
            let agent = Engine::agent_name(&placement).to_owned();
            let taken_up = matches!(placement, Placement::Agent { resume: Some(_), .. });
            if !taken_up {
                let mut run = entry.run.lock().await;
                run.stage_index = Some(index);
                let s = &mut run.stages[index];
                s.status = StageState::Running;
                s.started_at = Some(now_ms());
                s.attempt = attempt;
                s.agent = (agent != crate::agents::LOCAL_AGENT).then(|| agent.clone());
                self.publish_stage(entry, &run, index).await;
                self.publish_status(entry, &mut run).await;
            }
            let registry = &self.inner.agents;
            registry.started(&agent, &key).await;
            let started = std::time::Instant::now();
            let (end, dropped) = self.execute(entry, index, &stage, &key, &placement, dequeued, controls).await;
            let detached = lock(&entry.detached).take().filter(|_| matches!(end, StageEnd::AgentLost(_)));
            if let Some((to, done)) = detached {
                // not when the asker gave up waiting: it would not take the run up
                let moved = !done.is_closed() && self.give_run(entry, entry.run.lock().await, &to).await;
                let _ = done.send(moved);
                if moved {
                    registry.released(&agent, &key).await;
                    return Err((WorkflowState::Pending, None)); // the other node goes on with it
                }
            }
            let failed = !matches!(end, StageEnd::Exited(0) | StageEnd::Cancelled);
            registry.finished(&agent, &key, started.elapsed().as_secs_f64(), failed).await;
            if let StageEnd::AgentLost(why) = &end {
                if attempt <= stage.retries {
                    let message = format!("{why}: stage {:?} is queued again (attempt {} of {})", stage.id, attempt + 1, stage.retries + 1);
                    let _ = self.inner.hub.publish(&topic_of(&id), names::LOG_LINE, &LogLine { level: LogLevel::Warning, message }).await;
                    continue;
                }
            }
            let result = self.record_end(entry, index, &stage, end, dropped).await;
            if result.is_err() || !stage.confirm {
                return result;
            }
            return self.wait_for_confirmation(entry, index, controls).await;
        }
    }

    /// Records how stage `index` ended; Ok to go on (or to wait for confirmation).
    async fn record_end(&self, entry: &Entry, index: usize, stage: &StageDef, end: StageEnd, dropped: u64) -> Result<(), Ending> {
        let mut run = entry.run.lock().await;
        run.output_bytes = entry.output.stored.load(std::sync::atomic::Ordering::Relaxed);
        let s = &mut run.stages[index];
        s.finished_at = Some(now_ms());
        s.output_dropped_bytes += dropped;
        let result = match end {
            StageEnd::Exited(0) => {
                s.exit_code = Some(0);
                s.progress = 1.0;
                s.status = if stage.confirm { StageState::WaitingConfirmation } else { StageState::Completed };
                Ok(())
            }
            StageEnd::Exited(code) => {
                s.exit_code = Some(code);
                s.status = StageState::Failed;
                s.error = Some(format!("stage {:?} exited with code {code}", stage.id));
                Err((WorkflowState::Failed, s.error.clone()))
            }
            StageEnd::TimedOut => {
                s.status = StageState::Failed;
                s.error = Some(format!("stage {:?} timed out after {} s", stage.id, stage.timeout_s.unwrap_or(0)));
                Err((WorkflowState::Failed, s.error.clone()))
            }
            StageEnd::SpawnFailed(e) | StageEnd::Failed(e) | StageEnd::AgentLost(e) => {
                s.status = StageState::Failed;
                s.error = Some(e);
                Err((WorkflowState::Failed, s.error.clone()))
            }
            StageEnd::Cancelled => {
                s.status = StageState::Cancelled;
                s.error = Some("cancelled".into());
                Err((WorkflowState::Cancelled, Some("cancelled".into())))
            }
        };
        run.recompute_progress();
        self.publish_stage(entry, &run, index).await;
        if result.is_ok() && stage.confirm {
            run.state = WorkflowState::WaitingConfirmation;
            self.publish_status(entry, &mut run).await;
            let title = format!("{} is waiting for you", run.name);
            let message = format!("stage {:?} succeeded: confirm to go on", stage.display_name());
            self.notify(&run, title, message, "high").await;
        }
        result
    }

    pub(super) async fn wait_for_confirmation(
        &self,
        entry: &Entry,
        index: usize,
        controls: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Result<(), Ending> {
        loop {
            let ctl = tokio::select! {
                ctl = controls.recv() => ctl,
                _ = self.inner.shutdown.cancelled() => None,
            };
            match ctl {
                Some(Control::Confirm) => {
                    let mut run = entry.run.lock().await;
                    run.stages[index].status = StageState::Completed;
                    run.state = WorkflowState::Running;
                    run.recompute_progress();
                    self.publish_stage(entry, &run, index).await;
                    self.publish_status(entry, &mut run).await;
                    return Ok(());
                }
                Some(Control::Cancel) | None => return Err((WorkflowState::Cancelled, Some("cancelled".into()))),
                Some(_) => {}
            }
        }
    }

    async fn on_notice(&self, entry: &Entry, index: usize, notice: Notice) {
        let mut run = entry.run.lock().await;
        match notice {
            Notice::Progress { fraction, message } => {
                run.stages[index].progress = fraction;
                run.recompute_progress();
                let elapsed = run.started_at.map_or(0.0, |t| (now_ms() - t) as f64 / 1000.0);
                let past = lock(&self.inner.durations).get(&run.name).map(|(sum, n)| sum / *n as f64);
                run.eta_s = run::eta(run.progress, elapsed, past);
                let event = Progress { progress: run.progress, stage: Some(run.stages[index].id.clone()), message, eta_s: run.eta_s };
                let _ = self.inner.hub.publish(&topic_of(&run.id), names::PROGRESS, &event).await;
                self.track(&run);
                // the dashboard's list moves with the coordinator's summaries: one per
                // percent of progress, not one per `::progress` line
                if (run.progress - run.summarised_progress).abs() >= SUMMARY_STEP {
                    self.publish_summary(&mut run).await;
                }
            }
            Notice::Paused(paused) => {
                let (w, s) = if paused { (WorkflowState::Paused, StageState::Paused) } else { (WorkflowState::Running, StageState::Running) };
                run.state = w;
                run.stages[index].status = s;
                self.publish_stage(entry, &run, index).await;
                self.publish_status(entry, &mut run).await;
            }
        }
    }

    /// Ends a run: state, skipped stages, history for the ETA, controls closed.
    pub(super) async fn finish(&self, entry: &Entry, state: WorkflowState, error: Option<String>, skip_from: usize) {
        *lock(&entry.controls) = None;
        let mut run = entry.run.lock().await;
        if entry.is_moved() {
            return; // another node has it now (engine::handoff): nothing is written here
        }
        run.state = state;
        run.error = error;
        run.finished_at = Some(now_ms());
        run.stage_index = None;
        for i in skip_from.min(run.stages.len())..run.stages.len() {
            if run.stages[i].status == StageState::Pending {
                run.stages[i].status = StageState::Skipped;
                self.publish_stage(entry, &run, i).await;
            }
        }
        if state == WorkflowState::Completed {
            run.progress = 1.0;
            run.eta_s = Some(0.0);
            if let Some(started) = run.started_at {
                let secs = (now_ms() - started) as f64 / 1000.0;
                let mut d = lock(&self.inner.durations);
                let e = d.entry(run.name.clone()).or_insert((0.0, 0));
                e.0 += secs;
                e.1 += 1;
            }
        } else {
            run.eta_s = None;
        }
        self.publish_status(entry, &mut run).await;
        let verb = name_of(&state);
        let message = match (&run.error, run.started_at, run.finished_at) {
            (Some(error), _, _) => error.clone(),
            (None, Some(start), Some(end)) => format!("{} stages in {:.1} s", run.stages.len(), (end - start) as f64 / 1000.0),
            _ => String::new(),
        };
        let priority = if state == WorkflowState::Failed { "high" } else { "normal" };
        self.notify(&run, format!("{} {verb}", run.name), message, priority).await;
        let id = run.id.clone();
        drop(run);
        self.finished_now(&id);
    }
}

/// The engine's ear for a running stage's progress and pauses.
pub(super) struct StageNotices<'a> {
    pub engine: &'a Engine,
    pub entry: &'a Entry,
    pub index: usize,
}

impl Notices for StageNotices<'_> {
    fn notice(&self, notice: Notice) -> BoxFuture<'_, ()> {
        Box::pin(self.engine.on_notice(self.entry, self.index, notice))
    }
}
