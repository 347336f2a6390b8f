//! Several nodes on one Redis (`--broker`): the hub's shared topics across nodes, with
//! a real `redis-server` of the test's own and real faults (a killed pub/sub
//! connection, Redis restarted empty, Redis gone).

mod common;
#[path = "cluster/redis_server.rs"]
mod redis_server;
#[path = "cluster/watch.rs"]
mod watch;
#[path = "cluster/broker_nodes.rs"]
mod broker_nodes;

use broker_nodes::{node, subscribe};
use common::{http, Client, TestServer};
use redis_server::RedisServer;
use serde_json::{json, Value};
use std::time::Duration;

async fn publish(node: &TestServer, topic: &str, i: u64) -> reqwest::Response {
    http()
        .post(node.http_url("/api/v1/publish"))
        .json(&json!({"topic": topic, "event": "tick", "data": {"i": i}}))
        .send()
        .await
        .expect("HTTP publish")
}

async fn publish_ok(node: &TestServer, topic: &str, i: u64) -> u64 {
    let resp = publish(node, topic, i).await;
    assert_eq!(resp.status(), 200, "publish {i}");
    let body: Value = resp.json().await.expect("JSON");
    body["seq"].as_u64().expect("seq")
}

/// Reads events of `topic` until seq `last`; asserts each is the next seq, with the
/// data its publisher gave it (`i` = seq - 1 - `offset`).
async fn expect_seqs(c: &mut Client, topic: &str, first: u64, last: u64) {
    let mut next = first;
    while next <= last {
        let v = c.recv().await;
        if v["type"] != "event" || v["topic"] != topic {
            continue;
        }
        assert_eq!(v["seq"], next, "seq after {}: {v}", next - 1);
        assert_eq!(v["data"]["i"], next - 1, "{v}");
        next += 1;
    }
}

/// Reads events of `topic` until seq `last`, asserting each is the next seq.
async fn expect_seq_order(c: &mut Client, topic: &str, last: u64) {
    let mut next = 1;
    while next <= last {
        let v = c.recv().await;
        if v["type"] == "event" && v["topic"] == topic {
            assert_eq!(v["seq"], next, "seq after {}: {v}", next - 1);
            next += 1;
        }
    }
}

#[tokio::test]
async fn three_nodes_share_a_topic_in_order_and_a_subscriber_resumes_on_another() {
    let redis = RedisServer::start();
    let (a, b, c) = (node(&redis, "t1:").await, node(&redis, "t1:").await, node(&redis, "t1:").await);
    let (mut on_b, sub) = subscribe(&b, "room:1", None).await;
    assert_eq!(sub["seq"], 0);
    let epoch = sub["epoch"].as_str().expect("epoch").to_owned();
    let (mut on_c, _) = subscribe(&c, "room:1", None).await;
    let (mut on_a, _) = subscribe(&a, "room:1", None).await;
    for i in 0..150 {
        assert_eq!(publish_ok(&a, "room:1", i).await, i + 1);
    }
    expect_seqs(&mut on_a, "room:1", 1, 100).await;
    on_a.close().await;
    // the subscriber on A saw 100; 150 more are published through B and C meanwhile
    for i in 150..300 {
        let via = if i % 2 == 0 { &b } else { &c };
        assert_eq!(publish_ok(via, "room:1", i).await, i + 1);
    }
    expect_seqs(&mut on_b, "room:1", 1, 300).await;
    expect_seqs(&mut on_c, "room:1", 1, 300).await;
    let (mut moved, resumed) = subscribe(&c, "room:1", Some((100, &epoch))).await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    assert_eq!(resumed["epoch"], epoch.as_str());
    expect_seqs(&mut moved, "room:1", 101, 300).await;
    publish_ok(&a, "room:1", 300).await;
    expect_seqs(&mut moved, "room:1", 301, 301).await;
    // history through any node
    let page: Value = http().get(b.http_url("/api/v1/topics/room:1/history?since=295")).send().await.unwrap().json().await.unwrap();
    let seqs: Vec<u64> = page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (296..=301).collect::<Vec<_>>(), "{page}");
    assert_eq!(page["epoch"], epoch.as_str());
}

#[tokio::test]
async fn what_one_node_acknowledged_the_others_serve_at_once() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "t4:").await, node(&redis, "t4:").await);
    let (_on_b, sub) = subscribe(&b, "quick", None).await;
    let epoch = sub["epoch"].as_str().unwrap().to_owned();
    for i in 0..30 {
        let seq = publish_ok(&a, "quick", i).await;
        // B may not have had the event through pub/sub yet: it must still serve it
        let page: Value = http().get(b.http_url(&format!("/api/v1/topics/quick/history?since={}", seq - 1))).send().await.unwrap().json().await.unwrap();
        assert_eq!(page["seq"], seq, "{page}");
        assert_eq!(page["events"][0]["seq"], seq, "{page}");
        let (_c, resumed) = subscribe(&b, "quick", Some((seq, &epoch))).await;
        assert_eq!(resumed["recovered"], true, "a seq acknowledged on A is not 'beyond the last seq' on B: {resumed}");
    }
}

#[tokio::test]
async fn a_producer_s_publishes_stay_in_order_while_many_are_in_flight() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "t5:").await, node(&redis, "t5:").await);
    let (mut on_b, _) = subscribe(&b, "stream", None).await;
    let mut producer = a.client().await;
    // sent without waiting: the node keeps many in flight to Redis
    for i in 0..500u64 {
        let event = if i == 250 { "\u{7}bad" } else { "tick" };
        producer.send_json(json!({"type": "publish", "id": format!("p{i}"), "topic": "stream", "event": event, "data": {"i": i}})).await;
    }
    producer.send_json(json!({"type": "ping", "id": "after"})).await;
    let mut seq = 0;
    for i in 0..500u64 {
        let reply = producer.recv().await;
        assert_eq!(reply["id"], format!("p{i}"), "replies in the order sent: {reply}");
        if i == 250 {
            assert_eq!(reply["type"], "error", "{reply}");
            continue;
        }
        seq += 1;
        assert_eq!(reply["result"]["seq"], seq, "seqs in the order sent: {reply}");
    }
    assert_eq!(producer.recv().await["id"], "after", "a later message waits for the publishes before it");
    let mut next = 1;
    while next <= 499 {
        let v = on_b.recv().await;
        if v["type"] == "event" {
            let i = v["data"]["i"].as_u64().unwrap();
            assert_eq!(v["seq"], next, "{v}");
            assert_eq!(i, if next <= 250 { next - 1 } else { next }, "{v}");
            next += 1;
        }
    }
}

#[tokio::test]
async fn a_killed_pubsub_connection_is_repaired_without_a_gap() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "t2:").await, node(&redis, "t2:").await);
    let (mut on_b, _) = subscribe(&b, "feed", None).await;
    let (mut on_a, _) = subscribe(&a, "feed", None).await;
    // pub/sub connections killed every 10 ms while events are published as fast as
    // HTTP goes, from both nodes at once: events are missed and must be read back
    let mut admin = redis.connection().await;
    let killer = tokio::spawn(async move {
        let mut killed = 0u64;
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let n: u64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut admin).await.unwrap();
            killed += n;
        }
        killed
    });
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let mut publishers = Vec::new();
    for p in 0..4u64 {
        let via = if p % 2 == 0 { a.clone() } else { b.clone() };
        publishers.push(tokio::spawn(async move {
            for _ in 0..100 {
                let resp = publish(&via, "feed", 0).await;
                assert_eq!(resp.status(), 200);
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    let killed = killer.await.unwrap();
    assert!(killed >= 10, "pub/sub connections were killed ({killed})");
    expect_seq_order(&mut on_b, "feed", 400).await;
    expect_seq_order(&mut on_a, "feed", 400).await;
    // and nothing more than once
    assert!(on_b.next_within(Duration::from_millis(300)).await.is_none(), "no event twice");
}

#[tokio::test]
async fn redis_restarted_empty_gives_a_new_epoch_and_redis_away_a_retryable_error() {
    let mut redis = RedisServer::start();
    let (a, b) = (node(&redis, "t3:").await, node(&redis, "t3:").await);
    let (mut on_b, sub) = subscribe(&b, "jobs", None).await;
    let old_epoch = sub["epoch"].as_str().unwrap().to_owned();
    for i in 0..10 {
        publish_ok(&a, "jobs", i).await;
    }
    expect_seqs(&mut on_b, "jobs", 1, 10).await;

    redis.kill();
    let resp = publish(&a, "jobs", 10).await;
    assert_eq!(resp.status(), 503, "Redis away: the publish is refused, to be retried");
    assert_eq!(resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()), Some("1".into()));
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("broker cannot be reached"), "{body}");

    redis.start_again();
    // B's subscribers held seqs of the old history: closed (1012) to resume
    assert_eq!(on_b.expect_close().await, 1012);
    let (mut resumed, sub) = loop {
        let (c, sub) = subscribe(&b, "jobs", Some((10, &old_epoch))).await;
        if sub["epoch"] != old_epoch.as_str() {
            break (c, sub);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(sub["recovered"], false, "{sub}");
    assert_eq!(sub["seq"], 0, "{sub}");
    // live in the new epoch, whichever node publishes (A reconnects by itself)
    let mut seq = 0;
    for _ in 0..50 {
        let resp = publish(&a, "jobs", 0).await;
        if resp.status() == 200 {
            seq = resp.json::<Value>().await.unwrap()["seq"].as_u64().unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seq, 1, "the new epoch starts at 1");
    expect_seqs(&mut resumed, "jobs", 1, 1).await;
}

fn run_binary(args: &[&str]) -> (bool, String) {
    let data = common::tempdir::TempDir::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--port", "0", "--auth", "off", "--data-dir"])
        .arg(data.path())
        .args(args)
        .output()
        .expect("run switchboard");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_broker_settings_stop_the_server_with_a_clear_error() {
    let (ok, err) = run_binary(&["--broker", "http://example.com"]);
    assert!(!ok && err.contains("is not a Redis URL"), "{err}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (ok, err) = run_binary(&["--broker", &format!("redis://127.0.0.1:{closed}/")]);
    assert!(!ok && err.contains(&format!("cannot reach the broker (Redis) at 127.0.0.1:{closed}")), "{err}");
    let evicting = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let (ok, err) = run_binary(&["--broker", &evicting.url()]);
    assert!(!ok && err.contains("maxmemory-policy \"allkeys-lru\""), "{err}");
    let (ok, err) = run_binary(&["--broker-prefix", "has space"]);
    assert!(!ok && err.contains("--broker-prefix"), "{err}");
}
