//! Payloads (`data`) of the events of PROTOCOL.md section 5, and their event names.

use super::TimestampMs;
use serde::{Deserialize, Serialize};

/// Event names on the well-known topics.
pub mod names {
    pub const METRICS: &str = "metrics";
    pub const COORDINATOR_METRICS: &str = "coordinator_metrics";
    pub const WORKFLOW_STATUS: &str = "workflow_status";
    pub const AGENT_STATUS: &str = "agent_status";
    pub const STAGE_STATUS: &str = "stage_status";
    pub const PROGRESS: &str = "progress";
    pub const TERMINAL_OUTPUT: &str = "terminal_output";
    pub const LOG_LINE: &str = "log_line";
    pub const METRIC_SCALAR: &str = "metric_scalar";
    pub const ARTIFACT: &str = "artifact";
    pub const CHAT: &str = "chat";
    pub const NOTIFICATION: &str = "notification";
}

/// `metrics` on topic `metrics`: one sample of the machine.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSample {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub gpu_available: bool,
    pub gpu_type: GpuType,
    pub gpu_percent: Option<f64>,
    pub gpu_memory_percent: Option<f64>,
    pub gpus: Vec<GpuSample>,
    pub pending_count: u64,
    pub running_count: u64,
    pub current_task: Option<CurrentTask>,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuType {
    Cuda,
    None,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    pub index: u32,
    pub name: String,
    pub util_percent: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub temperature_c: Option<f64>,
    pub power_w: Option<f64>,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentTask {
    pub id: String,
    pub name: String,
    pub progress: f64,
}

/// `coordinator_metrics` on topic `coordinator`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordinatorMetrics {
    pub total_messages: u64,
    pub total_workflows: u64,
    pub registered_agents: u64,
    pub healthy_agents: u64,
    pub active_workflows: u64,
    pub connections: u64,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    Idle,
    Busy,
    Error,
    Offline,
}

/// `agent_status` on `agents` and `agent:{name}`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub agent_name: String,
    pub status: AgentState,
    pub capabilities: Vec<String>,
    pub current_task: Option<String>,
    pub metrics: AgentMetrics,
    /// When it was last heard from (ms since the epoch).
    #[serde(default)]
    pub last_seen: Option<TimestampMs>,
    /// Stages it runs now, and at most at once (none for the server's own).
    #[serde(default)]
    pub running: u32,
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Its machine's figures (a remote agent's; the server's own are on `metrics`).
    #[serde(default)]
    pub machine: Option<super::MachineMetrics>,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentMetrics {
    pub message_count: u64,
    pub error_count: u64,
    pub error_rate: f64,
    pub avg_execution_time: f64,
    pub is_healthy: bool,
}

/// Workflow states; stage statuses are the same plus `skipped`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowState {
    Pending,
    Running,
    Paused,
    WaitingConfirmation,
    Completed,
    Failed,
    Cancelled,
}

impl WorkflowState {
    pub fn is_finished(self) -> bool {
        matches!(self, WorkflowState::Completed | WorkflowState::Failed | WorkflowState::Cancelled)
    }
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    Pending,
    Running,
    Paused,
    WaitingConfirmation,
    Completed,
    Failed,
    Cancelled,
    Skipped,
}

/// `workflow_status` on `workflow:{id}` (and, with `id` and `name`, on `coordinator`).
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub name: Option<String>,
    pub state: WorkflowState,
    pub progress: f64,
    pub stage_index: Option<usize>,
    pub eta_s: Option<f64>,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRef {
    pub id: String,
    pub index: usize,
    pub status: StageState,
}

/// `stage_status` on `workflow:{id}`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageStatus {
    pub stage: StageRef,
    pub started_at: Option<TimestampMs>,
    pub finished_at: Option<TimestampMs>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

/// `progress` on `workflow:{id}`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub progress: f64,
    pub stage: Option<String>,
    pub message: Option<String>,
    pub eta_s: Option<f64>,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
    Info,
}

/// `terminal_output` on `workflow:{id}`: a batch of output lines of one stream.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TerminalOutput {
    pub stage_id: String,
    pub stream: OutputStream,
    pub output: String,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Notice,
    Warning,
    Error,
    Info,
}

/// `log_line` on `workflow:{id}`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// `metric_scalar` on `workflow:{id}`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricScalar {
    pub name: String,
    pub value: f64,
    pub step: Option<u64>,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    Image,
    File,
    Export,
}

/// `artifact` on `workflow:{id}`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub stage_id: String,
    pub name: String,
    pub kind: ArtifactKind,
    pub url: String,
    pub bytes: u64,
}

/// `chat` on `workflow:{id}`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chat {
    pub from: String,
    pub text: String,
}

/// `notification` on `workflow:{id}`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub title: String,
    pub message: String,
    pub priority: String,
}
