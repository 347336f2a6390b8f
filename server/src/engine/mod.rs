//! The job engine: pipelines of real processes. Each submitted pipeline is a run
//! (`workflow:{id}`), queued first come first served behind a concurrency limit
//! (`queue`), its stages run one after another (`lifecycle`, `process`, `interpreter`),
//! its state changes published as events while the run's async lock is held, so a
//! snapshot and its `seq` always agree. Finished runs leave memory after a while and
//! are served from the database; start-up takes up only unfinished runs (`restore`).

mod agent_moves;
mod book;
mod config;
mod error;
mod controls;
mod coordinator;
mod forward;
mod handoff;
pub mod interpreter;
mod lifecycle;
mod placement;
pub mod output;
pub mod pipeline;
pub mod process;
mod queue;
mod restore;
mod run_id;
pub mod retention;
pub mod run;
pub mod stage_env;
mod stored;
mod takeover;

use crate::hub::{now_ms, Hub};
use crate::metrics::{QueueFigures, QueueProbe};
use crate::storage::{Reader, Store};
use crate::agents::Registry;
use app::protocol::{ControlAction, ErrorCode, TopicKind, WorkflowSnapshot};
use book::Book;
pub use config::EngineConfig;
pub use error::EngineError;
use interpreter::OutputBudget;
use pipeline::Pipeline;
use process::Control;
use run::Run;
pub use run_id::{valid_run_id, RUN_ID_RULE};
use run_id::new_run_id;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why an inline pipeline is refused on a server that does not take them.
pub const INLINE_OFF: &str =
    "inline pipelines (any shell command) are off on this server: start a named pipeline, or turn them on with SWITCHBOARD_INLINE_PIPELINES=on";

/// How long a new run's reply waits for its row to reach the database.
const STORED_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// A run in memory.
pub(crate) struct Entry {
    /// Async: held across the publishes of a state change, so that events go out in
    /// the order of the changes and a snapshot sees the state and the seq together.
    run: tokio::sync::Mutex<Run>,
    controls: Mutex<Option<mpsc::UnboundedSender<Control>>>,
    output: Arc<OutputBudget>,
    /// The number of the last write queued for this run: it leaves memory only once
    /// the database holds it.
    last_write: AtomicU64,
    /// Given to another node while queued (engine::handoff): nothing here acts on it.
    moved: AtomicBool,
    /// Its place in the line (engine::queue), plus one; 0 before it is first queued.
    ticket: AtomicU64,
    /// A cancel was sent to its task: it is not handed to another node any more.
    cancelling: AtomicBool,
    /// Told whether the run went to the node its agent connected to, once its task
    /// let go of the stage (engine::agent_moves).
    detached: Mutex<Option<(String, tokio::sync::oneshot::Sender<bool>)>>,
}

impl Entry {
    fn new(run: Run, max_output: u64) -> Arc<Entry> {
        let output = Arc::new(OutputBudget { stored: AtomicU64::new(run.output_bytes), cap: max_output });
        Arc::new(Entry { run: tokio::sync::Mutex::new(run), controls: Mutex::new(None), output, last_write: AtomicU64::new(0), moved: AtomicBool::new(false), ticket: AtomicU64::new(0), cancelling: AtomicBool::new(false), detached: Mutex::new(None) })
    }

    fn is_moved(&self) -> bool {
        self.moved.load(Ordering::Acquire)
    }

    fn send(&self, control: Control) -> bool {
        let controls = lock(&self.controls);
        controls.as_ref().is_some_and(|tx| tx.send(control).is_ok())
    }
}

struct Inner {
    hub: Hub,
    config: EngineConfig,
    pipelines: RwLock<Vec<Pipeline>>,
    runs: Mutex<HashMap<String, Arc<Entry>>>,
    /// Finished runs still in memory, oldest finish first, with when they finished.
    finished: Mutex<VecDeque<(String, i64)>>,
    slots: Arc<Semaphore>,
    /// Tickets of runs waiting for a slot, in submission order: only the front one
    /// waits on `slots`, so runs start first come, first served whatever order their
    /// tasks are first polled in.
    line: Mutex<VecDeque<u64>>,
    next_ticket: AtomicU64,
    turn: tokio::sync::Notify,
    /// Durations of completed runs per pipeline (sum, count), for the ETA.
    durations: Mutex<HashMap<String, (f64, u32)>>,
    /// Runs stored (for `coordinator_metrics`).
    total_runs: AtomicU64,
    agents: Registry,
    /// What the metrics sample reports: updated with every state change, read at once.
    book: Mutex<Book>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    store: Store,
    reader: Reader,
    env_deny: stage_env::EnvDeny,
    /// Relaying controls to other nodes (several nodes on PostgreSQL only).
    forwarding: std::sync::OnceLock<Arc<forward::Forwarding>>,
    /// Claims decided by the shared database (several nodes only).
    claims: std::sync::OnceLock<crate::storage::claims::Claims>,
    /// The cluster-wide concurrency limit (`--cluster-concurrency`), when there is one.
    cluster_slots: std::sync::OnceLock<crate::storage::slots::Slots>,
    /// Queued runs handed between nodes (several nodes only).
    handoff: std::sync::OnceLock<crate::storage::handoff::Handoff>,
    /// The agents of other nodes (several nodes only): engine::agent_moves.
    presence: std::sync::OnceLock<crate::storage::presence::Presence>,
    /// Held while runs are taken up from the database, so one is never taken up twice.
    taking_up: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn topic_of(id: &str) -> String {
    // ids are generated hex: always a valid topic
    TopicKind::Workflow.topic(id).unwrap_or_else(|_| format!("workflow:{}", id.to_lowercase()))
}

impl Engine {
    pub fn new(
        hub: Hub,
        agents: Registry,
        mut config: EngineConfig,
        tracker: TaskTracker,
        shutdown: CancellationToken,
        store: Store,
        reader: Reader,
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
        Engine {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
                line: Mutex::new(VecDeque::new()),
                next_ticket: AtomicU64::new(0),
                turn: tokio::sync::Notify::new(),
                hub,
                pipelines: RwLock::new(pipelines),
                runs: Mutex::new(HashMap::new()),
                finished: Mutex::new(VecDeque::new()),
                durations: Mutex::new(HashMap::new()),
                total_runs: AtomicU64::new(0),
                agents,
                book: Mutex::new(Book::default()),
                tracker,
                shutdown,
                store,
                reader,
                env_deny: stage_env::EnvDeny::new(&config.stage_env_deny),
                forwarding: std::sync::OnceLock::new(),
                cluster_slots: std::sync::OnceLock::new(),
                presence: std::sync::OnceLock::new(),
                claims: std::sync::OnceLock::new(),
                handoff: std::sync::OnceLock::new(),
                taking_up: tokio::sync::Mutex::new(()),
                config,
            }),
        }
    }

    /// Runs held in memory now: every unfinished one, and the recently finished.
    pub fn runs_in_memory(&self) -> usize {
        lock(&self.inner.runs).len()
    }

    pub fn pipelines(&self) -> Vec<Pipeline> {
        self.inner.pipelines.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn agents(&self) -> Vec<app::protocol::AgentStatus> {
        self.inner.agents.statuses()
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.agents
    }

    /// Whether the server takes inline pipelines at all (`--inline-pipelines`).
    pub fn inline_allowed(&self) -> bool {
        self.inner.config.inline_pipelines
    }

    /// Reads what `POST /workflows` names: a pipeline's name, or an inline definition
    /// (one whose stages an `executor` runs needs no `--inline-pipelines`: it carries
    /// no command).
    pub fn pipeline_of(&self, pipeline: Value) -> Result<Pipeline, EngineError> {
        match pipeline {
            Value::String(name) => self.pipelines().into_iter().find(|p| p.name == name).ok_or(EngineError::NoPipeline(name)),
            other => {
                let p = Pipeline::from_json(other, self.inner.config.max_stages)?;
                if p.executor.is_none() && !self.inner.config.inline_pipelines {
                    return Err(EngineError::Forbidden(INLINE_OFF.into()));
                }
                Ok(p)
            }
        }
    }

    /// Starts a run of `pipeline` (the caller checked that its principal may start that
    /// kind), under the id asked for or a new one. Refused when the queue is full.
    pub async fn submit(&self, pipeline: Pipeline, asked_id: Option<String>) -> Result<WorkflowSnapshot, EngineError> {
        let waiting = lock(&self.inner.book).figures().pending as usize;
        if waiting >= self.inner.config.max_queued_runs {
            return Err(EngineError::QueueFull(waiting));
        }
        if let Some(error) = self.inner.store.health().degraded() {
            return Err(EngineError::Unwritable(error));
        }
        let id = match asked_id {
            Some(id) => self.claim_id(id).await?,
            None => new_run_id(),
        };
        let run_dir = self.inner.config.runs_dir.join(&id);
        std::fs::create_dir_all(run_dir.join("artifacts")).map_err(|e| EngineError::Io(e.to_string()))?;
        let entry = Entry::new(Run::new(id.clone(), pipeline, now_ms()), self.inner.config.max_output_bytes);
        {
            let mut runs = lock(&self.inner.runs);
            if runs.contains_key(&id) {
                return Err(EngineError::Conflict(format!("a workflow {id:?} exists already")));
            }
            runs.insert(id.clone(), entry.clone());
        }
        if let Err(e) = self.claim_new_run(&entry).await {
            lock(&self.inner.runs).remove(&id);
            return Err(e);
        }
        self.inner.total_runs.fetch_add(1, Ordering::Relaxed);
        {
            let mut run = entry.run.lock().await;
            self.publish_status(&entry, &mut run).await;
        }
        self.spawn_run(entry.clone(), 0, false, None);
        // a 201 says the run is stored: a crash right after the reply must not lose it
        // (several nodes wrote its row in claim_new_run already)
        if self.inner.claims.get().is_none() && !self.inner.store.settled(STORED_WITHIN).await {
            tracing::warn!(%id, "a new run is not stored yet (the database is slow or failing): it runs, and is stored once the database takes writes");
        }
        self.snapshot_of(&entry).await
    }

    fn entry(&self, id: &str) -> Option<Arc<Entry>> {
        lock(&self.inner.runs).get(id).cloned()
    }

    /// The run in memory, or brought back from the database (a finished run that left
    /// memory, to be restarted).
    pub(super) async fn entry_or_load(&self, id: &str) -> Result<Arc<Entry>, EngineError> {
        if let Some(e) = self.entry(id) {
            return Ok(e);
        }
        self.check_owner(id).await?;
        let run = self.stored_run(id).await?;
        let finished = run.state.is_finished();
        if !finished {
            // stored as this node's, not taken up yet (a handover or takeover under way)
            return Err(EngineError::Conflict(format!("workflow {id:?} is being taken up by this node: retry in a moment")));
        }
        let entry = Entry::new(run, self.inner.config.max_output_bytes);
        let entry = lock(&self.inner.runs).entry(id.to_owned()).or_insert(entry).clone();
        if finished {
            // it leaves memory again like any finished run
            self.finished_now(id);
        }
        Ok(entry)
    }

    async fn snapshot_of(&self, entry: &Entry) -> Result<WorkflowSnapshot, EngineError> {
        let run = entry.run.lock().await;
        let (seq, epoch) = self.inner.hub.position(&topic_of(&run.id)).await.map_err(|e| EngineError::Storage(e.to_string()))?;
        Ok(run.snapshot_at(seq, epoch))
    }

    /// The run's state with the `seq` and `epoch` of its topic at that instant.
    pub async fn snapshot(&self, id: &str) -> Result<WorkflowSnapshot, EngineError> {
        match self.entry(id) {
            Some(entry) => self.snapshot_of(&entry).await,
            None => {
                let run = self.stored_run(id).await?;
                let (seq, epoch) = self.inner.hub.position(&topic_of(id)).await.map_err(|e| EngineError::Storage(e.to_string()))?;
                Ok(run.snapshot_at(seq, epoch))
            }
        }
    }

    /// The run's artifact folder (the run must exist).
    pub async fn artifacts_dir(&self, id: &str) -> Result<PathBuf, EngineError> {
        if self.entry(id).is_none() {
            self.stored_run(id).await?;
        }
        Ok(self.inner.config.runs_dir.join(id).join("artifacts"))
    }
}

impl crate::hub::WorkflowActions for Engine {
    fn control<'a>(&'a self, id: &'a str, action: ControlAction) -> futures::future::BoxFuture<'a, Result<(), (ErrorCode, String)>> {
        Box::pin(async move { Engine::control(self, id, action).await.map_err(|e| (e.code(), e.to_string())) })
    }

    fn confirm<'a>(&'a self, id: &'a str) -> futures::future::BoxFuture<'a, Result<(), (ErrorCode, String)>> {
        Box::pin(async move { Engine::confirm(self, id).await.map_err(|e| (e.code(), e.to_string())) })
    }

    fn restart_stage<'a>(&'a self, id: &'a str, stage_id: &'a str) -> futures::future::BoxFuture<'a, Result<(), (ErrorCode, String)>> {
        Box::pin(async move { Engine::restart_stage(self, id, stage_id).await.map_err(|e| (e.code(), e.to_string())) })
    }

    fn chat<'a>(&'a self, id: &'a str, from: &'a str, text: &'a str) -> futures::future::BoxFuture<'a, Result<(), (ErrorCode, String)>> {
        Box::pin(async move { Engine::chat(self, id, from, text).await.map_err(|e| (e.code(), e.to_string())) })
    }
}

impl QueueProbe for Engine {
    fn figures(&self) -> QueueFigures {
        lock(&self.inner.book).figures()
    }
}
