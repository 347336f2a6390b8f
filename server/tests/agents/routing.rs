//! Stages go where their `runs_on` says: two real agents with different capabilities,
//! each stage on the right one (and the rest on the server), their machines' figures
//! in the registry, an artifact uploaded from the agent; a stage no agent can take
//! waits saying so, then fails saying why.

use super::{events_named, get, start_agent, start_run, terminal_text, wait_agent, wait_state};
use crate::common::{http, start_server_with};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn each_stage_runs_on_the_agent_with_its_capabilities() {
    let server = start_server_with(|_| {}).await;
    let base = server.http_url("");
    let _gpu = start_agent(&base, "gpu-box", &["--capabilities", "gpu,cuda"], None);
    let _cpu = start_agent(&base, "cpu-box", &["--capabilities", "big-mem", "--concurrency", "2"], None);
    let gpu = wait_agent(&base, "gpu-box", "idle", None).await;
    assert!(gpu["capabilities"].as_array().unwrap().contains(&json!("cuda")), "{gpu}");
    let cpu = wait_agent(&base, "cpu-box", "idle", None).await;
    assert_eq!(cpu["concurrency"], 2);

    let id = start_run(&base, None, json!({"name":"routed","stages":[
        {"id":"train","runs_on":["gpu"],"run":"echo \"train ran as $SWITCHBOARD_STAGE_ID of $SWITCHBOARD_WORKFLOW_ID\"; echo ::progress 0.5; echo ::metric loss=0.25"},
        {"id":"pack","runs_on":["big-mem"],"run":"echo packed > \"$SWITCHBOARD_ARTIFACTS/pack.txt\"; echo ::artifact pack.txt"},
        {"id":"here","run":"echo on the server"}
    ]})).await;
    let snap = wait_state(&base, &id, "completed", None, Duration::from_secs(30)).await;
    let agents: Vec<&str> = snap["stages"].as_array().unwrap().iter().map(|s| s["agent"].as_str().unwrap_or("local")).collect();
    assert_eq!(agents, ["gpu-box", "cpu-box", "local"]);
    let text = terminal_text(&base, &id, None).await;
    assert!(text.contains(&format!("train ran as train of {id}")), "{text}");
    assert!(text.contains("on the server"), "{text}");
    let loss = events_named(&base, &id, "metric_scalar", None).await;
    assert_eq!(loss[0]["value"], 0.25, "the output protocol applies to an agent's lines");

    let artifacts = events_named(&base, &id, "artifact", None).await;
    let pack = artifacts.iter().find(|a| a["name"] == "pack.txt").expect("the agent's artifact is announced");
    let resp = http().get(format!("{base}{}", pack["url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(resp.text().await.unwrap(), "packed\n");

    // the registry: counters, and each machine's figures
    let gpu = wait_agent(&base, "gpu-box", "idle", None).await;
    assert_eq!(gpu["metrics"]["message_count"], 1, "{gpu}");
    let (_, all) = get(&base, "/api/v1/agents", None).await;
    let cpu = all["agents"].as_array().unwrap().iter().find(|a| a["agent_name"] == "cpu-box").unwrap();
    assert!(cpu["machine"]["memory_total_bytes"].as_u64().unwrap() > 0, "{cpu}");
    assert!(cpu["last_seen"].as_i64().unwrap() > 0);
    server.stop().await;
}

#[tokio::test]
async fn a_stage_no_agent_can_take_waits_saying_so_then_fails_saying_why() {
    let server = start_server_with(|_| {}).await;
    let base = server.http_url("");
    let _cpu = start_agent(&base, "cpu-box", &["--capabilities", "big-mem"], None);
    wait_agent(&base, "cpu-box", "idle", None).await;
    let id = start_run(&base, None, json!({"name":"tpu","stages":[{"id":"s","runs_on":["tpu"],"agent_timeout_s":1,"run":"true"}]})).await;
    let snap = wait_state(&base, &id, "failed", None, Duration::from_secs(20)).await;
    let error = snap["stages"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("no agent with tpu was free within 1 s"), "{snap}");
    let notices = events_named(&base, &id, "log_line", None).await;
    assert!(notices.iter().any(|n| n["message"].as_str().unwrap_or("").contains("waiting for an agent with tpu")), "{notices:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_busy_agent_makes_the_next_stage_wait_for_its_place() {
    let server = start_server_with(|_| {}).await;
    let base = server.http_url("");
    let _gpu = start_agent(&base, "gpu-box", &["--capabilities", "gpu"], None);
    wait_agent(&base, "gpu-box", "idle", None).await;
    let stage = json!({"name":"one-at-a-time","stages":[{"id":"s","runs_on":["gpu"],"run":"sleep 1; echo done"}]});
    let first = start_run(&base, None, stage.clone()).await;
    let second = start_run(&base, None, stage).await;
    wait_agent(&base, "gpu-box", "busy", None).await;
    let a = wait_state(&base, &first, "completed", None, Duration::from_secs(20)).await;
    let b = wait_state(&base, &second, "completed", None, Duration::from_secs(20)).await;
    // concurrency 1: the second started after the first finished
    let (a_end, b_start) = (a["stages"][0]["finished_at"].as_i64().unwrap(), b["stages"][0]["started_at"].as_i64().unwrap());
    assert!(b_start >= a_end - 50, "the second stage started at {b_start}, the first ended at {a_end}");
    server.stop().await;
}
