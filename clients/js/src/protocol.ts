// The wire protocol, version 1: a mirror of the Rust types in `app/src/protocol/`
// (client.rs, server.rs, events.rs, http.rs, topic.rs, mod.rs).
//
// WRITTEN BY HAND FOR NOW. It is to be generated from the Rust types (ts-rs) later;
// until then `test/protocol-drift.test.js` reads the Rust sources and fails when a
// struct, field, optionality or enum variant here differs from them. Names and
// shapes follow serde: `Option<T>` is `T | null` (the field is always sent), and an
// `Option` with `skip_serializing_if` is an optional field. Types only: no runtime.

/** The optional correlation id of a client message, echoed back in its reply. */
export type MessageId = string | number;
/** Milliseconds since the Unix epoch, the protocol's timestamp unit. */
export type TimestampMs = number;

// ---- client -> server (client.rs) ----

export type ControlAction = "pause" | "resume" | "cancel";
export type CommandName = "restart_stage" | "cancel_run";

export type ClientMessage =
  | { type: "subscribe"; topic: string; since?: number; epoch?: string }
  | { type: "unsubscribe"; topic: string }
  | { type: "ping"; ts?: number }
  | { type: "publish"; topic: string; event: string; data: unknown }
  | { type: "control"; action: ControlAction; workflow_id?: string }
  | { type: "confirm"; workflow_id?: string }
  | { type: "command"; command: CommandName; args?: unknown; workflow_id?: string }
  | { type: "chat"; workflow_id?: string; text: string }
  | { type: "close" };

/** A client message as sent: with its optional `id` (and `v`, which the server ignores). */
export type ClientEnvelope = ClientMessage & { id?: MessageId; v?: 1 };

// ---- server -> client (server.rs) ----

export interface Limits {
  max_subscriptions: number;
  max_message_bytes: number;
  rate_per_min: number;
}

export interface Hello {
  client_id: string;
  server_ts: TimestampMs;
  heartbeat_ms: number;
  limits: Limits;
}

/** One published event, as every subscriber receives it. */
export interface EventMessage<D = unknown> {
  topic: string;
  seq: number;
  ts: TimestampMs;
  event: string;
  data: D;
}

export interface Subscribed {
  topic: string;
  /** The topic's last seq at the moment of subscription. */
  seq: number;
  epoch: string;
  recovered: boolean;
  id?: MessageId;
}

export interface Unsubscribed {
  topic: string;
  id?: MessageId;
}

export interface Pong {
  /** The client's `ts`, echoed; null when the ping had none. */
  ts: number | null;
  server_ts: TimestampMs;
  id?: MessageId;
}

export interface Ack {
  id: MessageId;
  result?: unknown;
}

export type ErrorCode =
  | "bad_json"
  | "bad_request"
  | "unknown_type"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "rate_limited"
  | "too_many_subscriptions"
  | "internal"
  | "agent_offline";

export interface ErrorMessage {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  id?: MessageId;
  /** The parsed client message when it parsed, else its raw text cut to 1,024 bytes. */
  original_message?: unknown;
}

type Tagged<T extends string, B> = { v: 1; type: T } & B;
export type ServerMessage =
  | Tagged<"hello", Hello>
  | Tagged<"event", EventMessage>
  | Tagged<"subscribed", Subscribed>
  | Tagged<"unsubscribed", Unsubscribed>
  | Tagged<"pong", Pong>
  | Tagged<"ack", Ack>
  | Tagged<"error", ErrorMessage>;

// ---- event payloads (events.rs) ----

export type GpuType = "cuda" | "none";

export interface GpuSample {
  index: number;
  name: string;
  util_percent: number | null;
  memory_used_bytes: number | null;
  memory_total_bytes: number | null;
  temperature_c: number | null;
  power_w: number | null;
}

export interface CurrentTask {
  id: string;
  name: string;
  progress: number;
}

/** `metrics` on topic `metrics`. */
export interface MetricsSample {
  cpu_percent: number;
  memory_percent: number;
  memory_used_bytes: number;
  memory_total_bytes: number;
  gpu_available: boolean;
  gpu_type: GpuType;
  gpu_percent: number | null;
  gpu_memory_percent: number | null;
  gpus: GpuSample[];
  pending_count: number;
  running_count: number;
  current_task: CurrentTask | null;
}

/** `coordinator_metrics` on topic `coordinator`. */
export interface CoordinatorMetrics {
  total_messages: number;
  total_workflows: number;
  registered_agents: number;
  healthy_agents: number;
  active_workflows: number;
  connections: number;
}

export type AgentState = "idle" | "busy" | "error" | "offline";

export interface AgentMetrics {
  message_count: number;
  error_count: number;
  error_rate: number;
  avg_execution_time: number;
  is_healthy: boolean;
}

/** A remote agent's machine (agent.rs). */
export interface MachineMetrics {
  cpu_percent: number;
  memory_percent: number;
  memory_used_bytes: number;
  memory_total_bytes: number;
  gpus: GpuSample[];
}

/** `agent_status` on `agents` and `agent:{name}`. */
export interface AgentStatus {
  agent_name: string;
  status: AgentState;
  capabilities: string[];
  current_task: string | null;
  metrics: AgentMetrics;
  last_seen: TimestampMs | null;
  running: number;
  concurrency: number | null;
  machine: MachineMetrics | null;
}

export type WorkflowState =
  | "pending"
  | "running"
  | "paused"
  | "waiting_confirmation"
  | "completed"
  | "failed"
  | "cancelled";

export type StageState = WorkflowState | "skipped";

/** `workflow_status` on `workflow:{id}` (with `id` and `name` on `coordinator`). */
export interface WorkflowStatus {
  id?: string;
  name?: string;
  state: WorkflowState;
  progress: number;
  stage_index: number | null;
  eta_s: number | null;
}

export interface StageRef {
  id: string;
  index: number;
  status: StageState;
}

/** `stage_status` on `workflow:{id}`. */
export interface StageStatus {
  stage: StageRef;
  started_at: TimestampMs | null;
  finished_at: TimestampMs | null;
  exit_code: number | null;
  error: string | null;
}

/** `progress` on `workflow:{id}`: the run's overall progress, 0..1. */
export interface Progress {
  progress: number;
  stage: string | null;
  message: string | null;
  eta_s: number | null;
}

export type OutputStream = "stdout" | "stderr" | "info";

/** `terminal_output` on `workflow:{id}`: a batch of output lines of one stream. */
export interface TerminalOutput {
  stage_id: string;
  stream: OutputStream;
  output: string;
}

export type LogLevel = "notice" | "warning" | "error" | "info";

export interface LogLine {
  level: LogLevel;
  message: string;
}

export interface MetricScalar {
  name: string;
  value: number;
  step: number | null;
}

export type ArtifactKind = "image" | "file" | "export";

export interface Artifact {
  stage_id: string;
  name: string;
  kind: ArtifactKind;
  url: string;
  bytes: number;
}

export interface Chat {
  from: string;
  text: string;
}

export interface Notification {
  title: string;
  message: string;
  priority: string;
}

/** Event names of `workflow:{id}` and their payloads. */
export interface WorkflowEvents {
  workflow_status: WorkflowStatus;
  stage_status: StageStatus;
  progress: Progress;
  terminal_output: TerminalOutput;
  log_line: LogLine;
  metric_scalar: MetricScalar;
  artifact: Artifact;
  chat: Chat;
  notification: Notification;
}

// ---- HTTP bodies (http.rs) ----

export interface StageSnapshot {
  id: string;
  name: string;
  index: number;
  status: StageState;
  progress: number;
  confirm: boolean;
  started_at: TimestampMs | null;
  finished_at: TimestampMs | null;
  exit_code: number | null;
  error: string | null;
  output_dropped_bytes?: number;
  agent?: string;
  attempt?: number;
}

/** `GET /api/v1/workflows/{id}`: a run's state at `seq` of `workflow:{id}`. */
export interface WorkflowSnapshot {
  id: string;
  name: string;
  state: WorkflowState;
  progress: number;
  stage_index: number | null;
  eta_s: number | null;
  created_at: TimestampMs;
  started_at: TimestampMs | null;
  finished_at: TimestampMs | null;
  error: string | null;
  stages: StageSnapshot[];
  seq: number;
  epoch: string;
}

/** `GET /api/v1/workflows`: a page of runs at `seq` of `coordinator`. */
export interface WorkflowList {
  workflows: WorkflowSnapshot[];
  seq: number;
  epoch: string;
  next_cursor?: string;
}

export interface PipelineStage {
  id: string;
  name: string | null;
  confirm: boolean;
}

export interface PipelineInfo {
  name: string;
  description: string | null;
  stages: PipelineStage[];
}

export interface PipelineList {
  pipelines: PipelineInfo[];
}

export interface AgentList {
  agents: AgentStatus[];
  seq: number;
  epoch: string;
  coordinator: CoordinatorMetrics;
}

/** `GET /api/v1/topics/{topic}/history`. */
export interface HistoryPage {
  events: EventMessage[];
  seq: number;
  epoch: string;
}

export interface ApiErrorDetail {
  code: string;
  message: string;
}

/** Every HTTP error body. */
export interface ApiErrorBody {
  error: ApiErrorDetail;
}

export interface SessionInfo {
  auth: boolean;
  sub: string | null;
  token: string | null;
  expires_at: TimestampMs | null;
  control: boolean;
}
