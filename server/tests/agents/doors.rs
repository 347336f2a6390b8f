//! The agents' doors tried with bad input and the wrong tokens: reports for a run or a
//! stage that does not exist (404 naming it), from a token without the `agent` right or
//! from an agent that was not given the stage (403), too large (413); registering under
//! another agent's name; uploads over the cap (413), outside the run's folder (400),
//! from an agent with no stage of that run (403); and an upload that keeps its type.

use super::external::{executor, AGENT};
use crate::common::{http, start_secure_server_with, token, token_rights, TestServer};
use serde_json::{json, Value};

async fn server() -> TestServer {
    start_secure_server_with(|c| {
        c.agents.max_artifact_bytes = 1024;
        c.agents.max_report_bytes = 4096;
    })
    .await
}

async fn report(base: &str, bearer: &str, run: &str, body: &Value) -> (u16, Value) {
    let resp = http().post(format!("{base}/api/v1/workflows/{run}/reports")).bearer_auth(bearer).json(body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

fn started(run: &str, stage: &str) -> Value {
    json!({"reports":[{"run":run,"stage":stage,"attempt":1,"seq":1,"kind":"started"}]})
}

async fn put(base: &str, bearer: &str, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = http().put(format!("{base}{path}")).bearer_auth(bearer).header("content-type", content_type).body(body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// A run whose one stage `backend` executes, running.
async fn running_external(server: &TestServer, ops: &str, backend: &str, id: &str) -> crate::common::Client {
    let (mut exec, _) = executor(&server.ws_url(""), backend, "backend", json!([])).await;
    let pipeline = json!({"name":"doors","executor":"backend","stages":[{"id":"s"}]});
    let (status, body) = super::post(&server.http_url(""), "/api/v1/workflows", Some(ops), json!({"id":id,"pipeline":pipeline})).await;
    assert_eq!(status, 201, "{body}");
    exec.expect_type("assign").await;
    exec
}

#[tokio::test]
async fn reports_for_what_does_not_exist_or_is_not_yours_are_refused() {
    let server = server().await;
    let base = server.http_url("");
    let ops = token("ops", &["*"], &[], true);
    let backend = token_rights("backend", &[], AGENT);
    let _exec = running_external(&server, &ops, &backend, "doors-1").await;

    let (status, body) = report(&base, &backend, "no-such-run", &started("no-such-run", "s")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no-such-run"), "{body}");
    let (status, body) = report(&base, &backend, "doors-1", &started("doors-1", "no-such-stage")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no-such-stage"), "{body}");
    let (status, body) = report(&base, &backend, "doors-1", &started("other-run", "s")).await;
    assert_eq!(status, 400, "a batch names one run: {body}");

    // an operator's token is not an agent's; another agent may not report for it
    let (status, body) = report(&base, &ops, "doors-1", &started("doors-1", "s")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("agent"), "{body}");
    let mallory = token_rights("mallory", &[], AGENT);
    let (status, body) = report(&base, &mallory, "doors-1", &started("doors-1", "s")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("backend"), "{body}");

    // too large, or not JSON
    let lines: Vec<String> = (0..200).map(|i| format!("a long enough line of output number {i}")).collect();
    let big = json!({"reports":[{"run":"doors-1","stage":"s","attempt":1,"seq":1,"kind":"output","stream":"stdout","lines":lines}]});
    let (status, _) = report(&base, &backend, "doors-1", &big).await;
    assert_eq!(status, 413);
    let resp = http().post(format!("{base}/api/v1/workflows/doors-1/reports")).bearer_auth(&backend).header("content-type", "application/json").body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), 400);

    // the stage took none of that: seq 1 is still the next
    let (status, ok) = report(&base, &backend, "doors-1", &started("doors-1", "s")).await;
    assert_eq!((status, ok["applied_through"].clone()), (200, json!(1)), "{ok}");
    server.stop().await;
}

#[tokio::test]
async fn an_agent_registers_only_as_itself_and_only_with_the_agent_right() {
    let server = server().await;
    let url = format!("{}/api/v1/agents/connect", server.ws_url(""));
    let ops = token("ops", &["*"], &[], true);
    let resp = http().get(server.http_url("/api/v1/agents/connect")).bearer_auth(&ops)
        .header("connection", "upgrade").header("upgrade", "websocket").header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==").send().await.unwrap();
    assert_eq!(resp.status(), 403, "an operator's token is not an agent's");
    let resp = http().get(server.http_url("/api/v1/agents/connect")).header("connection", "upgrade").header("upgrade", "websocket")
        .header("sec-websocket-version", "13").header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==").send().await.unwrap();
    assert_eq!(resp.status(), 401, "no token");

    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mallory = token_rights("mallory", &[], AGENT);
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {mallory}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut c = crate::common::Client { ws };
    c.send_json(json!({"type":"register","name":"gpu-1"})).await;
    match c.next().await {
        Err(crate::common::Closed::Code(code, reason)) => {
            assert_eq!(code, 1008);
            assert!(reason.contains("mallory") && reason.contains("gpu-1"), "{reason}");
        }
        other => panic!("registering as another agent must be refused: {other:?}"),
    }
    let (_, agents) = super::get(&server.http_url(""), "/api/v1/agents", Some(&ops)).await;
    assert!(!agents["agents"].as_array().unwrap().iter().any(|a| a["agent_name"] == "gpu-1"), "{agents}");
    server.stop().await;
}

#[tokio::test]
async fn uploads_are_capped_kept_inside_the_run_and_only_from_its_executor() {
    let server = server().await;
    let base = server.http_url("");
    let ops = token("ops", &["*"], &[], true);
    let backend = token_rights("backend", &[], AGENT);
    let _exec = running_external(&server, &ops, &backend, "doors-2").await;

    let png = b"\x89PNG\r\n\x1a\nnot really an image".to_vec();
    let (status, body) = put(&base, &backend, "/api/v1/workflows/doors-2/artifacts/frames/0001.png", "image/png", png.clone()).await;
    assert_eq!(status, 201, "{body}");
    let resp = http().get(format!("{base}/api/v1/workflows/doors-2/artifacts/frames/0001.png")).bearer_auth(&ops).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "image/png", "the type it was uploaded with is kept");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), png);

    let (status, body) = put(&base, &backend, "/api/v1/workflows/doors-2/artifacts/big.bin", "application/octet-stream", vec![7; 1025]).await;
    assert_eq!((status, body["error"]["code"].clone()), (413, json!("payload_too_large")), "{body}");
    let (status, _) = put(&base, &backend, "/api/v1/workflows/doors-2/artifacts/..%2F..%2Fescape.txt", "text/plain", b"x".to_vec()).await;
    assert_eq!(status, 400);
    let (status, _) = put(&base, &backend, "/api/v1/workflows/doors-2/artifacts/ok.txt", "not a type", b"x".to_vec()).await;
    assert_eq!(status, 400);
    let mallory = token_rights("mallory", &[], AGENT);
    let (status, body) = put(&base, &mallory, "/api/v1/workflows/doors-2/artifacts/ok.txt", "text/plain", b"x".to_vec()).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = put(&base, &ops, "/api/v1/workflows/doors-2/artifacts/ok.txt", "text/plain", b"x".to_vec()).await;
    assert_eq!(status, 403, "an operator's token is not an agent's");
    let (status, _) = put(&base, &backend, "/api/v1/workflows/no-such-run/artifacts/ok.txt", "text/plain", b"x".to_vec()).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_stopping_server_says_goodbye_to_its_agents() {
    let server = server().await;
    let backend = token_rights("backend", &[], AGENT);
    let (mut exec, _) = executor(&server.ws_url(""), &backend, "backend", json!([])).await;
    let started = std::time::Instant::now();
    server.shutdown.cancel();
    assert_eq!(exec.expect_close().await, 1001);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), server.task).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "stopped in {:?}, not after the shutdown grace", started.elapsed());
}
