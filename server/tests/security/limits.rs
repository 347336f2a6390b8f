//! Every size and count has a limit with a clear error: request bodies (413, before a
//! byte is read when the length is declared), stages per pipeline, runs in the queue
//! (429 with Retry-After), chat text, history responses, the memory of non-durable
//! histories; and an event at the maximum size reaches every subscriber, live and
//! replayed.

use super::{get, post, raw};
use crate::common::{http, start_server_with, Client};
use serde_json::{json, Value};

/// A publish body of exactly `len` bytes.
fn publish_body(len: usize) -> String {
    let frame = |pad: usize| format!(r#"{{"topic":"session:big","event":"e","data":"{}"}}"#, "x".repeat(pad));
    let overhead = frame(0).len();
    frame(len - overhead)
}

#[tokio::test]
async fn a_body_one_byte_over_its_limit_is_413_and_at_the_limit_is_taken() {
    let server = start_server_with(|c| c.http.max_pipeline_bytes = 4_096).await;
    let max = 65_536;
    let send = |path: &'static str, body: String| {
        let url = server.http_url(path);
        async move {
            let resp = http().post(url).header("content-type", "application/json").body(body).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = send("/api/v1/publish", publish_body(max + 1)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(body["error"]["message"].as_str().unwrap().contains("65536") && body["error"]["message"].as_str().unwrap().contains("SWITCHBOARD_MAX_MESSAGE_BYTES"));
    assert_eq!(send("/api/v1/publish", publish_body(max)).await.0, 200);

    let stages = |n: usize| json!({"pipeline":{"name":"p","stages":[{"id":"a","run":"x".repeat(n)}]}}).to_string();
    let over = stages(4_096 - stages(0).len() + 1);
    assert_eq!(over.len(), 4_097);
    let (status, body) = send("/api/v1/workflows", over).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("SWITCHBOARD_MAX_PIPELINE_BYTES"), "{body}");
    let chat = format!(r#"{{"text":"{}"}}"#, "x".repeat(max));
    assert_eq!(send("/api/v1/workflows/none/chat", chat).await.0, 413);

    // a chunked body (no declared length) is cut at the limit too
    let big = publish_body(max + 100);
    let chunked = format!(
        "POST /api/v1/publish HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        server.addr,
        big.len()
    );
    let (status, text) = raw(&server, &chunked).await;
    assert_eq!(status, 413, "{text}");
    server.stop().await;
}

#[tokio::test]
async fn stages_queued_runs_and_chat_have_limits() {
    let server = start_server_with(|c| {
        c.engine.concurrency = 1;
        c.engine.max_queued_runs = 2;
        c.engine.max_stages = 256;
    })
    .await;
    let many: Vec<Value> = (0..257).map(|i| json!({"id": format!("s{i}"), "run": "true"})).collect();
    let (status, body) = post(&server, "/api/v1/workflows", "", json!({"pipeline":{"name":"many","stages":many}})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("257 stages is over the limit of 256"), "{body}");

    let sleeper = json!({"pipeline":{"name":"sleep","stages":[{"id":"s","run":"sleep 30","stdin":"chat"}]}});
    let (_, first) = post(&server, "/api/v1/workflows", "", sleeper.clone()).await;
    super::wait_state(&server, first["id"].as_str().unwrap(), "running", None).await;
    for _ in 0..2 {
        assert_eq!(post(&server, "/api/v1/workflows", "", sleeper.clone()).await.0, 201);
    }
    let resp = http().post(server.http_url("/api/v1/workflows")).json(&sleeper).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_some(), "says when to retry");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(body["error"]["message"].as_str().unwrap().contains("SWITCHBOARD_MAX_QUEUED_RUNS"), "{body}");

    let id = first["id"].as_str().unwrap();
    let long = "x".repeat(16_385);
    let (status, body) = post(&server, &format!("/api/v1/workflows/{id}/chat"), "", json!({"text": long})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("16385 bytes is over the limit of 16384"), "{body}");
    assert_eq!(post(&server, &format!("/api/v1/workflows/{id}/chat"), "", json!({"text": "x".repeat(16_384)})).await.0, 200);
    let mut c = Client::connect(&server.ws_url("/ws")).await;
    c.expect_type("hello").await;
    let r = c.request(json!({"type":"chat","workflow_id":id,"text":"y".repeat(16_385)}), "c").await;
    assert_eq!((r["type"].clone(), r["code"].clone()), (json!("error"), json!("bad_request")), "{r}");
    server.stop().await;
}

#[tokio::test]
async fn history_responses_and_history_memory_stay_within_their_budgets() {
    let server = start_server_with(|c| {
        c.http.history_response_bytes = 65_536;
        c.hub.history_memory_bytes = 262_144;
        c.hub.history_events = 100_000;
    })
    .await;
    let publish = |topic: &'static str, i: usize| {
        let url = server.http_url("/api/v1/publish");
        async move {
            let body = json!({"topic": topic, "event": "e", "data": {"i": i, "pad": "p".repeat(2_000)}});
            assert_eq!(http().post(url).json(&body).send().await.unwrap().status(), 200);
        }
    };
    for i in 0..100 {
        publish("session:old", i).await;
    }
    let resp = http().get(server.http_url("/api/v1/topics/session:old/history?since=0&limit=1000")).send().await.unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.len() <= 65_536, "{} bytes", text.len());
    let page: Value = serde_json::from_str(&text).unwrap();
    let seqs: Vec<u64> = page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.len() > 10 && seqs.len() < 100, "{} events", seqs.len());
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "a gapless prefix: the reader asks again from the last");
    assert_eq!(page["seq"], 100);

    // 100 more events on another topic: together past the budget, the oldest go first
    for i in 0..100 {
        publish("session:new", i).await;
    }
    let (_, old) = get(&server, "/api/v1/topics/session:old/history?since=0&limit=1", None).await;
    let first_kept = old["events"][0]["seq"].as_u64().unwrap_or(u64::MAX);
    assert!(first_kept > 1, "the oldest events were evicted: {old}");
    let (_, new) = get(&server, "/api/v1/topics/session:new/history?since=0&limit=1", None).await;
    assert_eq!(new["events"][0]["seq"], 1, "the newest topic is whole");
    let mut c = Client::connect(&server.ws_url("/ws")).await;
    c.expect_type("hello").await;
    let r = c.request(json!({"type":"subscribe","topic":"session:old","since":0}), "s").await;
    assert_eq!(r["recovered"], false, "a resume from before what is kept says so: {r}");
    let metrics = http().get(server.http_url("/metrics")).send().await.unwrap().text().await.unwrap();
    let evictions: u64 = metrics.lines().find(|l| l.starts_with("switchboard_history_evictions_total")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap();
    assert!(evictions > 0, "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn an_event_at_the_maximum_size_reaches_every_subscriber_and_replays() {
    let server = start_server_with(|_| {}).await;
    let mut subs = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(&server.ws_url("/ws?session_id=big")).await;
        c.expect_type("hello").await;
        c.expect_type("subscribed").await;
        subs.push(c);
    }
    for _ in 0..3 {
        let resp = http().post(server.http_url("/api/v1/publish")).header("content-type", "application/json").body(publish_body(65_536)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    for c in &mut subs {
        for seq in 1..=3 {
            let ev = c.expect_type("event").await;
            assert_eq!(ev["seq"], seq);
            assert!(ev["data"].as_str().unwrap().len() > 65_000);
        }
    }
    let mut late = Client::connect(&server.ws_url("/ws")).await;
    late.expect_type("hello").await;
    let r = late.request(json!({"type":"subscribe","topic":"session:big","since":0}), "r").await;
    assert_eq!(r["recovered"], true);
    for seq in 1..=3 {
        assert_eq!(late.expect_type("event").await["seq"], seq);
    }
    server.stop().await;
}
