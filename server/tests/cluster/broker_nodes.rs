//! Nodes of one test's cluster on its Redis, and their subscribers.
#![allow(dead_code)]

use super::common::{start_server_with, Client, TestServer};
use super::redis_server::RedisServer;
use serde_json::Value;

/// A node on `redis`, its keys under `prefix` (one prefix per test's cluster).
pub async fn node(redis: &RedisServer, prefix: &str) -> TestServer {
    let url = redis.url();
    let prefix = prefix.to_owned();
    start_server_with(move |c| {
        c.broker.broker = Some(url);
        c.broker.broker_prefix = prefix;
    })
    .await
}

/// A client of `node` subscribed to `topic` (resuming after `since` when given), and
/// the `subscribed` reply.
pub async fn subscribe(node: &TestServer, topic: &str, since: Option<(u64, &str)>) -> (Client, Value) {
    let mut c = node.client().await;
    let reply = super::watch::subscribe(&mut c, topic, since, None).await;
    (c, reply)
}
