//! The core promise (PROTOCOL.md section 3): with several publishers at once and
//! subscribers that come and go resuming with `since`, every subscriber sees each seq
//! exactly once, in order. And a subscriber that stops reading is closed with 1013
//! while the others keep receiving everything.

mod common;

use common::{start_server_with, Client, Closed};
use serde_json::{json, Value};
use std::time::Duration;

const PUBLISHERS: usize = 4;
const PER_PUBLISHER: usize = 500;
const TOTAL: u64 = (PUBLISHERS * PER_PUBLISHER) as u64;

async fn publisher(url: String, who: usize) {
    let mut c = Client::connect(&url).await;
    c.expect_type("hello").await;
    for i in 0..PER_PUBLISHER {
        c.send_json(json!({"type":"publish","topic":"race","event":"n","data":{"who":who,"i":i}})).await;
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // an acked message after all the rest: everything before it was handled
    c.request(json!({"type":"ping"}), "done").await;
}

/// Connects, reads a while, drops the connection, comes back with `since`; repeats
/// until it has seen the last seq. Returns every seq it saw, in arrival order.
async fn wandering_subscriber(url: String, stay: usize) -> Vec<u64> {
    let mut seen: Vec<u64> = Vec::new();
    let mut epoch: Option<Value> = None;
    loop {
        let mut c = Client::connect(&url).await;
        c.expect_type("hello").await;
        let mut sub = json!({"type":"subscribe","topic":"race"});
        if let Some(last) = seen.last() {
            sub["since"] = json!(last);
            sub["epoch"] = epoch.clone().unwrap();
        }
        let reply = c.request(sub, "s").await;
        assert_eq!(reply["recovered"], true, "history is large enough to always recover");
        epoch = Some(reply["epoch"].clone());
        for _ in 0..stay {
            match c.next_within(Duration::from_secs(10)).await {
                Some(Ok(v)) if v["type"] == "event" => {
                    seen.push(v["seq"].as_u64().unwrap());
                    if seen.last() == Some(&TOTAL) {
                        return seen;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_subscriber_sees_every_seq_once_in_order() {
    let server = start_server_with(|c| {
        c.hub.history_events = 10_000;
        c.hub.publish_rate_per_s = 1_000_000;
    })
    .await;
    let url = server.ws_url("/ws");
    let subscribers: Vec<_> =
        [37, 101, 250, 999, 5000].into_iter().map(|stay| tokio::spawn(wandering_subscriber(url.clone(), stay))).collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let publishers: Vec<_> = (0..PUBLISHERS).map(|who| tokio::spawn(publisher(url.clone(), who))).collect();
    for p in publishers {
        p.await.unwrap();
    }
    for s in subscribers {
        let seen = tokio::time::timeout(Duration::from_secs(60), s).await.expect("in time").unwrap();
        let first = seen[0];
        let expected: Vec<u64> = (first..=TOTAL).collect();
        assert_eq!(seen, expected, "gapless, no duplicates, in order");
    }
    // each publisher's own events arrive in the order it sent them
    let page: Value = common::http()
        .get(server.http_url("/api/v1/topics/race/history?limit=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut next = [0u64; PUBLISHERS];
    for ev in page["events"].as_array().unwrap() {
        let who = ev["data"]["who"].as_u64().unwrap() as usize;
        assert_eq!(ev["data"]["i"].as_u64().unwrap(), next[who]);
        next[who] += 1;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_closed_with_1013_and_the_others_get_everything() {
    const EVENTS: u64 = 3_000;
    let server = start_server_with(|c| {
        c.hub.outbound_queue = 64;
        c.hub.publish_rate_per_s = 1_000_000;
    })
    .await;
    let mut slow = server.client().await;
    slow.request(json!({"type":"subscribe","topic":"firehose"}), "s").await;
    let mut fast = Vec::new();
    for _ in 0..3 {
        let mut c = server.client().await;
        c.request(json!({"type":"subscribe","topic":"firehose"}), "s").await;
        fast.push(c);
    }
    let readers: Vec<_> = fast
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut last = 0;
                while last < EVENTS {
                    let v = c.expect_type("event").await;
                    let seq = v["seq"].as_u64().unwrap();
                    assert_eq!(seq, last + 1);
                    last = seq;
                }
            })
        })
        .collect();
    // 16 KiB events: far more than the slow client's socket buffers can hide
    let payload = "x".repeat(16 * 1024);
    let mut producer = server.client().await;
    for _ in 0..EVENTS {
        producer.send_json(json!({"type":"publish","topic":"firehose","event":"blob","data":payload})).await;
    }
    producer.request(json!({"type":"ping"}), "done").await;
    // the slow one: whatever was buffered, then 1013, and never a skipped seq
    let mut last = 0;
    let code = loop {
        match slow.next().await {
            Ok(v) => {
                if v["type"] == "event" {
                    let seq = v["seq"].as_u64().unwrap();
                    assert_eq!(seq, last + 1, "no gap before the close");
                    last = seq;
                }
            }
            Err(Closed::Code(code, _)) => break code,
            Err(Closed::NoFrame) => break 0,
        }
    };
    assert!(last < EVENTS, "the slow client could not have kept up");
    // 0: the socket was dropped before the close frame could be written (it never read)
    assert!(code == 1013 || code == 0, "closed as a slow consumer, got {code}");
    for r in readers {
        tokio::time::timeout(Duration::from_secs(60), r).await.expect("fast readers finish").unwrap();
    }
    let text = common::http().get(server.http_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("switchboard_slow_consumer_closes_total 1"), "{text}");
    server.stop().await;
}

/// Connects to a run's topic, reads a while, drops the connection, comes back with
/// `since`; until the run's last event. Returns every seq seen, in arrival order.
async fn wandering_on(url: String, topic: String, stay: usize, last: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Vec<u64> {
    use std::sync::atomic::Ordering;
    let mut seen: Vec<u64> = Vec::new();
    let mut epoch: Option<Value> = None;
    loop {
        let mut c = Client::connect(&url).await;
        c.expect_type("hello").await;
        let mut sub = json!({"type":"subscribe","topic":topic});
        if let Some(s) = seen.last() {
            sub["since"] = json!(s);
            sub["epoch"] = epoch.clone().unwrap();
        }
        let reply = c.request(sub, "s").await;
        assert_eq!(reply["recovered"], true, "a run's topic is durable: always recovered ({reply})");
        epoch = Some(reply["epoch"].clone());
        for _ in 0..stay {
            let done = last.load(Ordering::Acquire);
            if done > 0 && seen.last() == Some(&done) {
                return seen;
            }
            match c.next_within(Duration::from_secs(2)).await {
                Some(Ok(v)) if v["type"] == "event" => seen.push(v["seq"].as_u64().unwrap()),
                Some(other) => panic!("unexpected {other:?}"),
                None => {} // quiet for a moment: check whether the run is over
            }
        }
        c.close().await;
    }
}

/// A run's topic keeps only a small window in memory (here 50 events): subscribers that
/// come and go while the run publishes resume from before, at and after the window's
/// edge (from the database, then memory), each seq once, in order; and once the run is
/// over, resuming exactly at, before and after the edge replays exactly what follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resumes_across_a_durable_windows_edge_see_every_seq_once_in_order() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let server = start_server_with(|c| c.hub.durable_window_events = 50).await;
    let script = "for i in $(seq 1 3000); do echo \"::metric v=$i step=$i\"; if [ $((i % 200)) = 0 ]; then sleep 0.05; fi; done";
    let run: Value = common::http()
        .post(server.http_url("/api/v1/workflows"))
        .json(&json!({"pipeline":{"name":"many","stages":[{"id":"emit","run":script}]}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = run["id"].as_str().unwrap().to_owned();
    let topic = format!("workflow:{id}");
    let last = std::sync::Arc::new(AtomicU64::new(0));
    let url = server.ws_url("/ws");
    let subscribers: Vec<_> =
        [13, 37, 101, 250].into_iter().map(|stay| tokio::spawn(wandering_on(url.clone(), topic.clone(), stay, last.clone()))).collect();
    let final_seq = loop {
        let s: Value = common::http().get(server.http_url(&format!("/api/v1/workflows/{id}"))).send().await.unwrap().json().await.unwrap();
        if s["state"] == "completed" {
            // the run's last events (its end, a notification) follow the state: settle
            tokio::time::sleep(Duration::from_millis(300)).await;
            let s: Value = common::http().get(server.http_url(&format!("/api/v1/workflows/{id}"))).send().await.unwrap().json().await.unwrap();
            break s["seq"].as_u64().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(final_seq > 3000, "{final_seq}");
    last.store(final_seq, Ordering::Release);
    for s in subscribers {
        let seen = tokio::time::timeout(Duration::from_secs(60), s).await.expect("in time").unwrap();
        assert_eq!(seen, (seen[0]..=final_seq).collect::<Vec<u64>>(), "gapless, no duplicates, in order");
    }
    let edge = final_seq - 50;
    for since in [0, edge - 100, edge - 1, edge, edge + 1, final_seq - 10, final_seq] {
        let mut c = Client::connect(&url).await;
        c.expect_type("hello").await;
        let reply = c.request(json!({"type":"subscribe","topic":topic,"since":since}), "r").await;
        assert_eq!((reply["recovered"].clone(), reply["seq"].clone()), (json!(true), json!(final_seq)), "since {since}");
        for expected in since + 1..=final_seq {
            let ev = c.expect_type("event").await;
            assert_eq!(ev["seq"], expected, "since {since}");
        }
        assert!(c.next_within(Duration::from_millis(100)).await.is_none(), "nothing more, since {since}");
    }
    server.stop().await;
}
