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

use common::http;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A real `switchboard agent` process; killed (SIGKILL) on drop.
pub struct AgentProcess {
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
    _work: common::tempdir::TempDir,
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AgentProcess {
    /// SIGKILL, now: it says nothing to the server.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

/// Starts `switchboard agent --server base --name name` with `extra` arguments and the
/// token (if any) in `SWITCHBOARD_TOKEN`.
pub fn start_agent(base: &str, name: &str, extra: &[&str], token: Option<&str>) -> AgentProcess {
    use std::io::{BufRead, BufReader};
    let work = common::tempdir::TempDir::new();
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("SWITCHBOARD_") {
            command.env_remove(var);
        }
    }
    if let Some(t) = token {
        command.env("SWITCHBOARD_TOKEN", t);
    }
    let mut child = command
        .args(["agent", "--server", base, "--name", name, "--metrics-interval-ms", "200", "--work-dir"])
        .arg(work.path())
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn switchboard agent");
    let stderr = child.stderr.take().expect("piped stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line);
        }
    });
    AgentProcess { child, log, _work: work }
}

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

/// Asserts the terminal holds exactly `line 1` .. `line n`, each once and in order.
pub fn assert_lines_once_in_order(text: &str, n: usize) {
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("line ")).collect();
    let expected: Vec<String> = (1..=n).map(|i| format!("line {i}")).collect();
    if lines != expected {
        let dup = lines.len().saturating_sub(n);
        let first_bad = lines.iter().zip(&expected).position(|(a, b)| a != b);
        panic!("{} lines (expected {n}, {dup} extra); first out of place at {first_bad:?}", lines.len());
    }
}

/// A stage that prints `line 1` .. `line n`, one every `ms` milliseconds.
pub fn counting(n: usize, ms: u32) -> String {
    format!("i=1; while [ $i -le {n} ]; do echo \"line $i\"; i=$((i+1)); sleep {}; done", ms as f64 / 1000.0)
}
