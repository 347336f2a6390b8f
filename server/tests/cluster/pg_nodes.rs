//! Nodes of a cluster on one PostgreSQL, as the tests start and query them.
#![allow(dead_code)]

use super::common::{self, http, Binary};
use serde_json::{json, Value};
use std::time::Duration;

/// A node on `url` that runs two runs at once.
pub fn node(data: &std::path::Path, url: &str, extra: &[&str]) -> Binary {
    node_running(data, url, 2, extra)
}

/// A node on `url` that runs `concurrency` runs at once.
pub fn node_running(data: &std::path::Path, url: &str, concurrency: u32, extra: &[&str]) -> Binary {
    let concurrency = concurrency.to_string();
    let mut args = vec!["--concurrency", concurrency.as_str(), "--database", url];
    args.extend_from_slice(extra);
    common::start_binary(data, &args)
}

pub async fn api(b: &Binary, method: &str, path: &str, body: Option<Value>) -> Value {
    let url = format!("http://{}{}", b.addr, path);
    let req = match method {
        "POST" => http().post(url).json(&body.unwrap_or(json!({}))),
        _ => http().get(url),
    };
    req.send().await.expect("HTTP").json().await.expect("JSON body")
}

pub async fn start_run(b: &Binary, pipeline: Value) -> String {
    let r = api(b, "POST", "/api/v1/workflows", Some(json!({ "pipeline": pipeline }))).await;
    r["id"].as_str().unwrap_or_else(|| panic!("no run id: {r}")).to_owned()
}

pub async fn wait_for(b: &Binary, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..400 {
        let s = api(b, "GET", &format!("/api/v1/workflows/{id}"), None).await;
        if check(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log: Vec<String> = b.log.lock().map(|l| l.iter().rev().take(30).rev().cloned().collect()).unwrap_or_default();
    panic!("run {id} never {what}: {}\nthe node's last log lines:\n{}", api(b, "GET", &format!("/api/v1/workflows/{id}"), None).await, log.join("\n"));
}

pub fn sigkill(b: &mut Binary) {
    b.child.kill().expect("SIGKILL");
    b.child.wait().expect("reaped");
}

pub async fn post_status(b: &Binary, path: &str) -> (u16, Value) {
    let resp = http().post(format!("http://{}{}", b.addr, path)).json(&json!({})).send().await.expect("HTTP");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

pub async fn history(b: &Binary, id: &str) -> Vec<Value> {
    let h = api(b, "GET", &format!("/api/v1/topics/workflow:{id}/history?limit=1000"), None).await;
    h["events"].as_array().unwrap_or_else(|| panic!("no events: {h}")).clone()
}

pub fn assert_once_in_order(events: &[Value]) {
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, gapless from 1");
}
