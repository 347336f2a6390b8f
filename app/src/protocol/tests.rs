//! Every message round-trips to the exact JSON shape of PROTOCOL.md, and malformed
//! input becomes an error value with the right code, never a panic.

use super::*;
use serde_json::{json, Value};

fn server_shape(msg: ServerMessage, expected: Value) {
    let text = msg.to_json();
    let actual: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(actual, expected, "shape of {text}");
    assert_eq!(ServerMessage::from_json(&text).unwrap(), msg, "round trip of {text}");
}

#[test]
fn hello_shape() {
    server_shape(
        ServerMessage::Hello(Hello {
            client_id: "c1".into(),
            server_ts: 1_700_000_000_000,
            heartbeat_ms: 10_000,
            limits: Limits { max_subscriptions: 32, max_message_bytes: 65_536, rate_per_min: 100 },
        }),
        json!({"v":1,"type":"hello","client_id":"c1","server_ts":1_700_000_000_000_i64,"heartbeat_ms":10000,
               "limits":{"max_subscriptions":32,"max_message_bytes":65536,"rate_per_min":100}}),
    );
}

#[test]
fn event_shape_and_frame_match() {
    let data = json!({"progress":0.5,"message":"half"});
    server_shape(
        ServerMessage::Event(EventMessage {
            topic: "workflow:1".into(),
            seq: 7,
            ts: 5,
            event: "progress".into(),
            data: serde_json::value::to_raw_value(&data).unwrap(),
        }),
        json!({"v":1,"type":"event","topic":"workflow:1","seq":7,"ts":5,"event":"progress","data":data}),
    );
    let raw = serde_json::value::to_raw_value(&data).unwrap();
    let frame = EventFrame::new("workflow:1", 7, 5, "progress", &raw).to_json();
    let via_enum = ServerMessage::Event(EventMessage {
        topic: "workflow:1".into(),
        seq: 7,
        ts: 5,
        event: "progress".into(),
        data: raw.clone(),
    });
    let parsed = ServerMessage::from_json(&frame).unwrap();
    assert_eq!(parsed, via_enum);
    let ServerMessage::Event(ev) = parsed else { panic!("an event") };
    assert_eq!(ev.payload::<Value>().unwrap(), data);
}

#[test]
fn subscribed_unsubscribed_shapes() {
    server_shape(
        ServerMessage::Subscribed(Subscribed {
            topic: "metrics".into(),
            seq: 3,
            epoch: "ab12".into(),
            recovered: true,
            id: Some(MessageId::from(1)),
        }),
        json!({"v":1,"type":"subscribed","topic":"metrics","seq":3,"epoch":"ab12","recovered":true,"id":1}),
    );
    server_shape(
        ServerMessage::Subscribed(Subscribed {
            topic: "metrics".into(),
            seq: 0,
            epoch: "e".into(),
            recovered: false,
            id: None,
        }),
        json!({"v":1,"type":"subscribed","topic":"metrics","seq":0,"epoch":"e","recovered":false}),
    );
    server_shape(
        ServerMessage::Unsubscribed(Unsubscribed { topic: "metrics".into(), id: Some("x".into()) }),
        json!({"v":1,"type":"unsubscribed","topic":"metrics","id":"x"}),
    );
}

#[test]
fn pong_ack_error_shapes() {
    server_shape(
        ServerMessage::Pong(Pong { ts: Some(12.into()), server_ts: 13, id: None }),
        json!({"v":1,"type":"pong","ts":12,"server_ts":13}),
    );
    server_shape(
        ServerMessage::Pong(Pong { ts: None, server_ts: 13, id: Some("p".into()) }),
        json!({"v":1,"type":"pong","ts":null,"server_ts":13,"id":"p"}),
    );
    server_shape(
        ServerMessage::Ack(Ack { id: "a".into(), result: Some(json!({"seq":4})) }),
        json!({"v":1,"type":"ack","id":"a","result":{"seq":4}}),
    );
    let mut err = ErrorMessage::new(ErrorCode::RateLimited, "slow down");
    err.id = Some(9.into());
    err.original_message = Some(json!({"type":"ping","id":9}));
    server_shape(
        ServerMessage::Error(err),
        json!({"v":1,"type":"error","code":"rate_limited","message":"slow down","retryable":true,"id":9,
               "original_message":{"type":"ping","id":9}}),
    );
}

#[test]
fn retryable_only_for_rate_limited_internal_and_agent_offline() {
    for code in ErrorCode::ALL {
        let expected = matches!(code, ErrorCode::RateLimited | ErrorCode::Internal | ErrorCode::AgentOffline);
        assert_eq!(code.retryable(), expected, "{code}");
        assert_eq!(serde_json::to_value(code).unwrap(), Value::String(code.as_str().into()));
    }
}

fn client_shape(env: ClientEnvelope, expected: Value) {
    let parsed = parse_client_message(&expected.to_string()).unwrap();
    assert_eq!(parsed, env, "parse of {expected}");
    let mut written: Value = serde_json::from_str(&env.to_json()).unwrap();
    written.as_object_mut().unwrap().remove("v");
    assert_eq!(written, expected);
}

#[test]
fn every_client_message_round_trips() {
    client_shape(
        ClientEnvelope::with_id(
            ClientMessage::Subscribe { topic: "workflow:1".into(), since: Some(10), epoch: Some("e".into()) },
            1,
        ),
        json!({"id":1,"type":"subscribe","topic":"workflow:1","since":10,"epoch":"e"}),
    );
    client_shape(
        ClientEnvelope::new(ClientMessage::Subscribe { topic: "metrics".into(), since: None, epoch: None }),
        json!({"type":"subscribe","topic":"metrics"}),
    );
    client_shape(
        ClientEnvelope::with_id(ClientMessage::Unsubscribe { topic: "metrics".into() }, "u"),
        json!({"id":"u","type":"unsubscribe","topic":"metrics"}),
    );
    client_shape(
        ClientEnvelope::new(ClientMessage::Ping { ts: Some(5.into()) }),
        json!({"type":"ping","ts":5}),
    );
    client_shape(
        ClientEnvelope::new(ClientMessage::Publish {
            topic: "session:a".into(),
            event: "ai_progress".into(),
            data: json!({"p":1}),
        }),
        json!({"type":"publish","topic":"session:a","event":"ai_progress","data":{"p":1}}),
    );
    client_shape(
        ClientEnvelope::new(ClientMessage::Control { action: ControlAction::Pause, workflow_id: Some("w".into()) }),
        json!({"type":"control","action":"pause","workflow_id":"w"}),
    );
    client_shape(
        ClientEnvelope::new(ClientMessage::Confirm { workflow_id: Some("w".into()) }),
        json!({"type":"confirm","workflow_id":"w"}),
    );
    client_shape(
        ClientEnvelope::new(ClientMessage::Command {
            command: CommandName::RestartStage,
            args: Some(json!({"stage_id":"train"})),
            workflow_id: Some("w".into()),
        }),
        json!({"type":"command","command":"restart_stage","args":{"stage_id":"train"},"workflow_id":"w"}),
    );
    client_shape(
        ClientEnvelope::new(ClientMessage::Chat { workflow_id: None, text: "hi".into() }),
        json!({"type":"chat","text":"hi"}),
    );
    client_shape(ClientEnvelope::new(ClientMessage::Close), json!({"type":"close"}));
}

fn parse_err(text: &str) -> ErrorMessage {
    *parse_client_message(text).expect_err(text)
}

#[test]
fn not_json_is_bad_json_with_raw_text() {
    let err = parse_err("{nope");
    assert_eq!(err.code, ErrorCode::BadJson);
    assert!(!err.retryable);
    assert_eq!(err.original_message, Some(Value::String("{nope".into())));
}

#[test]
fn raw_text_is_cut_at_a_character_boundary() {
    let text = format!("{}é{}", "a".repeat(1023), "b".repeat(50));
    let err = parse_err(&text);
    let Some(Value::String(raw)) = err.original_message else { panic!() };
    assert_eq!(raw, "a".repeat(1023));
}

#[test]
fn missing_or_bad_fields_are_bad_request() {
    for (text, needle) in [
        ("[1,2]", "object"),
        ("42", "object"),
        (r#"{"topic":"x"}"#, "no `type`"),
        (r#"{"type":5}"#, "`type` must be a string"),
        (r#"{"type":"subscribe"}"#, "topic"),
        (r#"{"type":"subscribe","topic":7}"#, "invalid type"),
        (r#"{"type":"subscribe","topic":"a","since":-1}"#, "invalid"),
        (r#"{"type":"control","action":"explode","workflow_id":"w"}"#, "unknown variant"),
        (r#"{"type":"ping","id":{"a":1}}"#, "`id`"),
    ] {
        let err = parse_err(text);
        assert_eq!(err.code, ErrorCode::BadRequest, "{text}: {}", err.message);
        assert!(err.message.contains(needle), "{text}: {}", err.message);
        assert!(err.original_message.is_some());
    }
}

#[test]
fn unknown_type_keeps_the_id() {
    let err = parse_err(r#"{"type":"dance","id":"d1"}"#);
    assert_eq!(err.code, ErrorCode::UnknownType);
    assert_eq!(err.id, Some("d1".into()));
    assert_eq!(err.original_message, Some(json!({"type":"dance","id":"d1"})));
}

#[test]
fn server_frames_that_are_not_protocol_are_errors() {
    assert!(ServerMessage::from_json("{}").is_err());
    assert!(ServerMessage::from_json(r#"{"v":2,"type":"pong","ts":null,"server_ts":1}"#).is_err());
    assert!(ServerMessage::from_json(r#"{"v":1,"type":"teapot"}"#).is_err());
}

#[test]
fn event_payloads_have_protocol_names() {
    let status = WorkflowStatus {
        id: None,
        name: None,
        state: WorkflowState::WaitingConfirmation,
        progress: 0.5,
        stage_index: Some(1),
        eta_s: None,
    };
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        json!({"state":"waiting_confirmation","progress":0.5,"stage_index":1,"eta_s":null})
    );
    let sample = MetricsSample {
        cpu_percent: 1.0,
        memory_percent: 2.0,
        memory_used_bytes: 3,
        memory_total_bytes: 4,
        gpu_available: false,
        gpu_type: GpuType::None,
        gpu_percent: None,
        gpu_memory_percent: None,
        gpus: vec![],
        pending_count: 0,
        running_count: 0,
        current_task: None,
    };
    let v = serde_json::to_value(&sample).unwrap();
    assert_eq!(v["gpu_type"], "none");
    assert_eq!(v["gpu_percent"], Value::Null);
    let out = TerminalOutput { stage_id: "s".into(), stream: OutputStream::Stderr, output: "x\n".into() };
    assert_eq!(serde_json::to_value(&out).unwrap(), json!({"stage_id":"s","stream":"stderr","output":"x\n"}));
}
