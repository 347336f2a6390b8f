//! A stage on the agent: the same process code as the server's own executor
//! (`engine::process`: process group, signals, timeout, chat to stdin), its output
//! lines batched (16 KiB or 50 ms) into reports for the server, which reads them with
//! the stage output protocol. An `::artifact path` line uploads the file to the run's
//! artifact folder first, then goes on as `::artifact name`.

use super::outbox::Outbox;
use crate::engine::process::{run_process, Control, OutputSink, ProcessSpec, StageEnd};
use crate::engine::stage_env::EnvDeny;
use app::protocol::{OutputStream, ReportKind, StageKey, StageWork};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

const BATCH_BYTES: usize = 16 * 1024;
const BATCH_AGE: Duration = Duration::from_millis(50);

/// What a stage needs of the agent.
pub struct StageEnv {
    pub server: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
    pub work_dir: PathBuf,
    pub env_deny: EnvDeny,
    /// Print each line here too (`switchboard run`: the person at the terminal sees it).
    pub echo: bool,
}

struct ReportSink<'a> {
    key: StageKey,
    outbox: &'a Outbox,
    env: &'a StageEnv,
    artifacts: PathBuf,
    stream: OutputStream,
    lines: Vec<String>,
    bytes: usize,
    since: Option<Instant>,
}

impl ReportSink<'_> {
    async fn flush_now(&mut self) {
        if self.lines.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.lines);
        self.bytes = 0;
        self.since = None;
        self.outbox.push(&self.key, ReportKind::Output { stream: self.stream, lines }).await;
    }

    async fn push(&mut self, stream: OutputStream, line: String) {
        if self.env.echo {
            match stream {
                OutputStream::Stdout => println!("{line}"),
                _ => eprintln!("{line}"),
            }
        }
        if stream != self.stream {
            self.flush_now().await;
            self.stream = stream;
        }
        self.bytes += line.len() + 1;
        self.lines.push(line);
        self.since.get_or_insert_with(Instant::now);
        if self.bytes >= BATCH_BYTES {
            self.flush_now().await;
        }
    }

    /// `::artifact path [kind]`: the file, uploaded; the line as the server reads it.
    async fn artifact(&self, rest: &str) -> String {
        let mut parts = rest.split_whitespace();
        let (Some(path), kind) = (parts.next(), parts.next()) else { return format!("::warning bad ::artifact line: {rest}") };
        match upload(self.env, &self.key, &self.artifacts, path).await {
            Ok(name) => format!("::artifact {name}{}", kind.map(|k| format!(" {k}")).unwrap_or_default()),
            Err(e) => format!("::warning artifact {path} not uploaded: {e}"),
        }
    }
}

impl OutputSink for ReportSink<'_> {
    fn line(&mut self, stream: OutputStream, text: String) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let text = match text.strip_prefix("::artifact ") {
                Some(rest) if stream == OutputStream::Stdout => self.artifact(rest).await,
                _ => text,
            };
            self.push(stream, text).await
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
            self.outbox.push(&self.key, ReportKind::Paused { paused }).await;
        })
    }

    fn chat_dropped(&mut self, dropped_so_far: u64) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let line = format!("::warning chat not delivered: the stage is not reading its stdin ({dropped_so_far} dropped)");
            self.push(OutputStream::Stdout, line).await
        })
    }
}

/// The content type a browser should be told, by the file's extension.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("json") => "application/json",
        Some("txt" | "log") => "text/plain",
        Some("csv") => "text/csv",
        _ => "application/octet-stream",
    }
}

/// Uploads `path` (relative to the stage's artifact folder) to the run's; its name there.
async fn upload(env: &StageEnv, key: &StageKey, artifacts: &Path, path: &str) -> Result<String, String> {
    let full = if Path::new(path).is_absolute() { PathBuf::from(path) } else { artifacts.join(path) };
    let real = full.canonicalize().map_err(|e| e.to_string())?;
    let root = artifacts.canonicalize().map_err(|e| e.to_string())?;
    let name = real.strip_prefix(&root).map_err(|_| "it is outside $SWITCHBOARD_ARTIFACTS".to_string())?.to_string_lossy().into_owned();
    let body = tokio::fs::read(&real).await.map_err(|e| e.to_string())?;
    let url = format!("{}/api/v1/workflows/{}/artifacts/{name}?stage={}", env.server, key.run, key.stage);
    let mut req = env.http.put(url).header("content-type", content_type(&real)).body(body);
    if let Some(t) = &env.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("the server answered {}: {}", resp.status(), resp.text().await.unwrap_or_default()));
    }
    Ok(name)
}

/// Runs one assigned stage to its end, every report in `outbox`; its exit code, when it
/// exited by itself.
pub async fn run(key: StageKey, work: StageWork, vars: BTreeMap<String, String>, env: Arc<StageEnv>, outbox: Arc<Outbox>, mut controls: mpsc::UnboundedReceiver<Control>) -> Option<i32> {
    let dir = env.work_dir.join(&key.run);
    let artifacts = dir.join("artifacts");
    let finished = |error: String| ReportKind::Finished { exit_code: None, error: Some(error), cancelled: false };
    let Some(command) = work.run.clone() else {
        outbox.push(&key, finished("this stage has no command for an agent to run".into())).await;
        return None;
    };
    if let Err(e) = std::fs::create_dir_all(&artifacts) {
        outbox.push(&key, finished(format!("cannot make {}: {e}", artifacts.display()))).await;
        return None;
    }
    let mut all_vars: Vec<(String, String)> = vars.into_iter().collect();
    all_vars.push(("SWITCHBOARD_ARTIFACTS".into(), artifacts.display().to_string()));
    let spec = ProcessSpec {
        command,
        env: work.env.clone(),
        timeout_s: work.timeout_s,
        chat_stdin: work.chat_stdin,
        workdir: work.workdir.as_ref().map_or_else(|| dir.clone(), |w| dir.join(w)),
        vars: all_vars,
        env_deny: env.env_deny.clone(),
        cancel_grace: Duration::from_secs(work.cancel_grace_s),
    };
    let mut sink = ReportSink { key: key.clone(), outbox: &outbox, env: &env, artifacts, stream: OutputStream::Stdout, lines: Vec::new(), bytes: 0, since: None };
    // `started` when the process is spawned: the server times dequeue to start by it
    let mut on_started = || outbox.push_now(&key, ReportKind::Started);
    let end = run_process(&spec, &mut controls, &mut sink, &mut on_started).await;
    sink.flush_now().await;
    let code = if let StageEnd::Exited(c) = end { Some(c) } else { None };
    let kind = match end {
        StageEnd::Exited(code) => ReportKind::Finished { exit_code: Some(code), error: None, cancelled: false },
        StageEnd::TimedOut => finished(format!("stage {:?} timed out after {} s", key.stage, work.timeout_s.unwrap_or(0))),
        StageEnd::Cancelled => ReportKind::Finished { exit_code: None, error: Some("cancelled".into()), cancelled: true },
        StageEnd::SpawnFailed(e) | StageEnd::Failed(e) | StageEnd::AgentLost(e) => finished(e),
    };
    outbox.push(&key, kind).await;
    code
}
