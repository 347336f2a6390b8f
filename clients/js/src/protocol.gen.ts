// GENERATED from the Rust protocol types (app/src/protocol/*.rs) by ts-rs: do not edit.
// `SWITCHBOARD_WRITE_TS=1 cargo test -p app typescript` writes it again; that test fails
// while this file differs from what the Rust types generate.

export type MessageId = number | string;

export type ControlAction = "pause" | "resume" | "cancel";

export type CommandName = "restart_stage" | "cancel_run";

export type ClientMessage = { "type": "subscribe", topic: string, since?: number, epoch?: string, } | { "type": "unsubscribe", topic: string, } | { "type": "ping", ts?: number, } | { "type": "publish", topic: string, event: string, data: unknown, } | { "type": "control", action: ControlAction, workflow_id?: string, } | { "type": "confirm", workflow_id?: string, } | { "type": "command", command: CommandName, args?: unknown, workflow_id?: string, } | { "type": "chat", workflow_id?: string, text: string, } | { "type": "close" };

export type Limits = { max_subscriptions: number, max_message_bytes: number, rate_per_min: number, };

export type Hello = { client_id: string, server_ts: number, heartbeat_ms: number, limits: Limits, };

export type EventMessage = { topic: string, seq: number, ts: number, event: string, data: unknown, };

export type Subscribed = { topic: string, 
/**
 * The topic's last seq at the moment of subscription.
 */
seq: number, epoch: string, recovered: boolean, id?: MessageId, };

export type Unsubscribed = { topic: string, id?: MessageId, };

export type Pong = { 
/**
 * The client's `ts`, echoed; null when the ping had none.
 */
ts: number | null, server_ts: number, id?: MessageId, };

export type Ack = { id: MessageId, result?: unknown, };

export type ErrorCode = "bad_json" | "bad_request" | "unknown_type" | "forbidden" | "not_found" | "conflict" | "rate_limited" | "too_many_subscriptions" | "internal" | "agent_offline";

export type ErrorMessage = { code: ErrorCode, message: string, retryable: boolean, id?: MessageId, 
/**
 * The parsed client message when it parsed, else its raw text cut to 1,024 bytes.
 */
original_message?: unknown, };

export type ServerMessage = { "type": "hello" } & Hello | { "type": "event" } & EventMessage | { "type": "subscribed" } & Subscribed | { "type": "unsubscribed" } & Unsubscribed | { "type": "pong" } & Pong | { "type": "ack" } & Ack | { "type": "error" } & ErrorMessage;

export type GpuType = "cuda" | "none";

export type GpuSample = { index: number, name: string, util_percent: number | null, memory_used_bytes: number | null, memory_total_bytes: number | null, temperature_c: number | null, power_w: number | null, };

export type CurrentTask = { id: string, name: string, progress: number, };

export type MetricsSample = { cpu_percent: number, memory_percent: number, memory_used_bytes: number, memory_total_bytes: number, gpu_available: boolean, gpu_type: GpuType, gpu_percent: number | null, gpu_memory_percent: number | null, gpus: Array<GpuSample>, pending_count: number, running_count: number, current_task: CurrentTask | null, };

export type CoordinatorMetrics = { total_messages: number, total_workflows: number, registered_agents: number, healthy_agents: number, active_workflows: number, connections: number, };

export type AgentState = "idle" | "busy" | "error" | "offline";

export type AgentMetrics = { message_count: number, error_count: number, error_rate: number, avg_execution_time: number, is_healthy: boolean, };

export type MachineMetrics = { cpu_percent: number, memory_percent: number, memory_used_bytes: number, memory_total_bytes: number, gpus: Array<GpuSample>, };

export type AgentStatus = { agent_name: string, status: AgentState, capabilities: Array<string>, current_task: string | null, metrics: AgentMetrics, 
/**
 * When it was last heard from (ms since the epoch).
 */
last_seen: number | null, 
/**
 * Stages it runs now, and at most at once (none for the server's own).
 */
running: number, concurrency: number | null, 
/**
 * Its machine's figures (a remote agent's; the server's own are on `metrics`).
 */
machine: MachineMetrics | null, };

export type WorkflowState = "pending" | "running" | "paused" | "waiting_confirmation" | "completed" | "failed" | "cancelled";

export type StageState = "pending" | "running" | "paused" | "waiting_confirmation" | "completed" | "failed" | "cancelled" | "skipped";

export type WorkflowStatus = { id?: string, name?: string, state: WorkflowState, progress: number, stage_index: number | null, eta_s: number | null, };

export type StageRef = { id: string, index: number, status: StageState, };

export type StageStatus = { stage: StageRef, started_at: number | null, finished_at: number | null, exit_code: number | null, error: string | null, };

export type Progress = { progress: number, stage: string | null, message: string | null, eta_s: number | null, };

export type OutputStream = "stdout" | "stderr" | "info";

export type TerminalOutput = { stage_id: string, stream: OutputStream, output: string, };

export type LogLevel = "notice" | "warning" | "error" | "info";

export type LogLine = { level: LogLevel, message: string, };

export type MetricScalar = { name: string, value: number, step: number | null, };

export type ArtifactKind = "image" | "file" | "export";

export type Artifact = { stage_id: string, name: string, kind: ArtifactKind, url: string, bytes: number, };

export type Chat = { from: string, text: string, };

export type Notification = { title: string, message: string, priority: string, };

export type StageSnapshot = { id: string, name: string, index: number, status: StageState, progress: number, confirm: boolean, started_at: number | null, finished_at: number | null, exit_code: number | null, error: string | null, 
/**
 * Bytes of terminal output not stored because the run passed its output cap.
 */
output_dropped_bytes?: number, 
/**
 * The agent that runs (or ran) it, when not the server itself.
 */
agent?: string, 
/**
 * Its attempt (1 the first time; more when it was queued again after its agent was lost).
 */
attempt?: number, };

export type WorkflowSnapshot = { id: string, name: string, state: WorkflowState, progress: number, stage_index: number | null, eta_s: number | null, created_at: number, started_at: number | null, finished_at: number | null, error: string | null, stages: Array<StageSnapshot>, seq: number, epoch: string, };

export type WorkflowList = { workflows: Array<WorkflowSnapshot>, seq: number, epoch: string, next_cursor?: string, };

export type PipelineStage = { id: string, name: string | null, confirm: boolean, };

export type PipelineInfo = { name: string, description: string | null, stages: Array<PipelineStage>, };

export type PipelineList = { pipelines: Array<PipelineInfo>, };

export type AgentList = { agents: Array<AgentStatus>, seq: number, epoch: string, coordinator: CoordinatorMetrics, };

export type HistoryPage = { events: Array<EventMessage>, seq: number, epoch: string, };

export type TopicInfo = { name: string, 
/**
 * Its last seq, in `epoch`.
 */
seq: number, epoch: string, 
/**
 * Connections subscribed to it on this server now.
 */
subscribers: number, 
/**
 * Whether its events are stored in the database (`workflow:*`).
 */
durable: boolean, 
/**
 * When its last event was published (ms), if one was since the server opened it.
 */
last_event_ts: number | null, };

export type TopicList = { topics: Array<TopicInfo>, total: number, };

export type ApiErrorDetail = { code: string, message: string, };

export type ApiErrorBody = { error: ApiErrorDetail, };

export type SessionInfo = { auth: boolean, sub: string | null, token: string | null, 
/**
 * When the token expires (ms since the epoch).
 */
expires_at: number | null, 
/**
 * Whether the session may pause, resume, cancel, confirm, restart and chat.
 */
control: boolean, };

/** Error codes worth sending again later. */
export const RETRYABLE_CODES: readonly ErrorCode[] = ["rate_limited", "internal", "agent_offline"];

/** The `type`s a client may send. */
export const CLIENT_MESSAGE_TYPES: readonly ClientMessage["type"][] = ["subscribe", "unsubscribe", "ping", "publish", "control", "confirm", "command", "chat", "close"];

/** Topic names: `[a-z0-9_.:-]`, 1 to this many bytes. */
export const MAX_TOPIC_LEN = 128;
