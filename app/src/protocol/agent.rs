//! The agent protocol: what an executor (a `switchboard agent` on another machine, or
//! an app's own backend running an external run's stages) and the server say to each
//! other on `/api/v1/agents/connect` (docs/agents.md). The engine keeps every run's
//! state machine; an executor is given work and signals, and reports in one
//! vocabulary: a stage started, its output lines (the stage output protocol applies to
//! stdout), it finished. Each report carries the executor's own sequence number, so a
//! report sent twice is applied once.

use super::{GpuSample, MessageId, OutputStream, TimestampMs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A stage an executor runs: which run, which stage, which attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StageKey {
    pub run: String,
    pub stage: String,
    pub attempt: u32,
}

/// A stage's work, as an agent runs it (what a local executor would run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageWork {
    /// The shell command; None for an external run's stage (the executor knows its work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
    #[serde(default)]
    pub chat_stdin: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Seconds between SIGTERM and SIGKILL on cancel.
    pub cancel_grace_s: u64,
}

/// What happened to a stage, as its executor tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReportKind {
    Started,
    /// Output lines (stdout lines are read with the stage output protocol).
    Output { stream: OutputStream, lines: Vec<String> },
    Paused { paused: bool },
    /// The end: an exit code (0 is success), or an error; `cancelled` when the executor
    /// stopped it itself (Ctrl-C, its own shutdown), so the run says cancelled.
    Finished {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cancelled: bool,
    },
}

/// One report: the stage, the executor's seq for that stage (1, 2, 3, ...), and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    #[serde(flatten)]
    pub key: StageKey,
    pub seq: u64,
    #[serde(flatten)]
    pub kind: ReportKind,
}

/// A stage an agent still runs when it (re)connects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Running {
    #[serde(flatten)]
    pub key: StageKey,
}

/// The machine an agent runs on, now.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MachineMetrics {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    #[serde(default)]
    pub gpus: Vec<GpuSample>,
}

/// Executor -> server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// First, and after every reconnect.
    Register {
        name: String,
        #[serde(default)]
        capabilities: Vec<String>,
        /// Stages it runs at once.
        #[serde(default = "one")]
        concurrency: u32,
        /// What it still runs (to be taken up again, not run twice).
        #[serde(default)]
        running: Vec<Running>,
    },
    Reports { reports: Vec<Report>, #[serde(default, skip_serializing_if = "Option::is_none")] id: Option<MessageId> },
    Metrics { metrics: MachineMetrics },
    /// A server message with this id was carried out.
    Ack { id: MessageId },
}

fn one() -> u32 {
    1
}

/// Server -> executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerToAgent {
    /// The answer to `register`: which of its running stages the server takes up again
    /// (and from which seq), and which it does not know (to be stopped).
    Welcome { heartbeat_ms: u64, resume: Vec<ResumeFrom>, unknown: Vec<StageKey> },
    /// Run this stage now.
    Assign { id: MessageId, key: StageKey, work: StageWork, vars: BTreeMap<String, String> },
    /// Pause, resume or cancel a running stage.
    Signal { id: MessageId, key: StageKey, action: StageSignal },
    /// A chat line for a stage that reads chat.
    Chat { id: MessageId, key: StageKey, text: String },
    /// Reports up to `seq` are applied (every one before it too).
    Applied { key: StageKey, seq: u64 },
    /// A report or message that was refused; `expected` is the seq the server waits for.
    Refused {
        code: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<StageKey>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeFrom {
    #[serde(flatten)]
    pub key: StageKey,
    /// The seq of the next report the server will apply.
    pub next_seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageSignal {
    Pause,
    Resume,
    Cancel,
}

/// `POST /api/v1/workflows/{id}/reports`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportBatch {
    pub reports: Vec<Report>,
}

/// Its answer: every report up to `applied_through` is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportsApplied {
    pub applied_through: u64,
    pub seen_at: TimestampMs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_read_flat() {
        let r: Report = serde_json::from_str(r#"{"run":"r1","stage":"a","attempt":1,"seq":3,"kind":"output","stream":"stdout","lines":["hi","::progress 0.5"]}"#).unwrap();
        assert_eq!(r.seq, 3);
        assert!(matches!(r.kind, ReportKind::Output { ref lines, .. } if lines.len() == 2));
        let m: AgentMessage = serde_json::from_str(r#"{"type":"register","name":"gpu-1","capabilities":["gpu"]}"#).unwrap();
        assert!(matches!(m, AgentMessage::Register { concurrency: 1, .. }));
        let f: Report = serde_json::from_str(r#"{"run":"r","stage":"s","attempt":1,"seq":9,"kind":"finished","exit_code":0}"#).unwrap();
        assert_eq!(f.kind, ReportKind::Finished { exit_code: Some(0), error: None, cancelled: false });
    }
}
