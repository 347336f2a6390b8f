// @switchboard/client: a client for Switchboard's WebSocket hub (docs/protocol.md).
export { Switchboard } from "./client.js";
export type { ConnectionState, StateInfo, SwitchboardOptions, WebSocketLike } from "./client.js";
export { Subscription } from "./subscription.js";
export type { SnapshotLoader, SubscribeOptions, SubscriptionInfo, SubscriptionState } from "./subscription.js";
export { SwitchboardError, ValidationError } from "./errors.js";
export type { ClientErrorCode } from "./errors.js";
export { applyRunEvent, watchRun } from "./run.js";
export type { WatchRunOptions } from "./run.js";
export { Backoff } from "./backoff.js";
export { checkEvent, checkTopic, workflowTopic, DEFAULT_MAX_MESSAGE_BYTES, MAX_TOPIC_LEN } from "./validate.js";
export type * from "./protocol.js";
