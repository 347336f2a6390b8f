//! Bodies of the HTTP API (PROTOCOL.md section 8) that the dashboard reads: snapshots
//! carry the `seq` and `epoch` of their topic, so `GET` then `subscribe since=seq`
//! loses nothing.

use super::{AgentStatus, CoordinatorMetrics, EventMessage, StageRef, StageState, StageStatus, TimestampMs, WorkflowState};
use serde::{Deserialize, Serialize};

/// One stage of a workflow snapshot.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSnapshot {
    pub id: String,
    pub name: String,
    pub index: usize,
    pub status: StageState,
    pub progress: f64,
    #[serde(default)]
    pub confirm: bool,
    pub started_at: Option<TimestampMs>,
    pub finished_at: Option<TimestampMs>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// Bytes of terminal output not stored because the run passed its output cap.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_dropped_bytes: u64,
    /// The agent that runs (or ran) it, when not the server itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub agent: Option<String>,
    /// Its attempt (1 the first time; more when it was queued again after its agent was lost).
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub attempt: u32,
}

fn is_zero32(n: &u32) -> bool {
    *n == 0
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl StageSnapshot {
    /// Its `stage_status` event.
    pub fn status_event(&self) -> StageStatus {
        StageStatus {
            stage: StageRef { id: self.id.clone(), index: self.index, status: self.status },
            started_at: self.started_at,
            finished_at: self.finished_at,
            exit_code: self.exit_code,
            error: self.error.clone(),
        }
    }

    /// Back to the state of a stage that never ran.
    pub fn reset(&mut self) {
        self.status = StageState::Pending;
        self.progress = 0.0;
        self.started_at = None;
        self.finished_at = None;
        self.exit_code = None;
        self.error = None;
        self.output_dropped_bytes = 0;
        self.agent = None;
    }
}

/// `GET /api/v1/workflows/{id}`: a run's state, at `seq` of `workflow:{id}`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowSnapshot {
    pub id: String,
    pub name: String,
    pub state: WorkflowState,
    pub progress: f64,
    pub stage_index: Option<usize>,
    pub eta_s: Option<f64>,
    pub created_at: TimestampMs,
    pub started_at: Option<TimestampMs>,
    pub finished_at: Option<TimestampMs>,
    pub error: Option<String>,
    pub stages: Vec<StageSnapshot>,
    pub seq: u64,
    pub epoch: String,
}

/// `GET /api/v1/workflows`: a page of runs, newest first, at `seq` of `coordinator`;
/// `next_cursor` asks for the page after it (absent on the last page).
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowList {
    pub workflows: Vec<WorkflowSnapshot>,
    pub seq: u64,
    pub epoch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub next_cursor: Option<String>,
}

/// A stage as `GET /api/v1/pipelines` lists it (the fields the dashboard reads).
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineStage {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub confirm: bool,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineInfo {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub stages: Vec<PipelineStage>,
}

/// `GET /api/v1/pipelines`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineList {
    pub pipelines: Vec<PipelineInfo>,
}

/// `GET /api/v1/agents`: every agent, at `seq` of `agents`, and the coordinator's
/// figures now.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentList {
    pub agents: Vec<AgentStatus>,
    pub seq: u64,
    pub epoch: String,
    pub coordinator: CoordinatorMetrics,
}

/// `GET /api/v1/topics/{topic}/history`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub events: Vec<EventMessage>,
    pub seq: u64,
    pub epoch: String,
}

/// One topic as `GET /api/v1/topics` lists it: where its stream stands, and who
/// listens. Only topics the server holds in memory now are listed (a finished run's
/// topic has left memory; its history is still read through the history endpoint).
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicInfo {
    pub name: String,
    /// Its last seq, in `epoch`.
    pub seq: u64,
    pub epoch: String,
    /// Connections subscribed to it on this server now.
    pub subscribers: u64,
    /// Whether its events are stored in the database (`workflow:*`).
    pub durable: bool,
    /// When its last event was published (ms), if one was since the server opened it.
    pub last_event_ts: Option<TimestampMs>,
}

/// `GET /api/v1/topics?prefix=&limit=`: the topics the caller may subscribe to, by
/// name; `total` counts every match, `topics` holds the first `limit`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicList {
    pub topics: Vec<TopicInfo>,
    pub total: u64,
}

/// Every HTTP error: `{"error": {"code", "message"}}`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    pub code: String,
    pub message: String,
}

/// `GET /api/v1/session`: how this page gets in. With auth off, `auth` is false and
/// nothing else is needed; with auth on, a short-lived access token for the WebSocket,
/// minted from the session cookie.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub auth: bool,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    /// When the token expires (ms since the epoch).
    #[serde(default)]
    pub expires_at: Option<TimestampMs>,
    /// Whether the session may pause, resume, cancel, confirm, restart and chat.
    #[serde(default)]
    pub control: bool,
}
