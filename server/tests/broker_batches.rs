//! A node's publishes to one Redis go in batches: a topic's publishes in one pipeline
//! as one script call and one pub/sub message, cut at a byte budget. Every event still
//! arrives once, in seq order, on every node; a message a node cannot read (a node of
//! another version) is caught up from the stream at once.

mod common;
#[path = "cluster/broker_nodes.rs"]
mod broker_nodes;
#[path = "cluster/redis_server.rs"]
mod redis_server;
#[path = "cluster/watch.rs"]
mod watch;

use broker_nodes::{node, subscribe};
use common::Client;
use redis_server::RedisServer;
use serde_json::json;
use std::time::Duration;

/// The `i`s of the events a subscriber gets on `topic`, `n` of them, checking seqs 1..=n.
async fn data_in_seq_order(c: &mut Client, topic: &str, n: u64) -> Vec<u64> {
    let mut got = Vec::new();
    while (got.len() as u64) < n {
        let v = c.recv().await;
        if v["type"] == "event" && v["topic"] == topic {
            assert_eq!(v["seq"], got.len() as u64 + 1, "{v}");
            got.push(v["data"]["i"].as_u64().unwrap());
        }
    }
    got
}

#[tokio::test]
async fn a_burst_to_two_topics_goes_as_batches_and_arrives_whole_and_in_order() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "t6:").await, node(&redis, "t6:").await);
    let (mut x_on_b, _) = subscribe(&b, "x", None).await;
    let (mut y_on_b, _) = subscribe(&b, "y", None).await;
    let (mut x_on_a, _) = subscribe(&a, "x", None).await;
    let mut admin = redis.connection().await;
    let () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut admin).await.unwrap();
    let topic_of = |i: u64| if i % 3 == 0 { "y" } else { "x" };
    let mut producer = a.client().await;
    for i in 0..600u64 {
        producer.send_json(json!({"type": "publish", "id": format!("p{i}"), "topic": topic_of(i), "event": "tick", "data": {"i": i}})).await;
    }
    let (mut x, mut y) = (0u64, 0u64);
    for i in 0..600u64 {
        let reply = producer.recv().await;
        assert_eq!(reply["id"], format!("p{i}"), "{reply}");
        let seq = if topic_of(i) == "y" { y += 1; y } else { x += 1; x };
        assert_eq!(reply["result"]["seq"], seq, "each topic's seqs in the order sent: {reply}");
    }
    let xs: Vec<u64> = (0..600).filter(|i| topic_of(*i) == "x").collect();
    let ys: Vec<u64> = (0..600).filter(|i| topic_of(*i) == "y").collect();
    assert_eq!(data_in_seq_order(&mut x_on_b, "x", 400).await, xs);
    assert_eq!(data_in_seq_order(&mut y_on_b, "y", 200).await, ys);
    assert_eq!(data_in_seq_order(&mut x_on_a, "x", 400).await, xs);
    for c in [&mut x_on_b, &mut y_on_b, &mut x_on_a] {
        assert!(c.next_within(Duration::from_millis(300)).await.is_none(), "no event twice");
    }
    // many in flight: a topic's publishes in one pipeline went as one pub/sub message
    let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut admin).await.unwrap();
    let calls: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_publish:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .expect("PUBLISH calls counted");
    assert!(calls < 600, "{calls} pub/sub messages for 600 events: none was batched");
}

#[tokio::test]
async fn a_burst_of_large_events_is_cut_into_calls_and_arrives_whole() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "t7:").await, node(&redis, "t7:").await);
    let (mut on_b, _) = subscribe(&b, "big", None).await;
    let mut producer = a.client().await;
    // 60 events of ~60 KiB in flight: 3.6 MiB, more than one call's budget (1 MiB)
    let pad = "é".repeat(30_000);
    for i in 0..60u64 {
        producer.send_json(json!({"type": "publish", "id": format!("p{i}"), "topic": "big", "event": "tick", "data": {"i": i, "pad": pad}})).await;
    }
    for i in 0..60u64 {
        let reply = producer.recv().await;
        assert_eq!((reply["id"].clone(), reply["result"]["seq"].clone()), (json!(format!("p{i}")), json!(i + 1)), "{reply}");
    }
    let mut next = 1;
    while next <= 60 {
        let v = on_b.recv().await;
        if v["type"] == "event" {
            assert_eq!((v["seq"].as_u64(), v["data"]["i"].as_u64()), (Some(next), Some(next - 1)), "seq {next}");
            assert_eq!(v["data"]["pad"], pad.as_str(), "the frame whole");
            next += 1;
        }
    }
}

#[tokio::test]
async fn a_message_a_node_cannot_read_is_caught_up_from_the_stream_at_once() {
    let redis = RedisServer::start();
    let b = node(&redis, "t8:").await;
    let (mut on_b, sub) = subscribe(&b, "odd", None).await;
    let epoch = sub["epoch"].as_str().expect("epoch").to_owned();
    // what a node of another version might write: the event stored, then announced in
    // a form this one does not know
    let frame = r#"{"v":1,"type":"event","topic":"odd","seq":1,"ts":1,"event":"tick","data":{"i":0}}"#;
    let mut admin = redis.connection().await;
    let script = redis::Script::new(
        r#"redis.call('hincrby', KEYS[1], 's', 1)
           redis.call('xadd', KEYS[2], '1-0', 'f', ARGV[1])
           redis.call('publish', ARGV[2], 'V2|' .. ARGV[3] .. '|' .. ARGV[1])"#,
    );
    let () = script.key("t8:m:{odd}").key("t8:s:{odd}").arg(frame).arg("t8:c:odd").arg(&epoch).invoke_async(&mut admin).await.unwrap();
    // nothing else is published: only the catch-up can bring it
    let v = on_b.next_within(Duration::from_secs(3)).await.expect("the event, read from the stream").expect("still open");
    assert_eq!((v["type"].as_str(), v["seq"].as_u64(), v["data"]["i"].as_u64()), (Some("event"), Some(1), Some(0)), "{v}");
}
