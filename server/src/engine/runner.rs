//! Runs one stage: a real process (`sh -c`) in its own process group, its output read
//! line by line, stage-protocol lines turned into events, the rest batched into
//! `terminal_output` (16 KiB or 50 ms, whichever comes first). Pause, resume and
//! cancel are signals to the whole group.

use super::output::{parse_line, OutputLine};
use super::pipeline::{StageDef, StdinMode};
use crate::hub::Hub;
use app::protocol::{names, Artifact, LogLine, MetricScalar, OutputStream, TerminalOutput};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Terminal output is published when this much is waiting...
const BATCH_BYTES: usize = 16 * 1024;
/// ...or when the oldest waiting line is this old.
const BATCH_AGE: Duration = Duration::from_millis(50);
/// A line longer than this is cut (a runaway process must not exhaust memory).
const MAX_LINE: usize = 64 * 1024;
/// After the stage's shell exits, how long its leftover children may hold the pipes.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// Chat lines waiting for a `stdin = "chat"` stage to read them; more are dropped.
const CHAT_QUEUE: usize = 64;
/// At most one notice per this long about chat lines dropped.
const CHAT_NOTICE_EVERY: Duration = Duration::from_secs(1);

/// What the engine asks of a running stage.
#[derive(Debug)]
pub enum Control {
    Pause,
    Resume,
    Cancel,
    /// Only meaningful between stages (a stage waiting for confirmation).
    Confirm,
    Chat(String),
}

/// What the stage tells the engine while it runs.
#[derive(Debug)]
pub enum Notice {
    Progress { fraction: f64, message: Option<String> },
    Paused(bool),
}

#[derive(Debug, PartialEq)]
pub enum StageEnd {
    Exited(i32),
    TimedOut,
    Cancelled,
    SpawnFailed(String),
}

pub struct StageContext {
    pub hub: Hub,
    pub workflow_id: String,
    pub topic: String,
    pub stage: StageDef,
    pub run_dir: PathBuf,
    pub artifacts_dir: PathBuf,
    /// The pipelines folder, for stages that call scripts shipped beside them.
    pub pipelines_dir: PathBuf,
    pub cancel_grace: Duration,
    /// When the engine took the stage from its queue: the start cost runs to the spawn.
    pub dequeued: std::time::Instant,
    /// What the stage does not inherit of the server's environment.
    pub env_deny: super::stage_env::EnvDeny,
}

struct Batch {
    stream: OutputStream,
    text: String,
    since: Option<Instant>,
}

impl StageContext {
    fn publish<T: serde::Serialize>(&self, event: &str, data: &T) {
        if let Err(e) = self.hub.publish(&self.topic, event, data) {
            tracing::error!(error = %e, "cannot publish a stage event");
        }
    }

    fn flush(&self, batch: &mut Batch) {
        if batch.text.is_empty() {
            return;
        }
        let output = std::mem::take(&mut batch.text);
        batch.since = None;
        self.publish(
            names::TERMINAL_OUTPUT,
            &TerminalOutput { stage_id: self.stage.id.clone(), stream: batch.stream, output },
        );
    }

    fn push_text(&self, batch: &mut Batch, stream: OutputStream, line: &str) {
        if batch.stream != stream {
            self.flush(batch);
            batch.stream = stream;
        }
        batch.text.push_str(line);
        batch.text.push('\n');
        batch.since.get_or_insert_with(Instant::now);
        if batch.text.len() >= BATCH_BYTES {
            self.flush(batch);
        }
    }

    /// An artifact path must name an existing file inside the artifacts folder.
    fn artifact(&self, path: &str, kind: app::protocol::ArtifactKind) -> Result<Artifact, String> {
        let candidate = if Path::new(path).is_absolute() { PathBuf::from(path) } else { self.artifacts_dir.join(path) };
        let real = candidate.canonicalize().map_err(|e| format!("artifact {path}: {e}"))?;
        let root = self.artifacts_dir.canonicalize().map_err(|e| format!("artifacts folder: {e}"))?;
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
            stage_id: self.stage.id.clone(),
            url: format!("/api/v1/workflows/{}/artifacts/{}", self.workflow_id, name),
            name,
            kind,
            bytes: meta.len(),
        })
    }

    fn handle_stdout(&self, batch: &mut Batch, line: &str, on: &(dyn Fn(Notice) + Sync)) {
        match parse_line(line) {
            OutputLine::Text => self.push_text(batch, OutputStream::Stdout, line),
            OutputLine::Progress { fraction, message } => on(Notice::Progress { fraction, message }),
            OutputLine::Metrics { values, step } => {
                for (name, value) in values {
                    self.publish(names::METRIC_SCALAR, &MetricScalar { name, value, step });
                }
            }
            OutputLine::Artifact { path, kind } => match self.artifact(&path, kind) {
                Ok(a) => self.publish(names::ARTIFACT, &a),
                Err(message) => self.publish(names::LOG_LINE, &LogLine { level: app::protocol::LogLevel::Warning, message }),
            },
            OutputLine::Log { level, message } => self.publish(names::LOG_LINE, &LogLine { level, message }),
        }
    }
}

/// The stage's stdin, for chat: a bounded queue in front of a writer task, so a stage
/// that does not read never blocks the loop that handles its cancel, timeout and output.
struct ChatPipe {
    tx: mpsc::Sender<String>,
    dropped: u64,
    last_notice: Option<std::time::Instant>,
}

impl ChatPipe {
    fn new(mut stdin: tokio::process::ChildStdin) -> ChatPipe {
        let (tx, mut rx) = mpsc::channel::<String>(CHAT_QUEUE);
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    return; // the stage closed its stdin: nothing more to say
                }
            }
        });
        ChatPipe { tx, dropped: 0, last_notice: None }
    }

    fn send(&mut self, ctx: &StageContext, text: &str) {
        let line = serde_json::json!({"type": "chat", "text": text}).to_string() + "\n";
        match self.tx.try_send(line) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped += 1;
                ctx.hub.counters().chat_dropped.inc();
                if self.last_notice.is_none_or(|t| t.elapsed() >= CHAT_NOTICE_EVERY) {
                    self.last_notice = Some(std::time::Instant::now());
                    let message = format!(
                        "chat not delivered: stage {:?} is not reading its stdin ({} line(s) dropped so far, {CHAT_QUEUE} waiting)",
                        ctx.stage.id, self.dropped
                    );
                    ctx.publish(names::LOG_LINE, &LogLine { level: app::protocol::LogLevel::Warning, message });
                }
            }
        }
    }
}

fn signal_group(pgid: Option<i32>, signal: Signal) {
    if let Some(pgid) = pgid {
        // the group is the stage's own (process_group(0)): nothing else can be hit
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

async fn read_lines<R: AsyncRead + Unpin>(reader: R, stream: OutputStream, tx: mpsc::Sender<(OutputStream, String)>) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                buf.truncate(MAX_LINE);
                if tx.send((stream, String::from_utf8_lossy(&buf).into_owned())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Runs the stage to its end; `on` hears progress and pauses.
pub async fn run_stage(ctx: &StageContext, controls: &mut mpsc::UnboundedReceiver<Control>, on: &(dyn Fn(Notice) + Sync)) -> StageEnd {
    let workdir = match &ctx.stage.workdir {
        Some(w) => ctx.run_dir.join(w),
        None => ctx.run_dir.clone(),
    };
    let chat = ctx.stage.stdin == Some(StdinMode::Chat);
    let mut cmd = tokio::process::Command::new("sh");
    ctx.env_deny.apply(&mut cmd);
    cmd.arg("-c")
        .arg(&ctx.stage.run)
        .current_dir(&workdir)
        .env("SWITCHBOARD_WORKFLOW_ID", &ctx.workflow_id)
        .env("SWITCHBOARD_STAGE_ID", &ctx.stage.id)
        .env("SWITCHBOARD_ARTIFACTS", &ctx.artifacts_dir)
        .env("SWITCHBOARD_PIPELINES", &ctx.pipelines_dir)
        .env("PYTHONUNBUFFERED", "1")
        .envs(&ctx.stage.env)
        .stdin(if chat { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return StageEnd::SpawnFailed(format!("cannot start `sh -c` in {}: {e}", workdir.display())),
    };
    ctx.hub.counters().stage_start_latency.observe(ctx.dequeued.elapsed().as_secs_f64());
    let pgid = child.id().map(|id| id as i32);
    let mut chat = child.stdin.take().map(ChatPipe::new);
    let (tx, mut lines) = mpsc::channel(1024);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(read_lines(out, OutputStream::Stdout, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(read_lines(err, OutputStream::Stderr, tx.clone()));
    }
    drop(tx);

    let mut batch = Batch { stream: OutputStream::Stdout, text: String::new(), since: None };
    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let deadline = ctx.stage.timeout_s.map(|t| Instant::now() + Duration::from_secs(t));
    let mut kill_at: Option<Instant> = None;
    let mut drain_until: Option<Instant> = None;
    let mut exit: Option<i32> = None;
    let mut lines_open = true;
    let mut controls_open = true;
    let mut end: Option<StageEnd> = None;
    loop {
        if exit.is_some() && !lines_open {
            break;
        }
        let flush_at = batch.since.map_or(far, |t| t + BATCH_AGE);
        tokio::select! {
            line = lines.recv(), if lines_open => match line {
                Some((OutputStream::Stdout, text)) => ctx.handle_stdout(&mut batch, &text, on),
                Some((stream, text)) => ctx.push_text(&mut batch, stream, &text),
                None => lines_open = false,
            },
            status = child.wait(), if exit.is_none() => {
                exit = Some(match status {
                    Ok(s) => s.code().unwrap_or_else(|| {
                        use std::os::unix::process::ExitStatusExt;
                        128 + s.signal().unwrap_or(0)
                    }),
                    Err(_) => -1,
                });
                drain_until = Some(Instant::now() + DRAIN_AFTER_EXIT);
            }
            ctl = controls.recv(), if controls_open => match ctl {
                Some(Control::Pause) => { signal_group(pgid, Signal::SIGSTOP); on(Notice::Paused(true)); }
                Some(Control::Resume) => { signal_group(pgid, Signal::SIGCONT); on(Notice::Paused(false)); }
                Some(Control::Cancel) => {
                    end.get_or_insert(StageEnd::Cancelled);
                    // a stopped group cannot act on SIGTERM: wake it first
                    signal_group(pgid, Signal::SIGCONT);
                    signal_group(pgid, Signal::SIGTERM);
                    kill_at.get_or_insert(Instant::now() + ctx.cancel_grace);
                }
                Some(Control::Chat(text)) => {
                    if let Some(pipe) = chat.as_mut() {
                        pipe.send(ctx, &text);
                    }
                }
                Some(Control::Confirm) => {}
                None => controls_open = false,
            },
            _ = tokio::time::sleep_until(flush_at), if batch.since.is_some() => ctx.flush(&mut batch),
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() && end.is_none() && exit.is_none() => {
                end = Some(StageEnd::TimedOut);
                signal_group(pgid, Signal::SIGCONT);
                signal_group(pgid, Signal::SIGTERM);
                kill_at = Some(Instant::now() + ctx.cancel_grace);
            }
            _ = tokio::time::sleep_until(kill_at.unwrap_or(far)), if kill_at.is_some() => {
                signal_group(pgid, Signal::SIGKILL);
                kill_at = None;
            }
            _ = tokio::time::sleep_until(drain_until.unwrap_or(far)), if drain_until.is_some() && lines_open => {
                // the shell exited but something it started still holds the pipes
                signal_group(pgid, Signal::SIGKILL);
                lines_open = false;
            }
        }
    }
    ctx.flush(&mut batch);
    end.unwrap_or(StageEnd::Exited(exit.unwrap_or(-1)))
}
