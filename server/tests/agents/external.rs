//! An external run, as an app's backend drives it: a plain HTTP client creates it under
//! its own id and confirms, pauses, resumes, chats and cancels; the backend holds an
//! agent connection (a WebSocket, here in the test), is given each stage in order and
//! every signal, acknowledges them, and reports over the WebSocket and over HTTP, where
//! a retried batch is applied once and a gap is refused with the seq expected. While
//! the backend is away, a control says `agent_offline`; when it is back, it works.

use crate::common::{http, start_secure_server_with, token, token_rights, Client, TIMEOUT};
use serde_json::{json, Value};
use server::auth::Rights;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub const AGENT: Rights = Rights { agent: true, ..Rights::NONE };

/// An executor's connection, registered as `name`; the `welcome` it got.
pub async fn executor(ws_base: &str, bearer: &str, name: &str, running: Value) -> (Client, Value) {
    let mut req = format!("{ws_base}/api/v1/agents/connect").into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {bearer}").parse().unwrap());
    let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(req)).await.expect("in time").expect("connect");
    let mut c = Client { ws };
    c.send_json(json!({"type":"register","name":name,"capabilities":["video"],"concurrency":4,"running":running})).await;
    let welcome = c.expect_type("welcome").await;
    (c, welcome)
}

/// The next message of `kind`, skipping `applied` acknowledgements.
async fn next_of(c: &mut Client, kind: &str) -> Value {
    loop {
        let m = c.recv().await;
        if m["type"] == kind {
            return m;
        }
        assert_eq!(m["type"], "applied", "expected {kind}, got {m}");
    }
}

fn report(run: &str, stage: &str, seq: u64, kind: Value) -> Value {
    let mut r = json!({"run":run,"stage":stage,"attempt":1,"seq":seq});
    r.as_object_mut().unwrap().extend(kind.as_object().unwrap().clone());
    r
}

async fn act(base: &str, ops: &str, id: &str, action: &str) -> reqwest::Response {
    http().post(format!("{base}/api/v1/workflows/{id}/{action}")).bearer_auth(ops).send().await.unwrap()
}

async fn state_of(base: &str, ops: &str, id: &str, state: &str) -> Value {
    super::wait_state(base, id, state, Some(ops), Duration::from_secs(15)).await
}

#[tokio::test]
async fn an_external_run_goes_through_its_gate_pause_and_cancel_driven_over_http() {
    let server = start_secure_server_with(|_| {}).await;
    let (base, ws_base) = (server.http_url(""), server.ws_url(""));
    let ops = token("ops", &["*"], &[], true);
    let backend = token_rights("backend", &[], AGENT);
    let (mut exec, welcome) = executor(&ws_base, &backend, "backend", json!([])).await;
    assert_eq!(welcome["resume"], json!([]));

    let pipeline = json!({"name":"video","executor":"backend","stages":[{"id":"render","confirm":true},{"id":"encode"}]});
    let (status, created) = super::post(&base, "/api/v1/workflows", Some(&ops), json!({"id":"demo-project","pipeline":pipeline})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["id"], "demo-project");
    let (status, again) = super::post(&base, "/api/v1/workflows", Some(&ops), json!({"id":"demo-project","pipeline":pipeline})).await;
    assert_eq!((status, again["error"]["code"].clone()), (409, json!("conflict")), "{again}");
    let (status, bad) = super::post(&base, "/api/v1/workflows", Some(&ops), json!({"id":"Demo Project!","pipeline":pipeline})).await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["message"].as_str().unwrap().contains("a-z"), "the rule is named: {bad}");

    // stage 1, given to the backend; reported over the WebSocket, then over HTTP
    let assign = next_of(&mut exec, "assign").await;
    assert_eq!((assign["key"]["run"].clone(), assign["key"]["stage"].clone()), (json!("demo-project"), json!("render")));
    assert!(assign["work"].get("run").is_none(), "an external stage has no command: {assign}");
    exec.send_json(json!({"type":"ack","id":assign["id"]})).await;
    let r = |seq, kind| report("demo-project", "render", seq, kind);
    let started = r(1, json!({"kind":"started"}));
    let rendering = r(2, json!({"kind":"output","stream":"stdout","lines":["rendering frame 1","::progress 0.5"]}));
    exec.send_json(json!({"type":"reports","reports":[started, rendering]})).await;
    let applied = exec.expect_type("applied").await;
    assert_eq!(applied["seq"], 2, "one `applied` per stage, through the last: {applied}");
    let batch = json!({"reports":[r(3, json!({"kind":"output","stream":"stdout","lines":["::progress 1.0","frame done"]}))]});
    let post_reports = |body: Value| {
        let backend = backend.clone();
        let url = format!("{base}/api/v1/workflows/demo-project/reports");
        async move {
            let resp = http().post(url).bearer_auth(backend).json(&body).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, ok) = post_reports(batch.clone()).await;
    assert_eq!((status, ok["applied_through"].clone()), (200, json!(3)), "{ok}");
    let (status, retried) = post_reports(batch).await;
    assert_eq!((status, retried["applied_through"].clone()), (200, json!(3)), "a retried batch: applied once: {retried}");
    let (status, gap) = post_reports(json!({"reports":[r(5, json!({"kind":"output","stream":"stdout","lines":["too soon"]}))]})).await;
    assert_eq!((status, gap["error"]["expected"].clone()), (409, json!(4)), "{gap}");
    let (status, _) = post_reports(json!({"reports":[r(4, json!({"kind":"finished","exit_code":0}))]})).await;
    assert_eq!(status, 200);
    let snap = state_of(&base, &ops, "demo-project", "waiting_confirmation").await;
    assert_eq!(snap["stages"][0]["progress"], 1.0);
    assert_eq!(snap["stages"][0]["agent"], "backend");
    let (status, late) = post_reports(json!({"reports":[r(5, json!({"kind":"output","stream":"stdout","lines":["late"]}))]})).await;
    assert_eq!(status, 409, "a finished stage takes no report: {late}");
    let text = super::terminal_text(&base, "demo-project", Some(&ops)).await;
    assert_eq!(text.matches("frame done").count(), 1, "{text}");
    assert!(text.contains("rendering frame 1") && !text.contains("too soon") && !text.contains("late"), "{text}");
    let (_, list) = super::get(&base, "/api/v1/workflows", Some(&ops)).await;
    assert!(list["workflows"].as_array().unwrap().iter().any(|w| w["id"] == "demo-project"), "{list}");

    // the gate, confirmed over HTTP: stage 2 goes to the backend
    assert_eq!(act(&base, &ops, "demo-project", "confirm").await.status(), 200);
    let assign = next_of(&mut exec, "assign").await;
    assert_eq!(assign["key"]["stage"], "encode");
    exec.send_json(json!({"type":"ack","id":assign["id"]})).await;
    let e = |seq, kind| report("demo-project", "encode", seq, kind);
    exec.send_json(json!({"type":"reports","reports":[e(1, json!({"kind":"started"}))]})).await;
    state_of(&base, &ops, "demo-project", "running").await;

    // pause and resume reach it as signals; it says when it paused
    assert_eq!(act(&base, &ops, "demo-project", "pause").await.status(), 200);
    let signal = next_of(&mut exec, "signal").await;
    assert_eq!((signal["action"].clone(), signal["key"]["stage"].clone()), (json!("pause"), json!("encode")));
    exec.send_json(json!({"type":"ack","id":signal["id"]})).await;
    exec.send_json(json!({"type":"reports","reports":[e(2, json!({"kind":"paused","paused":true}))]})).await;
    state_of(&base, &ops, "demo-project", "paused").await;
    assert_eq!(act(&base, &ops, "demo-project", "resume").await.status(), 200);
    assert_eq!(next_of(&mut exec, "signal").await["action"], "resume");
    exec.send_json(json!({"type":"reports","reports":[e(3, json!({"kind":"paused","paused":false}))]})).await;
    state_of(&base, &ops, "demo-project", "running").await;

    // chat reaches it; cancel too, and the run ends when it says it stopped
    let resp = http().post(format!("{base}/api/v1/workflows/demo-project/chat")).bearer_auth(&ops).json(&json!({"text":"use the blue palette"})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let chat = next_of(&mut exec, "chat").await;
    assert_eq!(chat["text"], "use the blue palette");
    assert_eq!(act(&base, &ops, "demo-project", "cancel").await.status(), 200);
    let signal = next_of(&mut exec, "signal").await;
    assert_eq!(signal["action"], "cancel");
    exec.send_json(json!({"type":"reports","reports":[e(4, json!({"kind":"finished","error":"cancelled by the user"}))]})).await;
    let snap = state_of(&base, &ops, "demo-project", "cancelled").await;
    assert_eq!(snap["stages"][1]["status"], "cancelled", "{snap}");
    server.stop().await;
}

#[tokio::test]
async fn a_control_while_the_executor_is_away_says_agent_offline_and_works_when_it_is_back() {
    let server = start_secure_server_with(|c| c.agents.agent_grace_s = 30).await;
    let (base, ws_base) = (server.http_url(""), server.ws_url(""));
    let ops = token("ops", &["*"], &[], true);
    let backend = token_rights("backend", &[], AGENT);
    let (mut exec, _) = executor(&ws_base, &backend, "backend", json!([])).await;
    let pipeline = json!({"name":"away","executor":"backend","stages":[{"id":"s"}]});
    let (status, _) = super::post(&base, "/api/v1/workflows", Some(&ops), json!({"id":"away-1","pipeline":pipeline})).await;
    assert_eq!(status, 201);
    let assign = next_of(&mut exec, "assign").await;
    exec.send_json(json!({"type":"ack","id":assign["id"]})).await;
    exec.send_json(json!({"type":"reports","reports":[report("away-1", "s", 1, json!({"kind":"started"}))]})).await;
    exec.expect_type("applied").await;
    exec.close().await;
    super::wait_agent(&base, "backend", "offline", Some(&ops)).await;

    let resp = act(&base, &ops, "away-1", "pause").await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "agent_offline", "{body}");

    // back, still running it: taken up from the next seq, and the pause goes through
    let (mut exec, welcome) = executor(&ws_base, &backend, "backend", json!([{"run":"away-1","stage":"s","attempt":1}])).await;
    assert_eq!(welcome["resume"], json!([{"run":"away-1","stage":"s","attempt":1,"next_seq":2}]), "{welcome}");
    assert_eq!(act(&base, &ops, "away-1", "pause").await.status(), 200);
    assert_eq!(next_of(&mut exec, "signal").await["action"], "pause");
    exec.send_json(json!({"type":"reports","reports":[report("away-1", "s", 2, json!({"kind":"finished","exit_code":0}))]})).await;
    state_of(&base, &ops, "away-1", "completed").await;
    server.stop().await;
}

#[tokio::test]
async fn an_assign_lost_with_a_connection_is_sent_again_and_a_stage_lost_by_a_restarted_executor_fails_at_once() {
    let server = start_secure_server_with(|c| c.agents.agent_grace_s = 60).await;
    let (base, ws_base) = (server.http_url(""), server.ws_url(""));
    let ops = token("ops", &["*"], &[], true);
    let backend = token_rights("backend", &[], AGENT);
    let (mut exec, _) = executor(&ws_base, &backend, "backend", json!([])).await;
    let pipeline = json!({"name":"lossy","executor":"backend","stages":[{"id":"a"},{"id":"b"}]});
    let (status, _) = super::post(&base, "/api/v1/workflows", Some(&ops), json!({"id":"lossy-1","pipeline":pipeline})).await;
    assert_eq!(status, 201);
    // the assign is "lost": the executor goes away without it and comes back running nothing
    next_of(&mut exec, "assign").await;
    exec.close().await;
    let (mut exec, _) = executor(&ws_base, &backend, "backend", json!([])).await;
    let assign = next_of(&mut exec, "assign").await;
    assert_eq!(assign["key"], json!({"run":"lossy-1","stage":"a","attempt":1}), "sent again");
    exec.send_json(json!({"type":"reports","reports":[report("lossy-1", "a", 1, json!({"kind":"started"})), report("lossy-1", "a", 2, json!({"kind":"finished","exit_code":0}))]})).await;
    // stage b starts on it; then the executor restarts and no longer has it: lost now,
    // not after the 60 s grace
    let assign = next_of(&mut exec, "assign").await;
    assert_eq!(assign["key"]["stage"], "b");
    exec.send_json(json!({"type":"reports","reports":[report("lossy-1", "b", 1, json!({"kind":"started"}))]})).await;
    next_of(&mut exec, "applied").await;
    exec.close().await;
    let (_exec, _) = executor(&ws_base, &backend, "backend", json!([])).await;
    let snap = state_of(&base, &ops, "lossy-1", "failed").await;
    assert!(snap["stages"][1]["error"].as_str().unwrap().contains("came back without stage"), "{snap}");
    server.stop().await;
}
