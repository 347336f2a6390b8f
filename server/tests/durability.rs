//! Nothing a user started is lost on restart: the real binary is killed with SIGKILL
//! mid-run and started again on the same data folder. The running stage is failed with
//! `server restarted` and can be restarted, a queued run runs, a finished run is as it
//! was, and every run's events replay from seq 1 with the seq continuing. After a crash
//! each run's topic gets a new epoch (the last events clients saw may not have reached
//! the disk); after a clean shutdown it keeps its epoch.

mod common;

use common::{http, Binary};
use serde_json::{json, Value};
use std::time::Duration;

fn start(data: &std::path::Path) -> Binary {
    common::start_binary(data, &["--concurrency", "1"])
}

async fn api(b: &Binary, method: &str, path: &str, body: Option<Value>) -> Value {
    let url = format!("http://{}{}", b.addr, path);
    let req = match method {
        "POST" => http().post(url).json(&body.unwrap_or(json!({}))),
        _ => http().get(url),
    };
    req.send().await.unwrap().json().await.unwrap()
}

async fn wait_for(b: &Binary, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let s = api(b, "GET", &format!("/api/v1/workflows/{id}"), None).await;
        if check(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("workflow {id} never got there: {}", api(b, "GET", &format!("/api/v1/workflows/{id}"), None).await);
}

#[tokio::test]
async fn sigkill_mid_run_loses_nothing() {
    let data = common::tempdir::TempDir::new();
    let b = start(data.path());
    let done = api(&b, "POST", "/api/v1/workflows", Some(json!({"pipeline":{"name":"quick","stages":[{"id":"a","run":"echo finished-before"}]}}))).await;
    let done_id = done["id"].as_str().unwrap().to_owned();
    wait_for(&b, &done_id, |s| s["state"] == "completed").await;
    let long = api(&b, "POST", "/api/v1/workflows", Some(json!({"pipeline":{"name":"long","stages":[
        {"id":"count","run":"if [ -f ok ]; then echo recovered; exit 0; fi; touch ok; i=0; while true; do i=$((i+1)); echo line $i; sleep 0.05; done"},
        {"id":"after","run":"echo after"}
    ]}}))).await;
    let long_id = long["id"].as_str().unwrap().to_owned();
    let queued = api(&b, "POST", "/api/v1/workflows", Some(json!({"pipeline":{"name":"queued","stages":[{"id":"q","run":"echo queued-ran"}]}}))).await;
    let queued_id = queued["id"].as_str().unwrap().to_owned();
    wait_for(&b, &long_id, |s| s["seq"].as_u64().unwrap_or(0) >= 8).await;
    assert_eq!(api(&b, "GET", &format!("/api/v1/workflows/{queued_id}"), None).await["state"], "pending");
    let before: Value = api(&b, "GET", &format!("/api/v1/topics/workflow:{long_id}/history?limit=1000"), None).await;
    // let the writer catch up with what the clients saw, then die without warning
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_seq = before["seq"].as_u64().unwrap();
    let mut b = b;
    b.child.kill().unwrap();
    b.child.wait().unwrap();

    let b = start(data.path());
    let snap = wait_for(&b, &long_id, |s| s["state"] == "failed").await;
    assert_eq!(snap["stages"][0]["status"], "failed");
    assert_eq!(snap["stages"][0]["error"], "server restarted");
    assert_eq!(snap["stages"][1]["status"], "skipped");
    assert_ne!(snap["epoch"], before["epoch"], "a new epoch: seqs past the stored ones may now name other events");

    let after: Value = api(&b, "GET", &format!("/api/v1/topics/workflow:{long_id}/history?limit=1000"), None).await;
    let events = after["events"].as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "gapless from 1");
    assert!(after["seq"].as_u64().unwrap() > before_seq, "seq continues after the restart");
    for e in before["events"].as_array().unwrap() {
        assert_eq!(&events[e["seq"].as_u64().unwrap() as usize - 1], e, "every event seen before the kill is kept as it was");
    }

    // the queued run ran; the finished one is as it was
    wait_for(&b, &queued_id, |s| s["state"] == "completed").await;
    let done = api(&b, "GET", &format!("/api/v1/workflows/{done_id}"), None).await;
    assert_eq!(done["state"], "completed");
    let old: Value = api(&b, "GET", &format!("/api/v1/topics/workflow:{done_id}/history"), None).await;
    assert!(old["events"].to_string().contains("finished-before"));

    // and the failed stage can be restarted
    let r = api(&b, "POST", &format!("/api/v1/workflows/{long_id}/stages/count/restart"), None).await;
    assert_eq!(r["id"], long_id.as_str());
    wait_for(&b, &long_id, |s| s["state"] == "completed").await;
}

#[tokio::test]
async fn a_clean_shutdown_keeps_every_epoch() {
    let data = common::tempdir::TempDir::new();
    let b = start(data.path());
    let run = api(&b, "POST", "/api/v1/workflows", Some(json!({"pipeline":{"name":"quick","stages":[{"id":"a","run":"echo hi"}]}}))).await;
    let id = run["id"].as_str().unwrap().to_owned();
    let before = wait_for(&b, &id, |s| s["state"] == "completed").await;
    let mut b = b;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(b.child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(b.child.wait().unwrap().success());
    let b = start(data.path());
    let after = wait_for(&b, &id, |s| s["state"] == "completed").await;
    assert_eq!(after["epoch"], before["epoch"], "the same epoch: old seqs still mean the same");
    assert_eq!(after["seq"], before["seq"]);
}

#[tokio::test]
async fn a_stage_that_ends_while_the_server_stops_is_recorded_and_the_run_goes_on_after_the_restart() {
    let data = common::tempdir::TempDir::new();
    let b = start(data.path());
    let pipeline = json!({"name":"across","stages":[{"id":"a","run":"sleep 1; echo first"},{"id":"b","run":"echo second"}]});
    let run = api(&b, "POST", "/api/v1/workflows", Some(json!({ "pipeline": pipeline }))).await;
    let id = run["id"].as_str().unwrap().to_owned();
    wait_for(&b, &id, |s| s["state"] == "running").await;
    let mut b = b;
    // stage a ends inside the shutdown grace: it is recorded, stage b does not start
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(b.child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(b.child.wait().unwrap().success());
    let b = start(data.path());
    let after = wait_for(&b, &id, |s| s["state"] == "completed").await;
    assert_eq!(after["stages"][0]["exit_code"], 0, "{after}");
    assert_eq!(after["stages"][1]["status"], "completed", "{after}");
    let page = api(&b, "GET", &format!("/api/v1/topics/workflow:{id}/history?since=0&limit=1000"), None).await;
    let text: String = page["events"].as_array().unwrap().iter().filter(|e| e["event"] == "terminal_output").map(|e| e["data"]["output"].as_str().unwrap().to_owned()).collect();
    assert_eq!((text.matches("first").count(), text.matches("second").count()), (1, 1), "{text}");
}

#[tokio::test]
async fn a_run_acknowledged_is_stored_before_the_reply_even_with_the_writer_busy() {
    let data = common::tempdir::TempDir::new();
    let b = start(data.path());
    // a stage flooding its log keeps the writer's queue deep
    let flood = api(&b, "POST", "/api/v1/workflows", Some(json!({"pipeline":{"name":"flood","stages":[{"id":"a","run":"seq 1 2000000"}]}}))).await;
    wait_for(&b, flood["id"].as_str().unwrap(), |s| s["seq"].as_u64().unwrap_or(0) >= 20).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        let run = api(&b, "POST", "/api/v1/workflows", Some(json!({"pipeline":{"name":"acked","stages":[{"id":"a","run":"echo hi"}]}}))).await;
        ids.push(run["id"].as_str().unwrap().to_owned());
    }
    // no pause: the kill follows the last 201 at once
    let mut b = b;
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let b = start(data.path());
    for id in &ids {
        let s = api(&b, "GET", &format!("/api/v1/workflows/{id}"), None).await;
        assert_eq!(s["id"], id.as_str(), "run {id} was acknowledged with 201, then lost: {s}");
    }
}
