//! Every `client` and `server` JSON example in docs/protocol.md parses as the message
//! it claims to be, and server examples serialize back to the same JSON.

use super::{parse_client_message, ServerMessage};

const DOC: &str = include_str!("../../../docs/protocol.md");

fn examples(tag: &str) -> Vec<String> {
    let fence = format!("```json {tag}");
    let mut out = Vec::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        if line.trim() == fence {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            out.push(body.join("\n"));
        }
    }
    out
}

#[test]
fn client_examples_parse() {
    let all = examples("client");
    assert!(all.len() >= 8, "found {}", all.len());
    for text in all {
        if let Err(e) = parse_client_message(&text) {
            panic!("{text}\n-> {e:?}");
        }
    }
}

#[test]
fn server_examples_parse_and_round_trip() {
    let all = examples("server");
    assert!(all.len() >= 7, "found {}", all.len());
    for text in all {
        let msg = ServerMessage::from_json(&text).unwrap_or_else(|e| panic!("{text}\n-> {e}"));
        let written: serde_json::Value = serde_json::from_str(&msg.to_json()).unwrap();
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(written, original, "{text}");
    }
}
