// The wire protocol, version 1 (docs/protocol.md). Its types are generated from the
// Rust ones in `app/src/protocol/` by ts-rs (`protocol.gen.ts`: a Rust test fails when
// that file differs from what the Rust types generate). This module adds only what
// TypeScript says better than the generator: the `v` every server frame carries, an
// event type generic in its data, the client envelope, and the map of a run's event
// names to their payloads. Names and shapes follow serde: `Option<T>` is `T | null`
// (always sent), and one that is skipped when empty is an optional field.
import type * as Gen from "./protocol.gen.js";

export type * from "./protocol.gen.js";

/** Milliseconds since the Unix epoch, the protocol's timestamp unit. */
export type TimestampMs = number;

/** A client message as sent: with its optional `id` (and `v`, which the server ignores). */
export type ClientEnvelope = Gen.ClientMessage & { id?: Gen.MessageId; v?: 1 };

/** Every server frame: a message of `ServerMessage`'s union, with `"v": 1`. */
export type ServerMessage = Gen.ServerMessage & { v: 1 };

/** One published event, as every subscriber receives it, its data typed as `D`. */
export type EventMessage<D = unknown> = Omit<Gen.EventMessage, "data"> & { data: D };

/** `GET /api/v1/topics/{topic}/history`, its events typed as `EventMessage`. */
export type HistoryPage = Omit<Gen.HistoryPage, "events"> & { events: EventMessage[] };

/** Event names of `workflow:{id}` and their payloads. */
export interface WorkflowEvents {
  workflow_status: Gen.WorkflowStatus;
  stage_status: Gen.StageStatus;
  progress: Gen.Progress;
  terminal_output: Gen.TerminalOutput;
  log_line: Gen.LogLine;
  metric_scalar: Gen.MetricScalar;
  artifact: Gen.Artifact;
  chat: Gen.Chat;
  notification: Gen.Notification;
}
