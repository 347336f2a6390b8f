//! Faults caused for real: an agent SIGKILLed mid-stage (the stage fails `agent lost`
//! after the grace period, or goes to another agent when it may be retried), an agent's
//! socket cut and its dials refused for a while (every line arrives once, in order,
//! through a buffer far smaller than what the stage prints meanwhile), and the server
//! SIGKILLed and started again under a running remote stage (taken up, not run twice);
//! a stage that ends while its agent is cut off (its end applied once it is back).

use super::proxy::Proxy;
use super::{assert_lines_once_in_order, counting, start_agent, start_run, terminal_text, wait_agent, wait_state};
use crate::common::{self, start_server_with};
use serde_json::json;
use std::time::{Duration, Instant};

/// Waits until the run's terminal shows `needle`.
async fn wait_output(base: &str, id: &str, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !terminal_text(base, id, None).await.contains(needle) {
        assert!(Instant::now() < deadline, "the run never printed {needle:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_agent_killed_mid_stage_is_agent_lost_after_the_grace_period() {
    let server = start_server_with(|c| c.agents.agent_grace_s = 2).await;
    let base = server.http_url("");
    let mut agent = start_agent(&base, "doomed", &["--capabilities", "gpu"], None);
    wait_agent(&base, "doomed", "idle", None).await;
    let id = start_run(&base, None, json!({"name":"lost","stages":[{"id":"s","runs_on":["gpu"],"run":counting(400, 50)}]})).await;
    wait_output(&base, &id, "line 3\n").await;
    agent.kill();
    let killed = Instant::now();
    let snap = wait_state(&base, &id, "failed", None, Duration::from_secs(15)).await;
    let took = killed.elapsed();
    let error = snap["stages"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("agent lost"), "{snap}");
    assert!(took >= Duration::from_millis(1_500), "failed {took:?} after the kill: before the 2 s grace");
    assert!(took <= Duration::from_secs(5), "failed {took:?} after the kill: long after the 2 s grace");
    wait_agent(&base, "doomed", "offline", None).await;
    server.stop().await;
}

#[tokio::test]
async fn a_lost_stage_that_may_be_retried_goes_to_another_agent() {
    let server = start_server_with(|c| c.agents.agent_grace_s = 1).await;
    let base = server.http_url("");
    let mut first = Some(start_agent(&base, "gpu-a", &["--capabilities", "gpu"], None));
    let mut second = Some(start_agent(&base, "gpu-b", &["--capabilities", "gpu"], None));
    wait_agent(&base, "gpu-a", "idle", None).await;
    wait_agent(&base, "gpu-b", "idle", None).await;
    let id = start_run(&base, None, json!({"name":"retried","stages":[{"id":"s","runs_on":["gpu"],"retries":1,"run":counting(30, 50)}]})).await;
    wait_output(&base, &id, "line 2\n").await;
    let (_, snap) = super::get(&base, &format!("/api/v1/workflows/{id}"), None).await;
    let ran_on = snap["stages"][0]["agent"].as_str().unwrap().to_owned();
    let survivor = if ran_on == "gpu-a" { first.take(); "gpu-b" } else { second.take(); "gpu-a" };
    let snap = wait_state(&base, &id, "completed", None, Duration::from_secs(30)).await;
    assert_eq!(snap["stages"][0]["agent"], survivor, "{snap}");
    assert_eq!(snap["stages"][0]["attempt"], 2);
    let notes = super::events_named(&base, &id, "log_line", None).await;
    assert!(notes.iter().any(|n| n["message"].as_str().unwrap_or("").contains("queued again (attempt 2 of 2)")), "{notes:?}");
    assert!(terminal_text(&base, &id, None).await.contains("line 30\n"));
    server.stop().await;
}

/// A server and agent `name` (capability `gpu`, `extra` arguments) that reaches it
/// through a proxy, connected and idle; the server's base URL.
async fn agent_behind_a_proxy(name: &str, extra: &[&str]) -> (Proxy, common::TestServer, super::AgentProcess, String) {
    let proxy = Proxy::start("127.0.0.1:9".parse().unwrap()).await;
    let host = proxy.addr.to_string();
    let server = start_server_with(|c| c.auth.allowed_hosts = vec![host]).await;
    proxy.point_at(server.addr);
    let mut args = vec!["--capabilities", "gpu"];
    args.extend_from_slice(extra);
    let agent = start_agent(&proxy.base(), name, &args, None);
    let base = server.http_url("");
    wait_agent(&base, name, "idle", None).await;
    (proxy, server, agent, base)
}

#[tokio::test]
async fn a_cut_socket_loses_no_line_and_doubles_none() {
    // a buffer of 4 KiB: the stage prints far more while the agent cannot send
    let (proxy, server, agent, base) = agent_behind_a_proxy("flaky", &["--buffer-bytes", "4096"]).await;
    let n = 600;
    let id = start_run(&base, None, json!({"name":"cut","stages":[{"id":"s","runs_on":["gpu"],"run":counting(n, 5)}]})).await;
    wait_output(&base, &id, "line 20\n").await;
    proxy.refuse(true);
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    proxy.refuse(false);
    wait_state(&base, &id, "completed", None, Duration::from_secs(60)).await;
    assert!(agent.logged("connection to the server lost"), "the connection was really cut");
    assert_lines_once_in_order(&terminal_text(&base, &id, None).await, n);
    server.stop().await;
}

#[tokio::test]
async fn a_stage_that_ends_while_its_agent_is_cut_off_completes_once_it_is_back() {
    let (proxy, server, agent, base) = agent_behind_a_proxy("away", &[]).await;
    let id = start_run(&base, None, json!({"name":"ends-away","stages":[{"id":"s","runs_on":["gpu"],"run":"echo 'line 1'; sleep 0.5; echo 'line 2'; echo 'line 3'"}]})).await;
    wait_output(&base, &id, "line 1\n").await;
    // cut off until the stage has ended on the agent: its end waits in the agent
    proxy.refuse(true);
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    proxy.refuse(false);
    wait_state(&base, &id, "completed", None, Duration::from_secs(30)).await;
    assert!(agent.logged("connection to the server lost"), "the connection was really cut");
    assert_lines_once_in_order(&terminal_text(&base, &id, None).await, 3);
    server.stop().await;
}

#[tokio::test]
async fn a_server_killed_and_started_again_takes_up_the_running_stage() {
    let data = common::tempdir::TempDir::new();
    let marks = common::tempdir::TempDir::new();
    let marker = marks.path().join("starts");
    let proxy = Proxy::start("127.0.0.1:9".parse().unwrap()).await;
    let host = proxy.addr.to_string();
    let args = ["--agent-grace-s", "20", "--allowed-hosts", host.as_str()];
    let mut old = common::start_binary(data.path(), &args);
    proxy.point_at(old.addr.parse().unwrap());
    let _agent = start_agent(&proxy.base(), "steady", &["--capabilities", "gpu"], None);
    let base = format!("http://{}", old.addr);
    wait_agent(&base, "steady", "idle", None).await;
    let n = 120;
    let run = format!("echo started >> '{}'; {}", marker.display(), counting(n, 40));
    let id = start_run(&base, None, json!({"name":"restart","stages":[{"id":"s","runs_on":["gpu"],"run":run}]})).await;
    wait_output(&base, &id, "line 10\n").await;
    old.child.kill().unwrap(); // SIGKILL: no goodbye to anyone
    old.child.wait().unwrap();
    let new = common::start_binary(data.path(), &args);
    proxy.point_at(new.addr.parse().unwrap());
    proxy.cut();
    let base = format!("http://{}", new.addr);
    let snap = wait_state(&base, &id, "completed", None, Duration::from_secs(60)).await;
    assert_eq!(snap["stages"][0]["attempt"], 1, "taken up, not run again: {snap}");
    assert_eq!(snap["stages"][0]["agent"], "steady");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "started\n", "the stage's process started once");
    assert_lines_once_in_order(&terminal_text(&base, &id, None).await, n);
}
