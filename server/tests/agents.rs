//! Agents against the real server and real `switchboard agent` processes: stages routed
//! by capability (`routing`); an agent SIGKILLed mid-stage, a cut socket, a server
//! restart under a running stage (`faults`); an external run driven by a plain HTTP
//! client and a WebSocket executor in the test (`external`); and every door tried with
//! bad input and someone else's token (`doors`).

mod common;

#[path = "agents/doors.rs"]
mod doors;
#[path = "agents/external.rs"]
mod external;
#[path = "agents/faults.rs"]
mod faults;
#[path = "agents/proxy.rs"]
mod proxy;
#[path = "agents/routing.rs"]
mod routing;
#[path = "agents/process.rs"]
mod process;

pub use process::{assert_lines_once_in_order, counting, start_agent, AgentProcess};

use common::http;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = http().get(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = http().post(format!("{base}{path}")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("POST");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Starts a run of `pipeline` (a definition); its id.
pub async fn start_run(base: &str, token: Option<&str>, pipeline: Value) -> String {
    let (status, body) = post(base, "/api/v1/workflows", token, json!({ "pipeline": pipeline })).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("an id").to_owned()
}

/// Polls until `ready` holds of the answer to `GET path` (or panics after `limit`).
pub async fn poll(base: &str, path: &str, token: Option<&str>, limit: Duration, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (_, body) = get(base, path, token).await;
        if ready(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "GET {path} never became ready; last: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for run `id` to reach `state`.
pub async fn wait_state(base: &str, id: &str, state: &str, token: Option<&str>, limit: Duration) -> Value {
    poll(base, &format!("/api/v1/workflows/{id}"), token, limit, |s| s["state"] == state).await
}

/// Waits until agent `name` is listed with `status`.
pub async fn wait_agent(base: &str, name: &str, status: &str, token: Option<&str>) -> Value {
    let body = poll(base, "/api/v1/agents", token, Duration::from_secs(20), |b| {
        b["agents"].as_array().is_some_and(|a| a.iter().any(|x| x["agent_name"] == name && x["status"] == status))
    })
    .await;
    body["agents"].as_array().unwrap().iter().find(|x| x["agent_name"] == name).unwrap().clone()
}

/// The run's whole terminal text, from its topic's history.
pub async fn terminal_text(base: &str, id: &str, token: Option<&str>) -> String {
    let mut text = String::new();
    let mut since = 0;
    loop {
        let (status, page) = get(base, &format!("/api/v1/topics/workflow:{id}/history?since={since}&limit=1000"), token).await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().cloned().unwrap_or_default();
        for e in &events {
            if e["event"] == "terminal_output" {
                text.push_str(e["data"]["output"].as_str().unwrap_or(""));
            }
            since = since.max(e["seq"].as_u64().unwrap_or(0));
        }
        if events.len() < 1000 {
            return text;
        }
    }
}

/// The run's events named `name`, from its topic's history.
pub async fn events_named(base: &str, id: &str, name: &str, token: Option<&str>) -> Vec<Value> {
    let (_, page) = get(base, &format!("/api/v1/topics/workflow:{id}/history?since=0&limit=1000"), token).await;
    page["events"].as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["event"] == name).map(|e| e["data"].clone()).collect()
}
