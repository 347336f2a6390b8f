//! Runs one stage as a real process (`sh -c`) in its own process group: its output read
//! line by line and handed to an `OutputSink` (which turns the stage output protocol
//! into events), pause and resume and cancel as signals to the whole group, the
//! timeout, and chat written to its stdin without ever blocking. Shared by every
//! executor that runs a stage on its own machine.

use super::pipeline::{StageDef, StdinMode};
use std::collections::BTreeMap;
use super::stage_env::EnvDeny;
use app::protocol::OutputStream;
use futures::future::BoxFuture;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A line longer than this is cut (a runaway process must not exhaust memory).
const MAX_LINE: usize = 64 * 1024;
/// After the stage's shell exits, how long its leftover children may hold the pipes.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// Chat lines waiting for a `stdin = "chat"` stage to read them; more are dropped.
const CHAT_QUEUE: usize = 64;
/// Lines read ahead of the sink: when it waits (the writer's queue is full), the pipes
/// fill and the stage itself blocks on its writes.
const LINES_AHEAD: usize = 1024;

/// What the engine asks of a running stage.
#[derive(Debug)]
pub enum Control {
    Pause,
    Resume,
    Cancel,
    /// Only meaningful between stages (a stage waiting for confirmation).
    Confirm,
    Chat(String),
    /// Its agent connected to node `to`, which takes the run over (engine::agent_moves):
    /// a remote stage lets go of it, as if its agent were lost; a process ignores it.
    Detach { key: app::protocol::StageKey, to: String },
}

#[derive(Debug, PartialEq)]
pub enum StageEnd {
    Exited(i32),
    TimedOut,
    Cancelled,
    SpawnFailed(String),
    /// Its executor said it failed (with no exit code).
    Failed(String),
    /// Its agent stopped answering for longer than the grace period.
    AgentLost(String),
}

/// Where a stage's output and state changes go.
pub trait OutputSink: Send {
    /// One line of output (stdout lines may be stage protocol commands).
    fn line(&mut self, stream: OutputStream, text: String) -> BoxFuture<'_, ()>;
    /// When batched output must be flushed, if any waits.
    fn flush_at(&self) -> Option<Instant>;
    fn flush(&mut self) -> BoxFuture<'_, ()>;
    /// The stage was paused (true) or resumed.
    fn paused(&mut self, paused: bool) -> BoxFuture<'_, ()>;
    /// A chat line was dropped because the stage does not read its stdin.
    fn chat_dropped(&mut self, dropped_so_far: u64) -> BoxFuture<'_, ()>;
}

/// How to run a stage here.
pub struct ProcessSpec {
    /// The shell command (`sh -c`).
    pub command: String,
    /// The stage's own environment, set last.
    pub env: BTreeMap<String, String>,
    pub timeout_s: Option<u64>,
    /// Whether its stdin takes chat lines.
    pub chat_stdin: bool,
    pub workdir: PathBuf,
    /// Variables set for the stage, after its inherited environment is filtered.
    pub vars: Vec<(String, String)>,
    pub env_deny: EnvDeny,
    pub cancel_grace: Duration,
}

impl ProcessSpec {
    /// A pipeline stage, run in `run_dir` (its `workdir` relative to it).
    pub fn for_stage(stage: &StageDef, run_dir: &std::path::Path, vars: Vec<(String, String)>, env_deny: EnvDeny, cancel_grace: Duration) -> ProcessSpec {
        ProcessSpec {
            command: stage.run.clone().unwrap_or_default(),
            env: stage.env.clone(),
            timeout_s: stage.timeout_s,
            chat_stdin: stage.stdin == Some(StdinMode::Chat),
            workdir: match &stage.workdir {
                Some(w) => run_dir.join(w),
                None => run_dir.to_path_buf(),
            },
            vars,
            env_deny,
            cancel_grace,
        }
    }
}

/// The stage's stdin, for chat: a bounded queue in front of a writer task, so a stage
/// that does not read never blocks the loop that handles its cancel, timeout and output.
struct ChatPipe {
    tx: mpsc::Sender<String>,
    dropped: u64,
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
        ChatPipe { tx, dropped: 0 }
    }

    /// Queues a line; returns the count dropped so far when this one was dropped.
    fn send(&mut self, text: &str) -> Option<u64> {
        let line = serde_json::json!({"type": "chat", "text": text}).to_string() + "\n";
        match self.tx.try_send(line) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => None,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped += 1;
                Some(self.dropped)
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

fn command(spec: &ProcessSpec) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("sh");
    spec.env_deny.apply(&mut cmd);
    cmd.arg("-c")
        .arg(&spec.command)
        .current_dir(&spec.workdir)
        .envs(spec.vars.iter().map(|(k, v)| (k, v)))
        .env("PYTHONUNBUFFERED", "1")
        .envs(&spec.env)
        .stdin(if spec.chat_stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

/// Runs the stage to its end, its output and pauses to `sink`; `on_spawned` is called
/// the moment its process exists.
pub async fn run_process(
    spec: &ProcessSpec,
    controls: &mut mpsc::UnboundedReceiver<Control>,
    sink: &mut dyn OutputSink,
    on_spawned: &mut (dyn FnMut() + Send),
) -> StageEnd {
    let mut child = match command(spec).spawn() {
        Ok(c) => c,
        Err(e) => return StageEnd::SpawnFailed(format!("cannot start `sh -c` in {}: {e}", spec.workdir.display())),
    };
    on_spawned();
    let pgid = child.id().map(|id| id as i32);
    let mut chat = child.stdin.take().map(ChatPipe::new);
    let (tx, mut lines) = mpsc::channel(LINES_AHEAD);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(read_lines(out, OutputStream::Stdout, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(read_lines(err, OutputStream::Stderr, tx.clone()));
    }
    drop(tx);

    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let deadline = spec.timeout_s.map(|t| Instant::now() + Duration::from_secs(t));
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
        let flush_at = sink.flush_at();
        tokio::select! {
            line = lines.recv(), if lines_open => match line {
                Some((stream, text)) => sink.line(stream, text).await,
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
                Some(Control::Pause) => { signal_group(pgid, Signal::SIGSTOP); sink.paused(true).await; }
                Some(Control::Resume) => { signal_group(pgid, Signal::SIGCONT); sink.paused(false).await; }
                Some(Control::Cancel) => {
                    end.get_or_insert(StageEnd::Cancelled);
                    // a stopped group cannot act on SIGTERM: wake it first
                    signal_group(pgid, Signal::SIGCONT);
                    signal_group(pgid, Signal::SIGTERM);
                    kill_at.get_or_insert(Instant::now() + spec.cancel_grace);
                }
                Some(Control::Chat(text)) => {
                    if let Some(dropped) = chat.as_mut().and_then(|pipe| pipe.send(&text)) {
                        sink.chat_dropped(dropped).await;
                    }
                }
                Some(Control::Confirm | Control::Detach { .. }) => {}
                None => controls_open = false,
            },
            _ = tokio::time::sleep_until(flush_at.unwrap_or(far)), if flush_at.is_some() => sink.flush().await,
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() && end.is_none() && exit.is_none() => {
                end = Some(StageEnd::TimedOut);
                signal_group(pgid, Signal::SIGCONT);
                signal_group(pgid, Signal::SIGTERM);
                kill_at = Some(Instant::now() + spec.cancel_grace);
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
    sink.flush().await;
    end.unwrap_or(StageEnd::Exited(exit.unwrap_or(-1)))
}
