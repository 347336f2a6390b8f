//! The TypeScript client's protocol types are generated from these Rust types (ts-rs),
//! so the wire contract has one definition. This test writes what they generate and
//! fails when `clients/js/src/protocol.gen.ts` differs from it:
//! `SWITCHBOARD_WRITE_TS=1 cargo test -p app typescript` writes the file anew.

use super::*;
use ts_rs::{Config, TS};

const GENERATED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/js/src/protocol.gen.ts");

/// Every type of the file, in the order a reader meets them.
fn declarations(cfg: &Config) -> Vec<String> {
    macro_rules! decls {
        ($($t:ty),* $(,)?) => { vec![$(<$t as TS>::decl(cfg)),*] };
    }
    decls![
        // client -> server (client.rs)
        MessageId, ControlAction, CommandName, ClientMessage,
        // server -> client (server.rs)
        Limits, Hello, EventMessage, Subscribed, Unsubscribed, Pong, Ack, ErrorCode, ErrorMessage, ServerMessage,
        // event payloads (events.rs, agent.rs)
        GpuType, GpuSample, CurrentTask, MetricsSample, CoordinatorMetrics, AgentState, AgentMetrics, MachineMetrics,
        AgentStatus, WorkflowState, StageState, WorkflowStatus, StageRef, StageStatus, Progress, OutputStream,
        TerminalOutput, LogLevel, LogLine, MetricScalar, ArtifactKind, Artifact, Chat, Notification,
        // HTTP bodies (http.rs)
        StageSnapshot, WorkflowSnapshot, WorkflowList, PipelineStage, PipelineInfo, PipelineList, AgentList,
        HistoryPage, TopicInfo, TopicList, ApiErrorDetail, ApiErrorBody, SessionInfo,
    ]
}

fn string_list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    items.into_iter().map(|s| format!("\"{}\"", s.as_ref())).collect::<Vec<_>>().join(", ")
}

/// The whole file: a header, the types, and the constants the client checks against.
fn typescript() -> String {
    // the protocol's integers stay far below 2^53: plain numbers, not bigint
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// GENERATED from the Rust protocol types (app/src/protocol/*.rs) by ts-rs: do not edit.\n\
         // `SWITCHBOARD_WRITE_TS=1 cargo test -p app typescript` writes it again; that test fails\n\
         // while this file differs from what the Rust types generate.\n\n",
    );
    for decl in declarations(&cfg) {
        out.push_str("export ");
        out.push_str(&decl);
        out.push_str("\n\n");
    }
    let retryable = ErrorCode::ALL.iter().filter(|c| c.retryable()).map(|c| c.as_str());
    out.push_str(&format!("/** Error codes worth sending again later. */\nexport const RETRYABLE_CODES: readonly ErrorCode[] = [{}];\n\n", string_list(retryable)));
    out.push_str(&format!("/** The `type`s a client may send. */\nexport const CLIENT_MESSAGE_TYPES: readonly ClientMessage[\"type\"][] = [{}];\n\n", string_list(CLIENT_MESSAGE_TYPES)));
    out.push_str(&format!("/** Topic names: `[a-z0-9_.:-]`, 1 to this many bytes. */\nexport const MAX_TOPIC_LEN = {MAX_TOPIC_LEN};\n"));
    out
}

#[test]
fn typescript_types_are_generated_from_the_rust_ones() {
    let generated = typescript();
    if std::env::var_os("SWITCHBOARD_WRITE_TS").is_some() {
        std::fs::write(GENERATED, &generated).expect("write clients/js/src/protocol.gen.ts");
        return;
    }
    let checked_in = std::fs::read_to_string(GENERATED).unwrap_or_default();
    assert!(
        checked_in == generated,
        "clients/js/src/protocol.gen.ts differs from the Rust protocol types: run \
         `SWITCHBOARD_WRITE_TS=1 cargo test -p app typescript` and commit it.\n--- generated ---\n{generated}"
    );
}
