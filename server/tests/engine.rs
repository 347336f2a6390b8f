//! The job engine against the real server: real processes in their own process groups,
//! the stage output protocol, controls over HTTP and the WebSocket, confirmation gates,
//! restarts, timeouts, the queue's concurrency, chat on stdin, and artifacts that can
//! never be read from outside a run's folder.

mod common;

use common::{http, start_server_with, Client, TestServer};
use serde_json::{json, Value};
use std::time::Duration;

async fn start_run(server: &TestServer, pipeline: Value) -> Value {
    let resp = http().post(server.http_url("/api/v1/workflows")).json(&json!({ "pipeline": pipeline })).send().await.unwrap();
    assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
    resp.json().await.unwrap()
}

async fn post(server: &TestServer, path: &str) -> reqwest::Response {
    http().post(server.http_url(path)).send().await.unwrap()
}

async fn snapshot(server: &TestServer, id: &str) -> Value {
    http().get(server.http_url(&format!("/api/v1/workflows/{id}"))).send().await.unwrap().json().await.unwrap()
}

/// Subscribes to the run's topic from seq 0 and collects events until `until` says stop.
async fn watch(server: &TestServer, id: &str, until: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut c = server.client().await;
    c.request(json!({"type":"subscribe","topic":format!("workflow:{id}"),"since":0}), "s").await;
    let mut events = Vec::new();
    loop {
        let ev = c.expect_type("event").await;
        let stop = until(&ev);
        events.push(ev);
        if stop {
            return events;
        }
    }
}

fn finished(state: &str) -> impl Fn(&Value) -> bool + '_ {
    move |ev| ev["event"] == "workflow_status" && ev["data"]["state"] == state
}

fn of<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).map(|e| &e["data"]).collect()
}

fn terminal(events: &[Value]) -> String {
    of(events, "terminal_output").iter().map(|d| d["output"].as_str().unwrap_or("")).collect()
}

async fn engine_server() -> TestServer {
    start_server_with(|c| {
        c.engine.cancel_grace_s = 1;
        c.engine.pipelines_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pipelines");
    })
    .await
}

#[tokio::test]
async fn a_run_reports_progress_metrics_artifacts_and_output() {
    let server = engine_server().await;
    let run = start_run(&server, json!({"name":"demo","stages":[
        {"id":"prepare","run":"echo hello; echo oops >&2; echo \"wf=$SWITCHBOARD_WORKFLOW_ID stage=$SWITCHBOARD_STAGE_ID\"; echo ::progress 0.5 half; echo ::notice prepared"},
        {"id":"train","run":"for s in 1 2 3; do echo ::metric loss=0.$((4 - s)) step=$s; done; printf 'PNG' > \"$SWITCHBOARD_ARTIFACTS/plot.png\"; echo ::artifact plot.png image; echo ::artifact ../../escape.txt"}
    ]})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    assert_eq!(run["stages"].as_array().unwrap().len(), 2);
    assert!(run["seq"].as_u64().is_some() && run["epoch"].as_str().is_some(), "snapshot carries its position");
    let events = watch(&server, &id, finished("completed")).await;

    let out = terminal(&events);
    assert!(out.contains("hello\n") && out.contains("oops\n"), "{out}");
    assert!(out.contains(&format!("wf={id} stage=prepare")), "{out}");
    assert!(!out.contains("::"), "protocol lines are not terminal output: {out}");
    let streams: Vec<&str> = of(&events, "terminal_output").iter().map(|d| d["stream"].as_str().unwrap()).collect();
    assert!(streams.contains(&"stderr") && streams.contains(&"stdout"));

    let progress = of(&events, "progress");
    assert!(progress.iter().any(|p| p["message"] == "half" && p["stage"] == "prepare"), "{progress:?}");
    let metrics = of(&events, "metric_scalar");
    assert_eq!(metrics.len(), 3);
    assert_eq!((metrics[2]["name"].clone(), metrics[2]["step"].clone()), (json!("loss"), json!(3)));
    let logs = of(&events, "log_line");
    assert!(logs.iter().any(|l| l["level"] == "notice" && l["message"] == "prepared"));
    assert!(logs.iter().any(|l| l["level"] == "warning" && l["message"].as_str().unwrap().contains("escape.txt")));
    let artifacts = of(&events, "artifact");
    assert_eq!(artifacts.len(), 1, "the escaping artifact is refused: {artifacts:?}");
    assert_eq!((artifacts[0]["name"].clone(), artifacts[0]["kind"].clone(), artifacts[0]["bytes"].clone()), (json!("plot.png"), json!("image"), json!(3)));
    let resp = http().get(server.http_url(artifacts[0]["url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.text().await.unwrap(), "PNG");

    let stages: Vec<&Value> = of(&events, "stage_status");
    assert!(stages.iter().any(|s| s["stage"]["id"] == "train" && s["stage"]["status"] == "completed" && s["exit_code"] == 0));
    let snap = snapshot(&server, &id).await;
    assert_eq!((snap["state"].clone(), snap["progress"].clone()), (json!("completed"), json!(1.0)));
    let list: Value = http().get(server.http_url("/api/v1/workflows")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["workflows"][0]["id"], id);
    server.stop().await;
}

#[tokio::test]
async fn bad_definitions_name_the_field() {
    let server = engine_server().await;
    for (pipeline, needle) in [
        (json!({"name":"d","stages":[{"id":"a","run":"x"},{"id":"a","run":"y"}]}), "stages[1].id"),
        (json!({"name":"d","stages":[{"id":"a","run":" "}]}), "stages[0].run"),
        (json!({"name":"d","stages":[{"id":"a","run":"x","colour":1}]}), "colour"),
        (json!({"name":"d","stages":[{"id":"a","run":"x","timeout_s":0}]}), "timeout_s"),
    ] {
        let resp = http().post(server.http_url("/api/v1/workflows")).json(&json!({"pipeline": pipeline})).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{body}");
    }
    let resp = http().post(server.http_url("/api/v1/workflows")).json(&json!({"pipeline": "no-such-pipeline"})).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(post(&server, "/api/v1/workflows/nope/pause").await.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn confirm_gate_over_the_websocket() {
    let server = engine_server().await;
    let run = start_run(&server, json!({"name":"gate","stages":[{"id":"check","run":"echo checked","confirm":true},{"id":"ship","run":"echo shipped"}]})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    watch(&server, &id, finished("waiting_confirmation")).await;
    let mut c = server.connect(&format!("/ws/workflow/{id}")).await;
    c.expect_type("hello").await;
    c.expect_type("subscribed").await;
    // on a workflow alias, workflow_id may be left out
    let ack = c.request(json!({"type":"confirm"}), "c1").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let events = watch(&server, &id, finished("completed")).await;
    assert!(terminal(&events).contains("shipped"));
    let err = c.request(json!({"type":"confirm"}), "c2").await;
    assert_eq!(err["code"], "conflict");
    let err = c.request(json!({"type":"confirm","workflow_id":"nope"}), "c3").await;
    assert_eq!(err["code"], "not_found");
    server.stop().await;
}

async fn wait_state(server: &TestServer, id: &str, state: &str) -> Value {
    for _ in 0..200 {
        let s = snapshot(server, id).await;
        if s["state"] == state {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("workflow {id} never reached {state}: {}", snapshot(server, id).await);
}

fn group_alive(pgid: i32) -> bool {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok()
}

#[tokio::test]
async fn pause_resume_and_cancel_signal_the_process_group() {
    let server = engine_server().await;
    let run = start_run(&server, json!({"name":"ticker","stages":[
        {"id":"tick","run":"echo pgid=$$; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.05; done"}
    ]})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    let events = watch(&server, &id, |ev| ev["event"] == "terminal_output" && ev["data"]["output"].as_str().unwrap().contains("tick 3")).await;
    let out = terminal(&events);
    let pgid: i32 = out.split("pgid=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(group_alive(pgid));

    assert_eq!(post(&server, &format!("/api/v1/workflows/{id}/pause")).await.status(), 200);
    wait_state(&server, &id, "paused").await;
    let seq_paused = snapshot(&server, &id).await["seq"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seq_later = snapshot(&server, &id).await["seq"].as_u64().unwrap();
    assert!(seq_later <= seq_paused + 1, "a stopped group prints nothing ({seq_paused} -> {seq_later})");
    assert_eq!(post(&server, &format!("/api/v1/workflows/{id}/pause")).await.status(), 409, "already paused");

    let mut c = server.client().await;
    let ack = c.request(json!({"type":"control","action":"resume","workflow_id":id}), "r").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    wait_state(&server, &id, "running").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(snapshot(&server, &id).await["seq"].as_u64().unwrap() > seq_later + 1, "output resumed");

    let ack = c.request(json!({"type":"command","command":"cancel_run","workflow_id":id}), "x").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let snap = wait_state(&server, &id, "cancelled").await;
    assert_eq!(snap["stages"][0]["status"], "cancelled");
    for _ in 0..40 {
        if !group_alive(pgid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!group_alive(pgid), "the whole group is gone");
    server.stop().await;
}

#[tokio::test]
async fn cancel_escalates_to_sigkill_after_the_grace_period() {
    let server = engine_server().await;
    let run = start_run(&server, json!({"name":"stubborn","stages":[
        {"id":"s","run":"trap '' TERM; echo ready; while true; do sleep 0.05; done"}
    ]})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    watch(&server, &id, |ev| ev["event"] == "terminal_output").await;
    let started = std::time::Instant::now();
    assert_eq!(post(&server, &format!("/api/v1/workflows/{id}/cancel")).await.status(), 200);
    wait_state(&server, &id, "cancelled").await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "SIGTERM was ignored, so it took the grace period: {took:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_failed_stage_shows_its_error_and_restart_reruns_it() {
    let server = engine_server().await;
    let run = start_run(&server, json!({"name":"flaky","stages":[
        {"id":"first","run":"echo one"},
        {"id":"second","run":"if [ -f marker ]; then echo fixed; else touch marker; echo broken >&2; exit 3; fi"},
        {"id":"third","run":"echo three"}
    ]})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    let snap = wait_state(&server, &id, "failed").await;
    assert_eq!(snap["stages"][1]["status"], "failed");
    assert_eq!(snap["stages"][1]["exit_code"], 3);
    assert!(snap["stages"][1]["error"].as_str().unwrap().contains("code 3"));
    assert_eq!(snap["stages"][2]["status"], "skipped");

    let mut c = server.client().await;
    let err = c.request(json!({"type":"command","command":"restart_stage","args":{},"workflow_id":id}), "e").await;
    assert_eq!(err["code"], "bad_request");
    let err = c.request(json!({"type":"command","command":"restart_stage","args":{"stage_id":"nine"},"workflow_id":id}), "e").await;
    assert_eq!(err["code"], "not_found");
    let ack = c.request(json!({"type":"command","command":"restart_stage","args":{"stage_id":"second"},"workflow_id":id}), "r").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let snap = wait_state(&server, &id, "completed").await;
    assert_eq!(snap["stages"][0]["status"], "completed");
    assert_eq!(snap["stages"][1]["status"], "completed");
    assert_eq!(snap["stages"][2]["status"], "completed");
    server.stop().await;
}

#[tokio::test]
async fn timeouts_fail_the_stage() {
    let server = engine_server().await;
    let run = start_run(&server, json!({"name":"slow","stages":[{"id":"nap","run":"sleep 30","timeout_s":1}]})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    let snap = wait_state(&server, &id, "failed").await;
    assert!(snap["stages"][0]["error"].as_str().unwrap().contains("timed out after 1 s"), "{snap}");
    server.stop().await;
}

#[tokio::test]
async fn the_queue_runs_at_most_the_concurrency_limit() {
    let server = start_server_with(|c| c.engine.concurrency = 1).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let run = start_run(&server, json!({"name":"q","stages":[{"id":"s","run":"sleep 0.4"}]})).await;
        ids.push(run["id"].as_str().unwrap().to_owned());
    }
    wait_state(&server, &ids[0], "running").await;
    assert_eq!(snapshot(&server, &ids[1]).await["state"], "pending");
    assert_eq!(snapshot(&server, &ids[2]).await["state"], "pending");
    // cancelling a queued run never starts it
    assert_eq!(post(&server, &format!("/api/v1/workflows/{}/cancel", ids[2])).await.status(), 200);
    wait_state(&server, &ids[2], "cancelled").await;
    wait_state(&server, &ids[1], "completed").await;
    let first = snapshot(&server, &ids[0]).await;
    let second = snapshot(&server, &ids[1]).await;
    assert!(second["started_at"].as_i64().unwrap() >= first["finished_at"].as_i64().unwrap(), "one at a time, in order");
    assert!(snapshot(&server, &ids[2]).await["started_at"].is_null());
    server.stop().await;
}

#[tokio::test]
async fn chat_is_broadcast_and_reaches_a_chat_stage_on_stdin() {
    let server = engine_server().await;
    let run = start_run(&server, json!({"name":"chatty","stages":[{"id":"bot","stdin":"chat","run":"read line; echo \"heard $line\""}]})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    wait_state(&server, &id, "running").await;
    let mut c = server.connect("/ws?user_id=alice").await;
    c.expect_type("hello").await;
    c.expect_type("subscribed").await;
    let ack = c.request(json!({"type":"chat","workflow_id":id,"text":"ship it"}), "m").await;
    assert_eq!(ack["type"], "ack");
    let events = watch(&server, &id, finished("completed")).await;
    let chat = of(&events, "chat");
    assert_eq!((chat[0]["from"].clone(), chat[0]["text"].clone()), (json!("alice"), json!("ship it")));
    assert!(terminal(&events).contains(r#"heard {"text":"ship it","type":"chat"}"#), "{}", terminal(&events));
    let resp = http().post(server.http_url(&format!("/api/v1/workflows/{id}/chat"))).json(&json!({"text":""})).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn artifact_paths_never_leave_the_run_folder() {
    let server = engine_server().await;
    let run = start_run(&server, json!({"name":"files","stages":[{"id":"a","run":
        "echo ok > \"$SWITCHBOARD_ARTIFACTS/fine.txt\"; mkdir -p \"$SWITCHBOARD_ARTIFACTS/sub\"; echo deep > \"$SWITCHBOARD_ARTIFACTS/sub/x.txt\"; ln -s /etc/passwd \"$SWITCHBOARD_ARTIFACTS/leak\"; echo secret > secret.txt"}]})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    wait_state(&server, &id, "completed").await;
    let base = format!("/api/v1/workflows/{id}/artifacts");
    let url = |path: &str| server.http_url(path);
    let get = |path: String| {
        let full = url(&path);
        async move { http().get(full).send().await.unwrap() }
    };
    let ok = get(format!("{base}/fine.txt")).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(get(format!("{base}/sub/x.txt")).await.text().await.unwrap(), "deep\n");
    for (path, status) in [
        (format!("{base}/..%2fsecret.txt"), 400),
        (format!("{base}/sub%2F..%2F..%2Fsecret.txt"), 400),
        (format!("{base}//etc/passwd"), 400),
        (format!("{base}/leak"), 403),
        (format!("{base}/missing.txt"), 404),
        ("/api/v1/workflows/nope/artifacts/fine.txt".to_string(), 404),
    ] {
        let resp = get(path.clone()).await;
        assert_eq!(resp.status(), status, "{path}");
        let body = resp.text().await.unwrap();
        assert!(!body.contains("root:") && !body.contains("secret"), "{path} leaked: {body}");
    }
    // paths an HTTP client library would normalise away, sent as they are
    for path in [format!("{base}/%2e%2e/secret.txt"), format!("{base}/../secret.txt"), format!("{base}/sub/../../secret.txt")] {
        let (status, body) = raw_get(&server, &path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(!body.contains("secret\n"), "{path} leaked: {body}");
    }
    server.stop().await;
}

/// A GET with the path exactly as given: (status, body).
async fn raw_get(server: &TestServer, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.addr).as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

#[tokio::test]
async fn agents_pipelines_and_queue_figures() {
    let server = engine_server().await;
    let agents: Value = http().get(server.http_url("/api/v1/agents")).send().await.unwrap().json().await.unwrap();
    assert_eq!(agents["agents"][0]["agent_name"], "local");
    assert_eq!(agents["agents"][0]["status"], "idle");
    let pipelines: Value = http().get(server.http_url("/api/v1/pipelines")).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = pipelines["pipelines"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"training-demo") && names.contains(&"render-demo"), "{names:?}");

    let mut agent = server.connect("/ws/agent/local").await;
    agent.expect_type("hello").await;
    agent.expect_type("subscribed").await;
    let run = start_run(&server, json!({"name":"busy","stages":[{"id":"s","run":"sleep 0.5"}]})).await;
    let busy = agent.expect_type("event").await;
    assert_eq!((busy["event"].clone(), busy["data"]["status"].clone()), (json!("agent_status"), json!("busy")));
    let idle = agent.expect_type("event").await;
    assert_eq!(idle["data"]["status"], "idle");
    assert_eq!(idle["data"]["metrics"]["message_count"], 1);
    wait_state(&server, run["id"].as_str().unwrap(), "completed").await;
    server.stop().await;
}

#[tokio::test]
async fn the_coordinator_hears_every_state_change() {
    let server = engine_server().await;
    let mut c: Client = server.connect("/ws/coordinator").await;
    c.expect_type("hello").await;
    c.expect_type("subscribed").await;
    let run = start_run(&server, json!({"name":"coord","stages":[{"id":"s","run":"true"}]})).await;
    let mut states = Vec::new();
    while states.last() != Some(&json!("completed")) {
        let ev = c.expect_type("event").await;
        if ev["event"] == "workflow_status" {
            assert_eq!(ev["data"]["id"], run["id"]);
            assert_eq!(ev["data"]["name"], "coord");
            states.push(ev["data"]["state"].clone());
        }
    }
    assert_eq!(states.first(), Some(&json!("pending")));
    server.stop().await;
}

#[tokio::test]
async fn the_shipped_demos_run_on_a_fresh_machine() {
    let server = engine_server().await;
    let training = start_run(&server, json!("training-demo")).await;
    let render = start_run(&server, json!("render-demo")).await;
    let (tid, rid) = (training["id"].as_str().unwrap().to_owned(), render["id"].as_str().unwrap().to_owned());

    let events = watch(&server, &rid, finished("completed")).await;
    let frames: Vec<&Value> = of(&events, "artifact").into_iter().filter(|a| a["kind"] == "image").collect();
    assert_eq!(frames.len(), 12);
    let resp = http().get(server.http_url(frames[0]["url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert!(resp.bytes().await.unwrap().starts_with(b"\x89PNG\r\n\x1a\n"), "a real PNG");

    wait_state(&server, &tid, "waiting_confirmation").await;
    assert_eq!(post(&server, &format!("/api/v1/workflows/{tid}/confirm")).await.status(), 200);
    let events = watch(&server, &tid, finished("completed")).await;
    let loss: Vec<&Value> = of(&events, "metric_scalar").into_iter().filter(|m| m["name"] == "loss").collect();
    assert_eq!(loss.len(), 8);
    assert!(loss[7]["value"].as_f64() < loss[0]["value"].as_f64(), "the loss goes down");
    assert!(terminal(&events).contains("\u{1b}[1mepoch 1/8"), "ANSI colours pass through");
    let export = of(&events, "artifact");
    assert_eq!((export[0]["name"].clone(), export[0]["kind"].clone()), (json!("model.bin"), json!("export")));
    server.stop().await;
}

/// The dashboard reads these bodies with the shared types of `app::protocol`: any
/// drift between what the server sends and what the page expects fails here.
#[tokio::test]
async fn http_bodies_are_the_shared_types_and_runs_notify() {
    use app::protocol::{AgentList, HistoryPage, PipelineList, WorkflowList, WorkflowSnapshot};
    let server = engine_server().await;
    let run = start_run(&server, json!({"name":"typed","stages":[{"id":"a","run":"echo ::progress 0.5; echo hi"},{"id":"b","confirm":true,"run":"true"}]})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    let snap: WorkflowSnapshot = serde_json::from_value(run).unwrap();
    assert_eq!((snap.stages.len(), snap.stages[1].confirm), (2, true));
    wait_state(&server, &id, "waiting_confirmation").await;
    let get = |path: &str| http().get(server.http_url(path)).send();
    let list: WorkflowList = get("/api/v1/workflows").await.unwrap().json().await.unwrap();
    assert_eq!(list.workflows[0].id, id);
    assert!(list.seq > 0, "the list carries the coordinator's seq");
    let _: PipelineList = get("/api/v1/pipelines").await.unwrap().json().await.unwrap();
    let agents: AgentList = get("/api/v1/agents").await.unwrap().json().await.unwrap();
    assert_eq!(agents.coordinator.total_workflows, 1);
    let history: HistoryPage = get(&format!("/api/v1/topics/workflow:{id}/history")).await.unwrap().json().await.unwrap();
    let waiting = history.events.iter().find(|e| e.event == "notification").expect("a notification at the gate");
    let waiting: app::protocol::Notification = waiting.payload().unwrap();
    assert_eq!(waiting.priority, "high");
    assert!(waiting.title.contains("waiting"));
    assert_eq!(post(&server, &format!("/api/v1/workflows/{id}/confirm")).await.status(), 200);
    let events = watch(&server, &id, |ev| ev["event"] == "notification" && ev["data"]["title"] == "typed completed").await;
    let done = of(&events, "notification").into_iter().find(|n| n["title"] == "typed completed");
    assert!(done.is_some_and(|n| n["message"].as_str().unwrap().contains("2 stages in")), "{events:?}");
    server.stop().await;
}
