//! The job engine: pipelines of real processes. Each submitted pipeline is a run
//! (`workflow:{id}`), queued FIFO behind a concurrency limit, its stages run one after
//! another by `runner`, its state changes published as events while the run's lock is
//! held, so a snapshot and its `seq` always agree.

pub mod agents;
mod book;
pub mod output;
pub mod pipeline;
pub mod run;
pub mod runner;
pub mod stage_env;

use crate::hub::{now_ms, Hub};
use crate::metrics::{QueueFigures, QueueProbe};
use crate::storage::{StageRow, Store, StoredRun, WorkflowRow, Write};
use agents::LocalAgent;
use book::Book;
use app::protocol::{
    names, ControlAction, CoordinatorMetrics, ErrorCode, Progress, StageState, TopicKind, WorkflowState,
    COORDINATOR_TOPIC,
};
use pipeline::{Pipeline, PipelineError};
use run::Run;
use runner::{Control, Notice, StageContext, StageEnd};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub concurrency: usize,
    pub cancel_grace: Duration,
    pub runs_dir: PathBuf,
    pub pipelines_dir: PathBuf,
    /// Whether inline pipelines (any shell command) may be started at all.
    pub inline_pipelines: bool,
    /// Globs of the server's environment variables no stage inherits.
    pub stage_env_deny: Vec<String>,
    pub max_stages: usize,
    pub max_queued_runs: usize,
    pub max_chat_bytes: usize,
}

impl EngineConfig {
    pub fn from_settings(s: &crate::config::EngineSettings, runs_dir: PathBuf) -> EngineConfig {
        EngineConfig {
            concurrency: s.concurrency as usize,
            cancel_grace: Duration::from_secs(s.cancel_grace_s),
            runs_dir,
            pipelines_dir: s.pipelines_dir.clone(),
            inline_pipelines: s.inline_pipelines.is_on(),
            stage_env_deny: s.stage_env_deny.clone(),
            max_stages: s.max_stages as usize,
            max_queued_runs: s.max_queued_runs as usize,
            max_chat_bytes: s.max_chat_bytes as usize,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no workflow {0:?}")]
    NotFound(String),
    #[error("no pipeline named {0:?}")]
    NoPipeline(String),
    #[error("invalid pipeline: {0}")]
    Invalid(#[from] PipelineError),
    #[error("no stage {stage:?} in workflow {workflow:?}")]
    NoStage { workflow: String, stage: String },
    #[error("{0}")]
    Conflict(String),
    #[error("cannot prepare the run's folder: {0}")]
    Io(String),
    #[error("the queue already holds {0} waiting runs, the most allowed (SWITCHBOARD_MAX_QUEUED_RUNS): retry later")]
    QueueFull(usize),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
}

impl EngineError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::NotFound(_) | EngineError::NoPipeline(_) | EngineError::NoStage { .. } => ErrorCode::NotFound,
            EngineError::Invalid(_) | EngineError::BadRequest(_) => ErrorCode::BadRequest,
            EngineError::Conflict(_) => ErrorCode::Conflict,
            EngineError::Io(_) => ErrorCode::Internal,
            EngineError::QueueFull(_) => ErrorCode::RateLimited,
            EngineError::Forbidden(_) => ErrorCode::Forbidden,
        }
    }
}

struct Entry {
    run: Mutex<Run>,
    controls: Mutex<Option<mpsc::UnboundedSender<Control>>>,
}

impl Entry {
    fn lock(&self) -> MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, control: Control) -> bool {
        let controls = self.controls.lock().unwrap_or_else(|p| p.into_inner());
        controls.as_ref().is_some_and(|tx| tx.send(control).is_ok())
    }
}

struct Inner {
    hub: Hub,
    config: EngineConfig,
    pipelines: RwLock<Vec<Pipeline>>,
    runs: Mutex<HashMap<String, Arc<Entry>>>,
    order: Mutex<Vec<String>>,
    slots: Arc<Semaphore>,
    /// Tickets of runs waiting for a slot, in submission order: only the front one
    /// waits on `slots`, so runs start first come, first served whatever order their
    /// tasks are first polled in.
    line: Mutex<std::collections::VecDeque<u64>>,
    next_ticket: std::sync::atomic::AtomicU64,
    turn: tokio::sync::Notify,
    /// Durations of completed runs per pipeline (sum, count), for the ETA.
    durations: Mutex<HashMap<String, (f64, u32)>>,
    agent: LocalAgent,
    /// What the metrics sample reports: updated with every state change, read at once.
    book: Mutex<Book>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    store: Option<Store>,
    env_deny: stage_env::EnvDeny,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn new_run_id() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// Why an inline pipeline is refused on a server that does not take them.
pub const INLINE_OFF: &str =
    "inline pipelines (any shell command) are off on this server: start a named pipeline, or turn them on with SWITCHBOARD_INLINE_PIPELINES=on";

/// Progress a run makes between two of its summaries on `coordinator`.
const SUMMARY_STEP: f64 = 0.01;

fn topic_of(id: &str) -> String {
    // ids are generated hex: always a valid topic
    TopicKind::Workflow.topic(id).unwrap_or_else(|_| format!("workflow:{}", id.to_lowercase()))
}

impl Engine {
    pub fn new(
        hub: Hub,
        mut config: EngineConfig,
        tracker: TaskTracker,
        shutdown: CancellationToken,
        store: Option<Store>,
    ) -> Engine {
        // stages run in their own folders: give them absolute paths
        for dir in [&mut config.runs_dir, &mut config.pipelines_dir] {
            if let Ok(abs) = std::path::absolute(&*dir) {
                *dir = abs;
            }
        }
        let (pipelines, errors) = pipeline::load_folder(&config.pipelines_dir, config.max_stages);
        for e in &errors {
            tracing::warn!("pipeline not loaded: {e}");
        }
        tracing::info!(count = pipelines.len(), dir = %config.pipelines_dir.display(), "pipelines loaded");
        let engine = Engine {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
                line: Mutex::new(std::collections::VecDeque::new()),
                next_ticket: std::sync::atomic::AtomicU64::new(0),
                turn: tokio::sync::Notify::new(),
                hub,
                pipelines: RwLock::new(pipelines),
                runs: Mutex::new(HashMap::new()),
                order: Mutex::new(Vec::new()),
                durations: Mutex::new(HashMap::new()),
                agent: LocalAgent::new(),
                book: Mutex::new(Book::default()),
                tracker,
                shutdown,
                store,
                env_deny: stage_env::EnvDeny::new(&config.stage_env_deny),
                config,
            }),
        };
        engine.inner.agent.publish(&engine.inner.hub);
        engine
    }

    pub fn pipelines(&self) -> Vec<Pipeline> {
        self.inner.pipelines.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn agents(&self) -> Vec<app::protocol::AgentStatus> {
        vec![self.inner.agent.status()]
    }

    /// Whether the server takes inline pipelines at all (`--inline-pipelines`).
    pub fn inline_allowed(&self) -> bool {
        self.inner.config.inline_pipelines
    }

    /// Starts a run of a named pipeline or of an inline definition (the caller checked
    /// that its principal may start that kind). Refused when the queue is full.
    pub fn submit(&self, pipeline: Value) -> Result<Value, EngineError> {
        let pipeline = match pipeline {
            Value::String(name) => self
                .pipelines()
                .into_iter()
                .find(|p| p.name == name)
                .ok_or(EngineError::NoPipeline(name))?,
            _ if !self.inner.config.inline_pipelines => return Err(EngineError::Forbidden(INLINE_OFF.into())),
            other => Pipeline::from_json(other, self.inner.config.max_stages)?,
        };
        let waiting = lock(&self.inner.book).figures().pending as usize;
        if waiting >= self.inner.config.max_queued_runs {
            return Err(EngineError::QueueFull(waiting));
        }
        let id = new_run_id();
        let run_dir = self.inner.config.runs_dir.join(&id);
        std::fs::create_dir_all(run_dir.join("artifacts")).map_err(|e| EngineError::Io(e.to_string()))?;
        let entry = Arc::new(Entry { run: Mutex::new(Run::new(id.clone(), pipeline, now_ms())), controls: Mutex::new(None) });
        lock(&self.inner.runs).insert(id.clone(), entry.clone());
        lock(&self.inner.order).push(id.clone());
        {
            let mut run = entry.lock();
            self.publish_status(&mut run);
        }
        self.spawn_run(entry.clone(), 0);
        Ok(self.snapshot_of(&entry))
    }

    fn entry(&self, id: &str) -> Result<Arc<Entry>, EngineError> {
        lock(&self.inner.runs).get(id).cloned().ok_or_else(|| EngineError::NotFound(id.to_owned()))
    }

    fn snapshot_of(&self, entry: &Entry) -> Value {
        let run = entry.lock();
        let mut v = serde_json::to_value(&*run).unwrap_or(Value::Null);
        if let (Value::Object(map), Ok((seq, epoch))) = (&mut v, self.inner.hub.position(&topic_of(&run.id))) {
            map.insert("seq".into(), seq.into());
            map.insert("epoch".into(), epoch.into());
        }
        v
    }

    /// The run's state with the `seq` and `epoch` of its topic at that instant.
    pub fn snapshot(&self, id: &str) -> Result<Value, EngineError> {
        let entry = self.entry(id)?;
        Ok(self.snapshot_of(&entry))
    }

    /// The run's artifact folder (the run must exist).
    pub fn artifacts_dir(&self, id: &str) -> Result<PathBuf, EngineError> {
        self.entry(id)?;
        Ok(self.inner.config.runs_dir.join(id).join("artifacts"))
    }

    /// Every run, newest first.
    pub fn list(&self) -> Vec<Value> {
        let ids: Vec<String> = lock(&self.inner.order).iter().rev().cloned().collect();
        ids.iter().filter_map(|id| self.snapshot(id).ok()).collect()
    }

    fn persist_run(&self, run: &Run) {
        let Some(store) = &self.inner.store else { return };
        let epoch = self.inner.hub.position(&topic_of(&run.id)).map(|(_, e)| e).unwrap_or_default();
        store.write(Write::Workflow(WorkflowRow {
            id: run.id.clone(),
            name: run.name.clone(),
            pipeline: serde_json::to_string(&run.pipeline).unwrap_or_default(),
            state: name_of(&run.state),
            error: run.error.clone(),
            epoch,
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
        }));
    }

    fn persist_stage(&self, run: &Run, index: usize) {
        let (Some(store), Some(s)) = (&self.inner.store, run.stages.get(index)) else { return };
        store.write(Write::Stage(StageRow {
            workflow_id: run.id.clone(),
            idx: index as i64,
            id: s.id.clone(),
            status: name_of(&s.status),
            progress: s.progress,
            started_at: s.started_at,
            finished_at: s.finished_at,
            exit_code: s.exit_code.map(i64::from),
            error: s.error.clone(),
        }));
    }

    /// Brings back the runs an earlier process stored. A stage that was running (or
    /// paused) when that process died is failed with `server restarted` and can be
    /// restarted; queued runs are queued again; a run at a confirmation gate waits.
    ///
    /// After a clean shutdown every run's topic keeps its epoch, so a page resumes where
    /// it was. After a crash the last events a page saw may never have reached the
    /// disk, so the seqs after the stored ones would name other events: each topic
    /// then starts a new epoch and every client reloads it (PROTOCOL.md section 3).
    pub fn restore(&self, stored: Vec<StoredRun>, clean: bool) {
        let (mut failed, mut requeued, mut waiting) = (0, 0, 0);
        for s in stored {
            let Some(mut run) = revive(&s) else {
                tracing::warn!(id = %s.workflow.id, "a stored run could not be read; skipped");
                continue;
            };
            let topic = topic_of(&run.id);
            let epoch = clean.then(|| s.workflow.epoch.clone());
            if let Err(e) = self.inner.hub.restore_topic(&topic, epoch, s.events) {
                tracing::warn!(error = %e, "cannot restore a run's topic");
            }
            let entry_state = run.state;
            let mut resume = None;
            match entry_state {
                WorkflowState::Running | WorkflowState::Paused => {
                    for st in run.stages.iter_mut() {
                        if matches!(st.status, StageState::Running | StageState::Paused) {
                            st.status = StageState::Failed;
                            st.error = Some("server restarted".into());
                            st.finished_at = Some(now_ms());
                        }
                    }
                    failed += 1;
                }
                WorkflowState::Pending => {
                    resume = Some((run.stages.iter().position(|st| st.status != StageState::Completed).unwrap_or(0), false));
                    requeued += 1;
                }
                WorkflowState::WaitingConfirmation => {
                    let at = run.stages.iter().position(|st| st.status == StageState::WaitingConfirmation).unwrap_or(0);
                    resume = Some((at, true));
                    waiting += 1;
                }
                _ => {}
            }
            self.track(&run);
            if !clean {
                self.persist_run(&run);
            }
            let id = run.id.clone();
            let entry = Arc::new(Entry { run: Mutex::new(run), controls: Mutex::new(None) });
            lock(&self.inner.runs).insert(id.clone(), entry.clone());
            lock(&self.inner.order).push(id);
            if matches!(entry_state, WorkflowState::Running | WorkflowState::Paused) {
                let run = entry.lock();
                for i in 0..run.stages.len() {
                    if run.stages[i].status == StageState::Failed {
                        self.publish_stage(&run, i);
                    }
                }
                let from = run.stages.iter().position(|st| st.status == StageState::Failed).map_or(0, |i| i + 1);
                drop(run);
                self.finish(&entry, WorkflowState::Failed, Some("server restarted".into()), from);
            }
            if let Some((from, confirm_first)) = resume {
                self.spawn_run_from(entry, from, confirm_first);
            }
        }
        if failed + requeued + waiting > 0 {
            tracing::info!(failed, requeued, waiting, "runs restored from the database");
        }
    }

    /// Publishes the run's status on its topic and its summary on `coordinator`.
    fn publish_status(&self, run: &mut Run) {
        self.persist_run(run);
        self.track(run);
        let _ = self.inner.hub.publish(&topic_of(&run.id), names::WORKFLOW_STATUS, &run.status_event(false));
        self.publish_summary(run);
    }

    /// The run's summary on `coordinator`; a subscriber that may not see the run gets
    /// it without the run's id and name.
    fn publish_summary(&self, run: &mut Run) {
        run.summarised_progress = run.progress;
        let (full, anonymous) = (run.status_event(true), run.status_event(false));
        let scope = topic_of(&run.id);
        let _ = self.inner.hub.publish_scoped(COORDINATOR_TOPIC, names::WORKFLOW_STATUS, &full, &scope, &anonymous);
    }

    /// A `notification` on the run's topic, for the moments a person wants to hear of.
    fn notify(&self, run: &Run, title: String, message: String, priority: &str) {
        let n = app::protocol::Notification { title, message, priority: priority.to_owned() };
        let _ = self.inner.hub.publish(&topic_of(&run.id), names::NOTIFICATION, &n);
    }

    /// Brings the queue book up to date with the run (its lock held by the caller).
    fn track(&self, run: &Run) {
        lock(&self.inner.book).update(&run.id, &run.name, run.state, run.progress);
    }

    fn publish_stage(&self, run: &Run, index: usize) {
        self.persist_stage(run, index);
        if let Some(stage) = run.stages.get(index) {
            let _ = self.inner.hub.publish(&topic_of(&run.id), names::STAGE_STATUS, &stage.status_event());
        }
    }

    pub fn control(&self, id: &str, action: ControlAction) -> Result<(), EngineError> {
        let entry = self.entry(id)?;
        let state = entry.lock().state;
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

    pub fn confirm(&self, id: &str) -> Result<(), EngineError> {
        let entry = self.entry(id)?;
        if entry.lock().state != WorkflowState::WaitingConfirmation {
            return Err(EngineError::Conflict(format!("workflow {id:?} has no stage waiting for confirmation")));
        }
        entry.send(Control::Confirm);
        Ok(())
    }

    /// Reruns a stage and those after it (the retry of a failed stage too). Only a
    /// run that has ended can be restarted.
    pub fn restart_stage(&self, id: &str, stage_id: &str) -> Result<(), EngineError> {
        let entry = self.entry(id)?;
        let index = {
            let mut run = entry.lock();
            let index = run
                .stage_position(stage_id)
                .ok_or_else(|| EngineError::NoStage { workflow: id.into(), stage: stage_id.into() })?;
            if !run.state.is_finished() {
                return Err(EngineError::Conflict(format!(
                    "workflow {id:?} is {:?}: cancel it before restarting a stage",
                    run.state
                )));
            }
            for s in &mut run.stages[index..] {
                s.reset();
            }
            run.state = WorkflowState::Pending;
            run.finished_at = None;
            run.error = None;
            run.eta_s = None;
            run.recompute_progress();
            self.publish_status(&mut run);
            for i in index..run.stages.len() {
                self.publish_stage(&run, i);
            }
            index
        };
        self.spawn_run(entry, index);
        Ok(())
    }

    /// A `chat` event on the run's topic; a stage reading chat gets it on stdin.
    pub fn chat(&self, id: &str, from: &str, text: &str) -> Result<(), EngineError> {
        let max = self.inner.config.max_chat_bytes;
        if text.len() > max {
            return Err(EngineError::BadRequest(format!(
                "text: {} bytes is over the limit of {max} (SWITCHBOARD_MAX_CHAT_BYTES)",
                text.len()
            )));
        }
        let entry = self.entry(id)?;
        let chat = app::protocol::Chat { from: from.to_owned(), text: text.to_owned() };
        let _ = self.inner.hub.publish(&topic_of(id), names::CHAT, &chat);
        entry.send(Control::Chat(text.to_owned()));
        Ok(())
    }

    fn spawn_run(&self, entry: Arc<Entry>, from: usize) {
        self.spawn_run_from(entry, from, false);
    }

    fn spawn_run_from(&self, entry: Arc<Entry>, from: usize, confirm_first: bool) {
        let (tx, rx) = mpsc::unbounded_channel();
        *lock(&entry.controls) = Some(tx);
        let ticket = self.inner.next_ticket.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.inner.line).push_back(ticket);
        let engine = self.clone();
        self.inner.tracker.spawn(async move { engine.drive(entry, ticket, from, confirm_first, rx).await });
    }

    fn leave_line(&self, ticket: u64) {
        lock(&self.inner.line).retain(|t| *t != ticket);
        self.inner.turn.notify_waiters();
    }

    /// Waits for this run's turn and a slot; None when it was cancelled (or the server
    /// stops) first.
    async fn wait_turn(
        &self,
        ticket: u64,
        controls: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        loop {
            // created before the check, so a notify_waiters in between is not missed
            let turn = self.inner.turn.notified();
            let front = lock(&self.inner.line).front() == Some(&ticket);
            let slots = self.inner.slots.clone();
            tokio::select! {
                permit = slots.acquire_owned(), if front => {
                    self.leave_line(ticket);
                    return permit.ok();
                }
                _ = turn, if !front => {}
                ctl = controls.recv() => if let Some(Control::Cancel) | None = ctl {
                    self.leave_line(ticket);
                    return None;
                },
                _ = self.inner.shutdown.cancelled() => return None,
            }
        }
    }

    /// Waits for its turn in line and a slot (`wait_turn`), then runs the stages from
    /// `from` (first waiting for the confirmation of stage `from` when asked).
    async fn drive(
        &self,
        entry: Arc<Entry>,
        ticket: u64,
        from: usize,
        confirm_first: bool,
        mut controls: mpsc::UnboundedReceiver<Control>,
    ) {
        let Some(permit) = self.wait_turn(ticket, &mut controls).await else {
            if !self.inner.shutdown.is_cancelled() {
                self.finish(&entry, WorkflowState::Cancelled, Some("cancelled before it started".into()), from);
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
                self.finish(&entry, state, error, from + 1);
                drop(permit);
                return;
            }
            index += 1;
        } else {
            let mut run = entry.lock();
            run.state = WorkflowState::Running;
            run.started_at.get_or_insert(now_ms());
            self.publish_status(&mut run);
        }
        let outcome = loop {
            let Some(stage) = entry.lock().pipeline.stages.get(index).cloned() else {
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
        self.finish(&entry, outcome.0, outcome.1, index + 1);
        drop(permit);
    }

    /// Runs stage `index`; Ok to go on, Err with how the run ends.
    async fn run_one(
        &self,
        entry: &Arc<Entry>,
        index: usize,
        stage: pipeline::StageDef,
        dequeued: std::time::Instant,
        controls: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Result<(), (WorkflowState, Option<String>)> {
        let id = entry.lock().id.clone();
        let started = std::time::Instant::now();
        {
            let mut run = entry.lock();
            run.stage_index = Some(index);
            run.stages[index].status = StageState::Running;
            run.stages[index].started_at = Some(now_ms());
            self.publish_stage(&run, index);
            self.publish_status(&mut run);
        }
        self.inner.agent.stage_started(&self.inner.hub, &format!("{id}/{}", stage.id));
        let run_dir = self.inner.config.runs_dir.join(&id);
        let ctx = StageContext {
            hub: self.inner.hub.clone(),
            workflow_id: id.clone(),
            topic: topic_of(&id),
            artifacts_dir: run_dir.join("artifacts"),
            run_dir,
            pipelines_dir: self.inner.config.pipelines_dir.clone(),
            stage: stage.clone(),
            cancel_grace: self.inner.config.cancel_grace,
            dequeued,
            env_deny: self.inner.env_deny.clone(),
        };
        let on = |notice: Notice| self.on_notice(entry, index, notice);
        let end = runner::run_stage(&ctx, controls, &on).await;
        let failed = !matches!(end, StageEnd::Exited(0) | StageEnd::Cancelled);
        self.inner.agent.stage_finished(&self.inner.hub, started.elapsed().as_secs_f64(), failed);
        let result = self.record_end(entry, index, &stage, end);
        if result.is_err() || !stage.confirm {
            return result;
        }
        self.wait_for_confirmation(entry, index, controls).await
    }

    /// Records how stage `index` ended; Ok to go on (or to wait for confirmation).
    fn record_end(
        &self,
        entry: &Entry,
        index: usize,
        stage: &pipeline::StageDef,
        end: StageEnd,
    ) -> Result<(), (WorkflowState, Option<String>)> {
        let mut run = entry.lock();
        let s = &mut run.stages[index];
        s.finished_at = Some(now_ms());
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
        self.publish_stage(&run, index);
        if result.is_ok() && stage.confirm {
            run.state = WorkflowState::WaitingConfirmation;
            self.publish_status(&mut run);
            let title = format!("{} is waiting for you", run.name);
            let message = format!("stage {:?} succeeded: confirm to go on", stage.display_name());
            self.notify(&run, title, message, "high");
        }
        result
    }

    async fn wait_for_confirmation(
        &self,
        entry: &Arc<Entry>,
        index: usize,
        controls: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Result<(), (WorkflowState, Option<String>)> {
        loop {
            let ctl = tokio::select! {
                ctl = controls.recv() => ctl,
                _ = self.inner.shutdown.cancelled() => None,
            };
            match ctl {
                Some(Control::Confirm) => {
                    let mut run = entry.lock();
                    run.stages[index].status = StageState::Completed;
                    run.state = WorkflowState::Running;
                    run.recompute_progress();
                    self.publish_stage(&run, index);
                    self.publish_status(&mut run);
                    return Ok(());
                }
                Some(Control::Cancel) | None => return Err((WorkflowState::Cancelled, Some("cancelled".into()))),
                Some(_) => {}
            }
        }
    }

    fn on_notice(&self, entry: &Entry, index: usize, notice: Notice) {
        let mut run = entry.lock();
        match notice {
            Notice::Progress { fraction, message } => {
                run.stages[index].progress = fraction;
                run.recompute_progress();
                let elapsed = run.started_at.map_or(0.0, |t| (now_ms() - t) as f64 / 1000.0);
                let past = lock(&self.inner.durations).get(&run.name).map(|(sum, n)| sum / *n as f64);
                run.eta_s = run::eta(run.progress, elapsed, past);
                let event = Progress {
                    progress: run.progress,
                    stage: Some(run.stages[index].id.clone()),
                    message,
                    eta_s: run.eta_s,
                };
                let _ = self.inner.hub.publish(&topic_of(&run.id), names::PROGRESS, &event);
                self.track(&run);
                // the dashboard's list moves with the coordinator's summaries: one per
                // percent of progress, not one per `::progress` line
                if (run.progress - run.summarised_progress).abs() >= SUMMARY_STEP {
                    self.publish_summary(&mut run);
                }
            }
            Notice::Paused(paused) => {
                let (w, s) = if paused {
                    (WorkflowState::Paused, StageState::Paused)
                } else {
                    (WorkflowState::Running, StageState::Running)
                };
                run.state = w;
                run.stages[index].status = s;
                self.publish_stage(&run, index);
                self.publish_status(&mut run);
            }
        }
    }

    /// Ends a run: state, skipped stages, history for the ETA, controls closed.
    fn finish(&self, entry: &Entry, state: WorkflowState, error: Option<String>, skip_from: usize) {
        *lock(&entry.controls) = None;
        let mut run = entry.lock();
        run.state = state;
        run.error = error;
        run.finished_at = Some(now_ms());
        run.stage_index = None;
        for i in skip_from.min(run.stages.len())..run.stages.len() {
            if run.stages[i].status == StageState::Pending {
                run.stages[i].status = StageState::Skipped;
                self.publish_stage(&run, i);
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
        self.publish_status(&mut run);
        let verb = name_of(&state);
        let message = match (&run.error, run.started_at, run.finished_at) {
            (Some(error), _, _) => error.clone(),
            (None, Some(start), Some(end)) => format!("{} stages in {:.1} s", run.stages.len(), (end - start) as f64 / 1000.0),
            _ => String::new(),
        };
        let priority = if state == WorkflowState::Failed { "high" } else { "normal" };
        self.notify(&run, format!("{} {verb}", run.name), message, priority);
    }

    /// The coordinator's figures now.
    pub fn coordinator_metrics(&self) -> CoordinatorMetrics {
        let runs: Vec<WorkflowState> = lock(&self.inner.runs).values().map(|e| e.lock().state).collect();
        let agent = self.inner.agent.status();
        let (messages, connections) = self.inner.hub.stats_counts();
        CoordinatorMetrics {
            total_messages: messages,
            total_workflows: runs.len() as u64,
            registered_agents: 1,
            healthy_agents: u64::from(agent.metrics.is_healthy),
            active_workflows: runs.iter().filter(|s| !s.is_finished()).count() as u64,
            connections,
        }
    }

    /// `coordinator_metrics` every `every` until shutdown.
    pub async fn run_coordinator(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let m = self.coordinator_metrics();
            let _ = self.inner.hub.publish(COORDINATOR_TOPIC, names::COORDINATOR_METRICS, &m);
        }
    }
}

/// The protocol's name of a state (`"waiting_confirmation"`).
fn name_of<T: serde::Serialize>(state: &T) -> String {
    serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn parse_state<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(Value::String(name.to_owned())).ok()
}

/// A stored run as a `Run`, or None when a row no longer reads.
fn revive(s: &StoredRun) -> Option<Run> {
    let w = &s.workflow;
    let pipeline: Pipeline = serde_json::from_str(&w.pipeline).ok()?;
    let mut run = Run::new(w.id.clone(), pipeline, w.created_at);
    run.state = parse_state(&w.state)?;
    run.error = w.error.clone();
    run.started_at = w.started_at;
    run.finished_at = w.finished_at;
    for row in &s.stages {
        let Some(st) = run.stages.get_mut(row.idx as usize) else { continue };
        st.status = parse_state(&row.status)?;
        st.progress = row.progress;
        st.started_at = row.started_at;
        st.finished_at = row.finished_at;
        st.exit_code = row.exit_code.map(|c| c as i32);
        st.error = row.error.clone();
    }
    run.recompute_progress();
    Some(run)
}

impl crate::hub::WorkflowActions for Engine {
    fn control(&self, id: &str, action: ControlAction) -> Result<(), (ErrorCode, String)> {
        Engine::control(self, id, action).map_err(|e| (e.code(), e.to_string()))
    }

    fn confirm(&self, id: &str) -> Result<(), (ErrorCode, String)> {
        Engine::confirm(self, id).map_err(|e| (e.code(), e.to_string()))
    }

    fn restart_stage(&self, id: &str, stage_id: &str) -> Result<(), (ErrorCode, String)> {
        Engine::restart_stage(self, id, stage_id).map_err(|e| (e.code(), e.to_string()))
    }

    fn chat(&self, id: &str, from: &str, text: &str) -> Result<(), (ErrorCode, String)> {
        Engine::chat(self, id, from, text).map_err(|e| (e.code(), e.to_string()))
    }
}

impl QueueProbe for Engine {
    fn figures(&self) -> QueueFigures {
        lock(&self.inner.book).figures()
    }
}
