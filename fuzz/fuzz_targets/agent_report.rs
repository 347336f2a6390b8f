//! What an agent sends: a text message on `/api/v1/agents/connect` (server/src/agents/door.rs
//! reads it as an `AgentMessage`), and a `ReportBatch` posted to
//! `/api/v1/workflows/{id}/reports` (api/agents.rs), with the checks made before the
//! registry applies them: agent and capability names, the refusal sent for a bad
//! message, a batch's runs, and each stdout line through the stage output protocol
//! (the way a remote stage's lines go, engine/interpreter.rs).
#![no_main]

use app::protocol::{truncate_at_char, AgentMessage, OutputStream, Report, ReportBatch, ReportKind, ServerToAgent};
use libfuzzer_sys::fuzz_target;
use server::engine::output::parse_line;
use server::engine::pipeline::valid_agent_name;

fn read_reports(reports: &[Report]) {
    for r in reports {
        if let ReportKind::Output { stream: OutputStream::Stdout, lines } = &r.kind {
            for line in lines {
                let _ = parse_line(line);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // the WebSocket door: text frames are UTF-8
    if let Ok(text) = std::str::from_utf8(data) {
        match serde_json::from_str::<AgentMessage>(text) {
            Ok(AgentMessage::Register { name, capabilities, .. }) => {
                let _ = valid_agent_name(&name) && name != server::agents::LOCAL_AGENT;
                let _ = capabilities.iter().all(|c| valid_agent_name(c));
            }
            Ok(AgentMessage::Reports { reports, .. }) => read_reports(&reports),
            Ok(AgentMessage::Metrics { .. } | AgentMessage::Ack { .. }) => {}
            Err(e) => {
                // a first message that is not `register` closes with this reason
                let _ = truncate_at_char(&format!("bad register: {e}"), 120).len();
                // any later one is answered with a refusal
                let refusal = ServerToAgent::Refused { code: "bad_request".into(), message: e.to_string(), key: None, expected: None };
                let _ = serde_json::to_string(&refusal);
            }
        }
    }
    // the HTTP door: a JSON body, as bytes
    if let Ok(batch) = serde_json::from_slice::<ReportBatch>(data) {
        let _ = batch.reports.iter().find(|r| r.key.run != "demo-project");
        read_reports(&batch.reports);
    }
});
