//! A run's life once it has its turn: its stages one after another, each a process
//! whose output the interpreter turns into events; confirmation gates; pauses from the
//! stage; and the end (state, skipped stages, ETA history, a notification).

use super::coordinator::SUMMARY_STEP;
use super::interpreter::{Notice, Notices, StageOutput, StageTarget};
use super::pipeline::StageDef;
use super::process::{run_process, Control, ProcessSpec, StageEnd};
use super::stored::name_of;
use super::{lock, run, topic_of, Engine, Entry};
use crate::hub::now_ms;
use app::protocol::{names, Progress, StageState, WorkflowState};
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::mpsc;

/// How a run ends, when a stage ends it.
type Ending = (WorkflowState, Option<String>);

impl Engine {
    /// Waits for its turn in line and a slot (`wait_turn`), then runs the stages from
    /// `from` (first waiting for the confirmation of stage `from` when asked).
    pub(super) async fn drive(
        &self,
        entry: Arc<Entry>,
        ticket: u64,
        from: usize,
        confirm_first: bool,
        mut controls: mpsc::UnboundedReceiver<Control>,
    ) {
        let Some(permit) = self.wait_turn(ticket, &mut controls).await else {
            if !self.inner.shutdown.is_cancelled() {
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
        } else {
            let mut run = entry.run.lock().await;
            run.state = WorkflowState::Running;
            run.started_at.get_or_insert(now_ms());
            self.publish_status(&entry, &mut run).await;
        }
        let outcome = loop {
            let Some(stage) = entry.run.lock().await.pipeline.stages.get(index).cloned() else {
                break (WorkflowState::Completed, None);
            };
            match self.run_one(&entry, index, stage, dequeued, &mut controls).await {
                Ok(()) => index += 1,
                Err(end) => break end,
            }
            dequeued = std::time::Instant::now();
        };
        if self.inner.shutdown.is_cancelled() {
            // a shutdown is not the run's end: it stays as stored and the next start
            // takes it up again (waiting at its gate, or failed `server restarted`)
            return;
        }
        // finished before the slot is given back, so no sample ever sees one run too many
        self.finish(&entry, outcome.0, outcome.1, index + 1).await;
        drop(permit);
    }

    /// Runs stage `index`; Ok to go on, Err with how the run ends.
    async fn run_one(
        &self,
        entry: &Arc<Entry>,
        index: usize,
        stage: StageDef,
        dequeued: std::time::Instant,
        controls: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Result<(), Ending> {
        let id = {
            let mut run = entry.run.lock().await;
            run.stage_index = Some(index);
            run.stages[index].status = StageState::Running;
            run.stages[index].started_at = Some(now_ms());
            self.publish_stage(entry, &run, index).await;
            self.publish_status(entry, &mut run).await;
            run.id.clone()
        };
        let hub = &self.inner.hub;
        self.inner.agent.stage_started(hub, &format!("{id}/{}", stage.id)).await;
        let started = std::time::Instant::now();
        let run_dir = self.inner.config.runs_dir.join(&id);
        let artifacts_dir = run_dir.join("artifacts");
        let spec = ProcessSpec {
            vars: vec![
                ("SWITCHBOARD_WORKFLOW_ID".into(), id.clone()),
                ("SWITCHBOARD_STAGE_ID".into(), stage.id.clone()),
                ("SWITCHBOARD_ARTIFACTS".into(), artifacts_dir.display().to_string()),
                ("SWITCHBOARD_PIPELINES".into(), self.inner.config.pipelines_dir.display().to_string()),
            ],
            stage: stage.clone(),
            run_dir,
            env_deny: self.inner.env_deny.clone(),
            cancel_grace: self.inner.config.cancel_grace,
        };
        let target = StageTarget { hub: hub.clone(), topic: topic_of(&id), workflow_id: id, stage_id: stage.id.clone(), artifacts_dir };
        let notices = StageNotices { engine: self, entry, index };
        let mut output = StageOutput::new(target, &notices, entry.output.clone());
        let latency = &hub.counters().stage_start_latency;
        let mut on_spawned = || latency.observe(dequeued.elapsed().as_secs_f64());
        let end = run_process(&spec, controls, &mut output, &mut on_spawned).await;
        let dropped = output.dropped;
        drop(output);
        let failed = !matches!(end, StageEnd::Exited(0) | StageEnd::Cancelled);
        self.inner.agent.stage_finished(hub, started.elapsed().as_secs_f64(), failed).await;
        let result = self.record_end(entry, index, &stage, end, dropped).await;
        if result.is_err() || !stage.confirm {
            return result;
        }
        self.wait_for_confirmation(entry, index, controls).await
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
            StageEnd::SpawnFailed(e) => {
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
struct StageNotices<'a> {
    engine: &'a Engine,
    entry: &'a Entry,
    index: usize,
}

impl Notices for StageNotices<'_> {
    fn notice(&self, notice: Notice) -> BoxFuture<'_, ()> {
        Box::pin(self.engine.on_notice(self.entry, self.index, notice))
    }
}
