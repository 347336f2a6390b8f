//! Watching a topic over WebSocket as a user's client does: subscribe (or resume),
//! then read its events until one says it is done or the server closes.
#![allow(dead_code)]

use super::common::{self, Binary, Client};
use serde_json::{json, Value};

/// A client of node `b` watching `topic` from its start, or resuming after `since`.
pub async fn watch(b: &Binary, topic: &str, since: Option<(u64, &str)>) -> (Client, Value) {
    let mut c = Client::connect(&format!("ws://{}/ws", b.addr)).await;
    c.expect_type("hello").await;
    let reply = subscribe(&mut c, topic, since, Some(0)).await;
    (c, reply)
}

/// Subscribes `c` to `topic`, resuming after `since` (seq, epoch) when given, else
/// from seq `first` (None: live only); the reply, asserted to be `subscribed`.
pub async fn subscribe(c: &mut Client, topic: &str, since: Option<(u64, &str)>, first: Option<u64>) -> Value {
    let mut msg = json!({"type": "subscribe", "topic": topic});
    if let Some(first) = first {
        msg["since"] = json!(first);
    }
    if let Some((seq, epoch)) = since {
        msg["since"] = json!(seq);
        msg["epoch"] = json!(epoch);
    }
    let reply = c.request(msg, "s").await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    reply
}

/// Events of `topic` until one satisfies `last` or the connection closes: (events, close code).
pub async fn read_until(c: &mut Client, topic: &str, last: impl Fn(&Value) -> bool) -> (Vec<Value>, Option<u16>) {
    let mut events = Vec::new();
    loop {
        match c.next().await {
            Ok(v) if v["type"] == "event" && v["topic"] == topic => {
                let done = last(&v);
                events.push(v);
                if done {
                    return (events, None);
                }
            }
            Ok(_) => {}
            Err(common::Closed::Code(code, _)) => return (events, Some(code)),
            Err(e) => panic!("the connection ended without a close frame: {e:?}"),
        }
    }
}

/// Reads `c`'s events of run `id` (watched on node `b`) until one satisfies `last`,
/// expecting the run to move to another node on the way: the watcher is closed with
/// 1012, resumes on `b` in the same epoch (`recovered: true`) and needs no second
/// resume. Every event it got, in order.
pub async fn across_a_move(b: &Binary, id: &str, mut c: Client, last: impl Fn(&Value) -> bool) -> Vec<Value> {
    let topic = format!("workflow:{id}");
    let (mut events, closed) = read_until(&mut c, &topic, &last).await;
    assert_eq!(closed, Some(1012), "the watcher is told to resume once the run moved");
    let seq = events.last().map_or(0, |e| e["seq"].as_u64().expect("seq"));
    let position: Value = common::http().get(format!("http://{}/api/v1/workflows/{id}", b.addr)).send().await.expect("GET").json().await.expect("JSON");
    let epoch = position["epoch"].as_str().expect("epoch").to_owned();
    let (mut again, reply) = watch(b, &topic, Some((seq, &epoch))).await;
    assert_eq!(reply["recovered"], true, "the same epoch: nothing to start over: {reply}");
    let (rest, closed) = read_until(&mut again, &topic, last).await;
    assert_eq!(closed, None, "one resume is enough");
    events.extend(rest);
    events
}

pub fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().filter_map(|e| e["seq"].as_u64()).collect()
}
