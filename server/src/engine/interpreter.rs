//! What a stage's output becomes: the stage output protocol read off its stdout lines
//! (`::progress`, `::metric`, `::artifact`, `::notice|warning|error`), and every other
//! line terminal output, batched (16 KiB or 50 ms, whichever comes first) and stored up
//! to the run's output cap (past it: one notice, and the bytes dropped are counted in
//! the stage's status). The same for every executor: a local process, a remote agent.

use super::output::{parse_line, OutputLine};
use super::process::OutputSink;
use crate::hub::Hub;
use app::protocol::{names, Artifact, ArtifactKind, LogLevel, LogLine, MetricScalar, OutputStream, TerminalOutput};
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Terminal output is published when this much is waiting...
const BATCH_BYTES: usize = 16 * 1024;
/// ...or when the oldest waiting line is this old.
const BATCH_AGE: Duration = Duration::from_millis(50);
/// At most one notice per this long about chat lines dropped.
const CHAT_NOTICE_EVERY: Duration = Duration::from_secs(1);

/// What the stage tells the engine while it runs.
#[derive(Debug)]
pub enum Notice {
    Progress { fraction: f64, message: Option<String> },
    Paused(bool),
}

/// The engine's side of a running stage: it updates the run's state on a notice.
pub trait Notices: Send + Sync {
    fn notice(&self, notice: Notice) -> BoxFuture<'_, ()>;
}

/// A run's terminal output, counted against its cap, shared by its stages.
#[derive(Debug)]
pub struct OutputBudget {
    pub stored: AtomicU64,
    pub cap: u64,
}

/// Where a stage's events go.
pub struct StageTarget {
    pub hub: Hub,
    pub topic: String,
    pub workflow_id: String,
    pub stage_id: String,
    pub artifacts_dir: PathBuf,
}

pub struct StageOutput<'a> {
    target: StageTarget,
    notices: &'a dyn Notices,
    budget: Arc<OutputBudget>,
    stream: OutputStream,
    text: String,
    since: Option<Instant>,
    /// Bytes this stage's output lost to the run's cap.
    pub dropped: u64,
    last_chat_notice: Option<Instant>,
}

impl<'a> StageOutput<'a> {
    pub fn new(target: StageTarget, notices: &'a dyn Notices, budget: Arc<OutputBudget>) -> Self {
        StageOutput { target, notices, budget, stream: OutputStream::Stdout, text: String::new(), since: None, dropped: 0, last_chat_notice: None }
    }

    async fn publish<T: serde::Serialize>(&self, event: &str, data: &T) {
        if let Err(e) = self.target.hub.publish(&self.target.topic, event, data).await {
            tracing::error!(error = %e, "cannot publish a stage event");
        }
    }

    async fn log(&self, level: LogLevel, message: String) {
        self.publish(names::LOG_LINE, &LogLine { level, message }).await;
    }

    async fn flush_now(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let output = std::mem::take(&mut self.text);
        self.since = None;
        let out = TerminalOutput { stage_id: self.target.stage_id.clone(), stream: self.stream, output };
        self.publish(names::TERMINAL_OUTPUT, &out).await;
    }

    async fn push_text(&mut self, stream: OutputStream, line: &str) {
        let bytes = line.len() as u64 + 1;
        let before = self.budget.stored.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > self.budget.cap {
            self.budget.stored.fetch_sub(bytes, Ordering::Relaxed);
            if self.dropped == 0 {
                self.flush_now().await;
                let message = format!(
                    "terminal output of this run is past its cap of {} bytes (SWITCHBOARD_MAX_OUTPUT_BYTES): the rest is not stored",
                    self.budget.cap
                );
                self.log(LogLevel::Warning, message).await;
            }
            self.dropped += bytes;
            return;
        }
        if self.stream != stream {
            self.flush_now().await;
            self.stream = stream;
        }
        self.text.push_str(line);
        self.text.push('\n');
        self.since.get_or_insert_with(Instant::now);
        if self.text.len() >= BATCH_BYTES {
            self.flush_now().await;
        }
    }

    async fn stdout(&mut self, line: String) {
        match parse_line(&line) {
            OutputLine::Text => self.push_text(OutputStream::Stdout, &line).await,
            OutputLine::Progress { fraction, message } => self.notices.notice(Notice::Progress { fraction, message }).await,
            OutputLine::Metrics { values, step } => {
                for (name, value) in values {
                    self.publish(names::METRIC_SCALAR, &MetricScalar { name, value, step }).await;
                }
            }
            OutputLine::Artifact { path, kind } => match artifact(&self.target, &path, kind) {
                Ok(a) => self.publish(names::ARTIFACT, &a).await,
                Err(message) => self.log(LogLevel::Warning, message).await,
            },
            OutputLine::Log { level, message } => self.log(level, message).await,
        }
    }
}

/// An artifact path must name an existing file inside the artifacts folder.
pub fn artifact(target: &StageTarget, path: &str, kind: ArtifactKind) -> Result<Artifact, String> {
    let dir = &target.artifacts_dir;
    let candidate = if Path::new(path).is_absolute() { PathBuf::from(path) } else { dir.join(path) };
    let real = candidate.canonicalize().map_err(|e| format!("artifact {path}: {e}"))?;
    let root = dir.canonicalize().map_err(|e| format!("artifacts folder: {e}"))?;
    let name = real
        .strip_prefix(&root)
        .map_err(|_| format!("artifact {path} is outside $SWITCHBOARD_ARTIFACTS"))?
        .to_string_lossy()
        .into_owned();
    let meta = std::fs::metadata(&real).map_err(|e| format!("artifact {path}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("artifact {path} is not a file"));
    }
    Ok(Artifact {
        stage_id: target.stage_id.clone(),
        url: format!("/api/v1/workflows/{}/artifacts/{}", target.workflow_id, name),
        name,
        kind,
        bytes: meta.len(),
    })
}

impl OutputSink for StageOutput<'_> {
    fn line(&mut self, stream: OutputStream, text: String) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match stream {
                OutputStream::Stdout => self.stdout(text).await,
                other => self.push_text(other, &text).await,
            }
        })
    }

    fn flush_at(&self) -> Option<Instant> {
        self.since.map(|t| t + BATCH_AGE)
    }

    fn flush(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.flush_now())
    }

    fn paused(&mut self, paused: bool) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.flush_now().await;
            self.notices.notice(Notice::Paused(paused)).await
        })
    }

    fn chat_dropped(&mut self, dropped_so_far: u64) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.target.hub.counters().chat_dropped.inc();
            if self.last_chat_notice.is_none_or(|t| t.elapsed() >= CHAT_NOTICE_EVERY) {
                self.last_chat_notice = Some(Instant::now());
                let message = format!(
                    "chat not delivered: stage {:?} is not reading its stdin ({dropped_so_far} line(s) dropped so far)",
                    self.target.stage_id
                );
                self.log(LogLevel::Warning, message).await;
            }
        })
    }
}
