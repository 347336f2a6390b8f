//! The hub's contract (PROTOCOL.md sections 1-4, 6, 8) against the real server with a
//! real WebSocket client: topics, aliases, publish, history, resume, limits, stats.

mod common;

use common::{http, start_server, start_server_with, Closed};
use serde_json::{json, Value};
use std::time::Duration;

async fn http_publish(server: &common::TestServer, topic: &str, event: &str, data: Value) -> reqwest::Response {
    http()
        .post(server.http_url("/api/v1/publish"))
        .json(&json!({"topic": topic, "event": event, "data": data}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn subscribe_publish_unsubscribe_with_ids() {
    let server = start_server().await;
    let mut c = server.client().await;
    let sub = c.request(json!({"type":"subscribe","topic":"news"}), "s1").await;
    assert_eq!(sub["type"], "subscribed");
    assert_eq!((sub["topic"].clone(), sub["seq"].clone(), sub["recovered"].clone()), (json!("news"), json!(0), json!(true)));
    let epoch = sub["epoch"].as_str().unwrap().to_owned();
    assert!(!epoch.is_empty());

    let resp = http_publish(&server, "news", "headline", json!({"title":"hi"})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"topic":"news","seq":1}));
    let ev = c.expect_type("event").await;
    assert_eq!(ev["v"], 1);
    assert_eq!((ev["topic"].clone(), ev["seq"].clone(), ev["event"].clone()), (json!("news"), json!(1), json!("headline")));
    assert_eq!(ev["data"], json!({"title":"hi"}));
    assert!(ev["ts"].as_i64().unwrap() > 0);

    let unsub = c.request(json!({"type":"unsubscribe","topic":"news"}), "u1").await;
    assert_eq!(unsub, json!({"v":1,"type":"unsubscribed","topic":"news","id":"u1"}));
    http_publish(&server, "news", "headline", json!(2)).await;
    assert!(c.next_within(Duration::from_millis(300)).await.is_none(), "nothing after unsubscribe");

    let unsub = c.request(json!({"type":"unsubscribe","topic":"never"}), "u2").await;
    assert_eq!(unsub["type"], "unsubscribed", "even when it was not subscribed");
    server.stop().await;
}

#[tokio::test]
async fn invalid_topics_are_bad_requests_and_the_connection_stays() {
    let server = start_server().await;
    let mut c = server.client().await;
    for topic in [json!("Upper"), json!(""), json!("a b"), json!("x".repeat(129)), json!(5)] {
        let err = c.request(json!({"type":"subscribe","topic":topic}), "bad").await;
        assert_eq!(err["type"], "error", "{topic}");
        assert_eq!(err["code"], "bad_request", "{topic}");
        assert_eq!(err["original_message"]["topic"], topic);
    }
    assert_eq!(c.request(json!({"type":"ping"}), "p").await["type"], "pong");
    server.stop().await;
}

#[tokio::test]
async fn aliases_and_query_ids_are_subscribed_before_anything_else() {
    let server = start_server().await;
    for (path, topics) in [
        ("/ws/workflow/abc", vec!["workflow:abc"]),
        ("/ws/projects/p-1", vec!["workflow:p-1"]),
        ("/ws/agent/local", vec!["agent:local"]),
        ("/ws/coordinator", vec!["coordinator"]),
        ("/ws?session_id=s1&user_id=u1", vec!["session:s1", "user:u1"]),
        ("/ws?sessionId=s2&userId=u2", vec!["session:s2", "user:u2"]),
    ] {
        let mut c = server.connect(path).await;
        c.expect_type("hello").await;
        for topic in topics {
            let sub = c.expect_type("subscribed").await;
            assert_eq!(sub["topic"], topic, "{path}");
            assert_eq!(sub["recovered"], true);
        }
        c.close().await;
    }
    // an id that makes an invalid topic: an error, and the connection stays open
    let mut c = server.connect("/ws/workflow/NOT%20VALID").await;
    c.expect_type("hello").await;
    let err = c.expect_type("error").await;
    assert_eq!(err["code"], "bad_request");
    assert!(err["message"].as_str().unwrap().contains("NOT VALID"), "{err}");
    assert_eq!(c.request(json!({"type":"ping"}), "p").await["type"], "pong");
    // a parameter it does not take is named, not silently ignored
    let mut c = server.connect("/ws?session=s3&user_id=u3").await;
    c.expect_type("hello").await;
    assert_eq!(c.expect_type("subscribed").await["topic"], "user:u3");
    let err = c.expect_type("error").await;
    assert_eq!(err["code"], "bad_request");
    assert!(err["message"].as_str().unwrap().contains("\"session\"") && err["message"].as_str().unwrap().contains("session_id"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn publish_over_the_socket_is_acked_and_delivered() {
    let server = start_server().await;
    let mut c = server.client().await;
    c.request(json!({"type":"subscribe","topic":"session:x"}), "s").await;
    c.send_json(json!({"type":"publish","topic":"session:x","event":"ai_progress","data":{"p":0.5},"id":"pub1"})).await;
    // the publisher is a subscriber too: its event is queued during the publish, the ack after
    let ev = c.expect_type("event").await;
    assert_eq!((ev["seq"].clone(), ev["data"].clone()), (json!(1), json!({"p":0.5})));
    let ack = c.expect_type("ack").await;
    assert_eq!(ack, json!({"v":1,"type":"ack","id":"pub1","result":{"topic":"session:x","seq":1}}));

    for (msg, needle) in [
        (json!({"type":"publish","topic":"Nope","event":"e","data":1}), "topic"),
        (json!({"type":"publish","topic":"ok","event":"","data":1}), "event"),
        (json!({"type":"publish","topic":"ok","event":"e"}), "data"),
    ] {
        let err = c.request(msg.clone(), "bad").await;
        assert_eq!(err["code"], "bad_request", "{msg}");
        assert!(err["message"].as_str().unwrap().contains(needle), "{err}");
        assert_eq!(err["original_message"]["type"], "publish");
    }
    server.stop().await;
}

#[tokio::test]
async fn http_publish_errors_have_codes() {
    let server = start_server().await;
    let cases = [
        ("{not json", "bad_json"),
        (r#"{"topic":"a","event":"e"}"#, "bad_request"),
        (r#"{"topic":"A","event":"e","data":1}"#, "bad_request"),
        (r#"{"topic":"a","event":"e","data":1,"extra":true}"#, "bad_request"),
    ];
    for (body, code) in cases {
        let resp = http()
            .post(server.http_url("/api/v1/publish"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let resp = http().get(server.http_url("/api/v1/nothing-here")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "not_found");
    server.stop().await;
}

/// `GET /api/v1/topics`: every topic held now, by name, with where its stream stands
/// and who listens; a prefix narrows it, a limit cuts it (with the whole count).
#[tokio::test]
async fn topics_are_listed_with_seq_subscribers_and_last_event() {
    let server = start_server().await;
    let mut c = server.client().await;
    c.request(json!({"type":"subscribe","topic":"session:b"}), "s").await;
    for _ in 0..3 {
        http_publish(&server, "session:b", "tick", json!({})).await;
    }
    http_publish(&server, "session:a", "tick", json!({})).await;
    http_publish(&server, "user:z", "tick", json!({})).await;
    let list = |q: &'static str| {
        let url = server.http_url(&format!("/api/v1/topics{q}"));
        async move { http().get(url).send().await.unwrap() }
    };
    let all: Value = list("?prefix=session:").await.json().await.unwrap();
    assert_eq!(all["total"], 2);
    let topics = all["topics"].as_array().unwrap();
    assert_eq!(topics.iter().map(|t| t["name"].as_str().unwrap()).collect::<Vec<_>>(), ["session:a", "session:b"]);
    let b = &topics[1];
    assert_eq!((b["seq"].as_u64(), b["subscribers"].as_u64(), b["durable"].as_bool()), (Some(3), Some(1), Some(false)));
    assert!(b["last_event_ts"].as_i64().is_some_and(|ts| ts > 1_600_000_000_000), "{b}");
    assert!(b["epoch"].as_str().is_some_and(|e| !e.is_empty()));
    let everything: Value = list("").await.json().await.unwrap();
    assert!(everything["total"].as_u64().unwrap() >= 3, "{everything}");
    let cut: Value = list("?limit=1&prefix=session:").await.json().await.unwrap();
    assert_eq!((cut["total"].as_u64(), cut["topics"].as_array().map(Vec::len)), (Some(2), Some(1)));
    for bad in ["?limit=-1", "?lmit=3"] {
        let resp = list(bad).await;
        assert_eq!(resp.status(), 400, "{bad}");
        assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "bad_request", "{bad}");
    }
    let long = format!("/api/v1/topics?prefix={}", "a".repeat(129));
    let resp = http().get(server.http_url(&long)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn history_returns_the_exact_event_messages() {
    let server = start_server().await;
    let mut c = server.client().await;
    let sub = c.request(json!({"type":"subscribe","topic":"h"}), "s").await;
    for i in 1..=5 {
        http_publish(&server, "h", "n", json!({"i": i})).await;
    }
    let mut live = Vec::new();
    for _ in 0..5 {
        live.push(c.expect_type("event").await);
    }
    let page: Value = http().get(server.http_url("/api/v1/topics/h/history?since=2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["seq"], 5);
    assert_eq!(page["epoch"], sub["epoch"]);
    assert_eq!(page["events"].as_array().unwrap(), &live[2..].to_vec());
    let page: Value =
        http().get(server.http_url("/api/v1/topics/h/history?since=0&limit=2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    let empty: Value = http().get(server.http_url("/api/v1/topics/nobody/history")).send().await.unwrap().json().await.unwrap();
    assert_eq!((empty["events"].clone(), empty["seq"].clone()), (json!([]), json!(0)));
    let bad = http().get(server.http_url("/api/v1/topics/NO/history")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let bad = http().get(server.http_url("/api/v1/topics/h/history?since=minus")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["error"]["code"], "bad_request");
    server.stop().await;
}

#[tokio::test]
async fn since_replays_missed_events_or_says_not_recovered() {
    let server = start_server_with(|c| c.hub.history_events = 20).await;
    let mut first = server.client().await;
    let epoch = first.request(json!({"type":"subscribe","topic":"r"}), "s").await["epoch"].clone();
    for i in 1..=10 {
        http_publish(&server, "r", "n", json!(i)).await;
    }
    let mut c = server.client().await;
    let sub = c.request(json!({"type":"subscribe","topic":"r","since":4,"epoch":epoch}), "s").await;
    assert_eq!((sub["recovered"].clone(), sub["seq"].clone()), (json!(true), json!(10)));
    http_publish(&server, "r", "n", json!(11)).await;
    let seqs: Vec<u64> = futures_seq(&mut c, 7).await;
    assert_eq!(seqs, [5, 6, 7, 8, 9, 10, 11]);

    for (since, epoch) in [(json!(100), epoch.clone()), (json!(3), json!("other"))] {
        let mut c = server.client().await;
        let sub = c.request(json!({"type":"subscribe","topic":"r","since":since,"epoch":epoch}), "s").await;
        assert_eq!(sub["recovered"], false, "since {since} epoch {epoch}");
        http_publish(&server, "r", "n", json!(0)).await;
        let ev = c.expect_type("event").await;
        assert_eq!(ev["seq"].as_u64().unwrap(), sub["seq"].as_u64().unwrap() + 1, "live from seq + 1, nothing replayed");
    }
    for i in 0..30 {
        http_publish(&server, "r", "n", json!(i)).await;
    }
    let mut c = server.client().await;
    let sub = c.request(json!({"type":"subscribe","topic":"r","since":1}), "s").await;
    assert_eq!(sub["recovered"], false, "history no longer reaches seq 2");
    server.stop().await;
}

async fn futures_seq(c: &mut common::Client, n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    while out.len() < n {
        let v = c.expect_type("event").await;
        out.push(v["seq"].as_u64().unwrap());
    }
    out
}

#[tokio::test]
async fn too_many_subscriptions() {
    let server = start_server_with(|c| c.hub.max_subscriptions = 2).await;
    let mut c = server.client().await;
    assert_eq!(c.request(json!({"type":"subscribe","topic":"a"}), "1").await["type"], "subscribed");
    assert_eq!(c.request(json!({"type":"subscribe","topic":"b"}), "2").await["type"], "subscribed");
    assert_eq!(c.request(json!({"type":"subscribe","topic":"a"}), "3").await["type"], "subscribed", "again is no new one");
    let err = c.request(json!({"type":"subscribe","topic":"c"}), "4").await;
    assert_eq!((err["code"].clone(), err["retryable"].clone()), (json!("too_many_subscriptions"), json!(false)));
    server.stop().await;
}

#[tokio::test]
async fn rate_limit_then_close_on_abuse() {
    let server = start_server_with(|c| {
        c.hub.rate_per_min = 60;
        c.hub.rate_burst = 5;
        c.hub.abuse_limit = 3;
    })
    .await;
    let mut c = server.client().await;
    for i in 0..5 {
        assert_eq!(c.request(json!({"type":"ping"}), &i.to_string()).await["type"], "pong");
    }
    let err = c.request(json!({"type":"ping"}), "over").await;
    assert_eq!((err["code"].clone(), err["retryable"].clone()), (json!("rate_limited"), json!(true)));
    c.send_text("garbage counts too").await;
    assert_eq!(c.expect_type("error").await["code"], "rate_limited");
    c.send_json(json!({"type":"ping"})).await;
    assert_eq!(c.expect_type("error").await["code"], "rate_limited");
    assert_eq!(c.expect_close().await, 1008);
    server.stop().await;
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let server = start_server_with(|c| c.hub.max_message_bytes = 1024).await;
    let mut c = server.client().await;
    let big = json!({"type":"publish","topic":"t","event":"e","data":"x".repeat(2000)});
    c.send_json(big).await;
    assert_eq!(c.expect_close().await, 1009);
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_is_closed_and_forgotten() {
    let server = start_server_with(|c| c.hub.heartbeat_ms = 200).await;
    let c = server.connect("/ws").await;
    // a client that reads nothing never answers the server's Pings
    tokio::time::sleep(Duration::from_millis(900)).await;
    let stats: Value = http().get(server.http_url("/api/v1/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["active_connections"], 0, "{stats}");
    assert_eq!(stats["total_connections"], 1);
    let mut c = c;
    c.expect_type("hello").await;
    match c.next().await {
        Err(Closed::Code(code, _)) => assert_eq!(code, 1001),
        Err(Closed::NoFrame) => {}
        Ok(v) => panic!("unexpected {v}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn an_answering_client_stays_connected() {
    let server = start_server_with(|c| c.hub.heartbeat_ms = 200).await;
    let mut c = server.client().await;
    // reading keeps answering Pings (tungstenite replies to each on read)
    assert!(c.next_within(Duration::from_millis(900)).await.is_none());
    assert_eq!(c.request(json!({"type":"ping"}), "p").await["type"], "pong");
    server.stop().await;
}

#[tokio::test]
async fn stats_and_prometheus() {
    let server = start_server().await;
    let mut c = server.connect("/ws?session_id=s9&user_id=u9").await;
    c.expect_type("hello").await;
    c.request(json!({"type":"subscribe","topic":"extra"}), "s").await;
    let stats: Value = http().get(server.http_url("/api/v1/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["active_connections"], 1);
    assert!(stats["topics"].as_u64().unwrap() >= 3);
    assert!(stats["messages_in"].as_u64().unwrap() >= 1);
    assert!(stats["messages_out"].as_u64().unwrap() >= 3);
    let client = &stats["clients"][0];
    assert_eq!((client["user_id"].clone(), client["session_id"].clone()), (json!("u9"), json!("s9")));
    assert_eq!(client["subscriptions"], json!(["extra", "session:s9", "user:u9"]));
    assert_eq!(client["is_alive"], true);
    assert!(client["connected_at"].as_i64().is_some() && client["queue_len"].as_u64().is_some());
    assert!(client["id"].as_str().is_some());

    let text = http().get(server.http_url("/metrics")).send().await.unwrap().text().await.unwrap();
    for name in [
        "switchboard_connections_total",
        "switchboard_active_connections 1",
        "switchboard_messages_in_total",
        "switchboard_delivery_latency_seconds_bucket",
        "switchboard_slow_consumer_closes_total",
        "switchboard_rejected_messages_total{code=\"bad_json\"}",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    server.stop().await;
}
