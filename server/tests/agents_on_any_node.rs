//! Agents on any node (several nodes on PostgreSQL, a real PostgreSQL of the test's
//! own and a real `switchboard agent`): an agent connects to one node, every node
//! lists it, and a run started on another node goes to it when its stage comes. The
//! stage runs on that agent, a control sent to the first node reaches it, the rest of
//! the run goes on where it moved, and a watcher misses nothing. An agent cut off
//! mid-stage that comes back to another node brings its stage (and run) with it.

mod common;
#[path = "cluster/pg_nodes.rs"]
mod pg_nodes;
#[path = "cluster/postgres_server.rs"]
mod postgres_server;
#[path = "agents/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "agents/proxy.rs"]
mod proxy;
#[path = "cluster/watch.rs"]
mod watch;

use common::http;
use pg_nodes::*;
use postgres_server::PostgresServer;
use serde_json::{json, Value};
use std::time::Duration;

/// Polls node `b`'s agent list until `ready` holds of agent `name`; that agent.
async fn listed(b: &common::Binary, name: &str, ready: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..400 {
        let all = api(b, "GET", "/api/v1/agents", None).await;
        if let Some(agent) = all["agents"].as_array().and_then(|a| a.iter().find(|x| x["agent_name"] == name)) {
            if ready(agent) {
                return agent.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("agent {name} never listed as expected on {}: {}", b.addr, api(b, "GET", "/api/v1/agents", None).await);
}

/// Waits until run `id`'s log on node `b` holds `needle` (as its JSON text has it).
async fn until_logged(b: &common::Binary, id: &str, needle: &str) {
    for _ in 0..400 {
        if Value::Array(history(b, id).await).to_string().contains(needle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{needle:?} never in the log of run {id}");
}

/// Two nodes on `url` (with `extra` arguments) and a proxy to the first, through
/// which an agent reaches them as through a load balancer; their data folders.
async fn behind_a_proxy(url: &str, extra: &[&str]) -> (proxy::Proxy, [common::Binary; 2], [common::tempdir::TempDir; 2]) {
    let (da, db) = (common::tempdir::TempDir::new(), common::tempdir::TempDir::new());
    let proxy = proxy::Proxy::start("127.0.0.1:9".parse().expect("an address")).await;
    let host = proxy.addr.to_string();
    let mut args = vec!["--allowed-hosts", host.as_str()];
    args.extend_from_slice(extra);
    let a = node(da.path(), url, &args);
    let b = node(db.path(), url, &args);
    proxy.point_at(a.addr.parse().expect("A's address"));
    (proxy, [a, b], [da, db])
}

#[tokio::test]
async fn a_stage_goes_to_its_agent_on_another_node_and_its_run_goes_on_there() {
    let pg = PostgresServer::start();
    let url = pg.database("agents_anywhere").await;
    let (da, db) = (common::tempdir::TempDir::new(), common::tempdir::TempDir::new());
    let limit = ["--cluster-concurrency", "4"];
    let a = node(da.path(), &url, &limit);
    let b = node(db.path(), &url, &limit);
    let trace = da.path().join("ran-in");
    let id = start_run(&a, json!({"name":"anywhere","stages":[
        {"id":"prep","run":format!("pwd >> '{}'", trace.display())},
        {"id":"train","runs_on":["gpu"],"stdin":"chat","run":"read line; echo \"heard: $line\"; i=1; while [ $i -le 50 ]; do echo line-$i; i=$((i+1)); done"},
        {"id":"after","run":format!("pwd >> '{}'", trace.display())}
    ]})).await;
    let topic = format!("workflow:{id}");
    let (c, _) = watch::watch(&a, &topic, None).await;
    // no agent anywhere yet: it waits on A
    until_logged(&a, &id, "waiting for an agent with gpu").await;

    // the agent connects to B only; A lists it, busy with the run A started
    let _agent = process::start_agent(&format!("http://{}", b.addr), "gpu-box", &["--capabilities", "gpu"], None);
    let seen = listed(&a, "gpu-box", |x| x["status"] == "busy").await;
    assert_eq!(seen["current_task"], format!("{id}/train"), "{seen}");
    // and A's `agents` topic, which its dashboard follows, says so too
    let (mut on_a, _) = watch::watch(&a, "agents", None).await;
    let busy = |v: &Value| v["data"]["agent_name"] == "gpu-box" && v["data"]["status"] == "busy";
    let followed = tokio::time::timeout(Duration::from_secs(20), watch::read_until(&mut on_a, "agents", busy)).await;
    assert!(followed.is_ok_and(|(events, _)| events.last().is_some_and(busy)), "A's agents topic shows gpu-box busy on B");
    wait_for(&b, &id, "running its stage on gpu-box", |s| s["stages"][1]["status"] == "running" && s["stages"][1]["agent"] == "gpu-box").await;

    // a control sent to A reaches the stage on B's agent
    let chat = http().post(format!("http://{}/api/v1/workflows/{id}/chat", a.addr)).json(&json!({"text":"hello via A"})).send().await.expect("chat");
    assert_eq!(chat.status(), 200, "{:?}", chat.text().await);
    let done = |v: &Value| v["event"] == "workflow_status" && v["data"]["state"] == "completed";
    let events = watch::across_a_move(&a, &id, c, done).await;
    let seqs = watch::seqs(&events);
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, in order, from 1");
    let text = serde_json::to_string(&events).expect("JSON");
    let heard = events.iter().any(|e| e["event"] == "terminal_output" && e["data"]["output"].as_str().is_some_and(|o| o.contains("heard: ") && o.contains("hello via A")));
    assert!(heard, "the stage read the chat sent to A: {events:?}");
    for needle in ["line-1\\n", "line-50", "moved from node", "gpu-box"] {
        assert!(text.contains(needle), "{needle:?} in what the watcher saw: {text}");
    }

    let run = wait_for(&a, &id, "completed as A reads it", |s| s["state"] == "completed").await;
    let agents: Vec<Value> = run["stages"].as_array().expect("stages").iter().map(|s| s["agent"].clone()).collect();
    assert_eq!(agents, [Value::Null, json!("gpu-box"), Value::Null], "{run}");
    let ran_in = std::fs::read_to_string(&trace).expect("the local stages ran");
    let dirs: Vec<&str> = ran_in.lines().collect();
    assert_eq!(dirs.len(), 2, "{ran_in}");
    assert!(dirs[0].starts_with(&da.path().display().to_string()), "prep ran on A: {ran_in}");
    assert!(dirs[1].starts_with(&db.path().display().to_string()), "after ran on B, where the run went: {ran_in}");
    let (on_a, on_b) = (history(&a, &id).await, history(&b, &id).await);
    assert_once_in_order(&on_b);
    assert_eq!(on_a, on_b, "one log, whichever node it is read from");
    // the agent's place is free again, as every node sees it
    listed(&a, "gpu-box", |x| x["status"] == "idle" && x["metrics"]["message_count"] == 1).await;
}

#[tokio::test]
async fn an_agent_cut_off_mid_stage_that_comes_back_to_another_node_brings_its_stage_along() {
    let pg = PostgresServer::start();
    let url = pg.database("agents_follow").await;
    let (proxy, [a, b], [_da, db]) = behind_a_proxy(&url, &[]).await;
    let _agent = process::start_agent(&proxy.base(), "gpu-box", &["--capabilities", "gpu"], None);
    listed(&a, "gpu-box", |x| x["status"] == "idle").await;
    let id = start_run(&a, json!({"name":"brought","stages":[
        {"id":"train","runs_on":["gpu"],"run":process::counting(60, 50)},
        {"id":"after","run":"echo after on $(pwd)"}
    ]})).await;
    let (c, _) = watch::watch(&a, &format!("workflow:{id}"), None).await;
    until_logged(&a, &id, "line 10\\n").await;

    // its connection to A is cut mid-stage, and it dials back to B
    proxy.point_at(b.addr.parse().expect("B's address"));
    proxy.cut();
    let done = |v: &Value| v["event"] == "workflow_status" && v["data"]["state"] == "completed";
    let events = watch::across_a_move(&a, &id, c, done).await;
    let seqs = watch::seqs(&events);
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, in order, from 1");
    let terminal: String = events.iter().filter(|e| e["event"] == "terminal_output").filter_map(|e| e["data"]["output"].as_str()).collect();
    process::assert_lines_once_in_order(&terminal, 60);
    assert!(terminal.contains(&format!("after on {}", db.path().display())), "the rest ran on B: {terminal}");
    let text = serde_json::to_string(&events).expect("JSON");
    assert!(text.contains("which runs stage \\\"train\\\", connected to node"), "the log says why it moved: {text}");

    let run = wait_for(&a, &id, "completed as A reads it", |s| s["state"] == "completed").await;
    assert_eq!(run["stages"][0]["agent"], "gpu-box", "{run}");
    assert_eq!(run["stages"][0]["attempt"], 1, "the stage went on, not again: {run}");
    let (on_a, on_b) = (history(&a, &id).await, history(&b, &id).await);
    assert_once_in_order(&on_b);
    assert_eq!(on_a, on_b, "one log, whichever node it is read from");
}

#[tokio::test]
async fn an_agent_whose_node_dies_under_its_stage_goes_on_with_it_through_the_node_that_takes_over() {
    let pg = PostgresServer::start();
    let url = pg.database("agents_node_lost").await;
    let (proxy, [mut a, b], _dirs) = behind_a_proxy(&url, &["--node-lease-s", "3"]).await;
    let _agent = process::start_agent(&proxy.base(), "gpu-box", &["--capabilities", "gpu"], None);
    listed(&a, "gpu-box", |x| x["status"] == "idle").await;
    let id = start_run(&a, json!({"name":"orphaned","stages":[{"id":"train","runs_on":["gpu"],"retries":1,"run":process::counting(60, 50)}]})).await;
    until_logged(&a, &id, "line 10\\n").await;

    // A dies mid-stage; the agent comes back to B while B still waits for A to give
    // the stage (A does not answer), and B takes A's runs over once A's lease (3 s)
    // is out, within that wait (5 s): the stage goes on there, where it was
    proxy.point_at(b.addr.parse().expect("B's address"));
    sigkill(&mut a);
    proxy.cut();
    let run = wait_for(&b, &id, "completed on B", |s| s["state"] == "completed").await;
    assert_eq!(run["stages"][0]["agent"], "gpu-box", "{run}");
    let on_b = history(&b, &id).await;
    assert_once_in_order(&on_b);
    assert_eq!(run["stages"][0]["attempt"], 1, "the stage went on, not again: {run}");
    let terminal: String = on_b.iter().filter(|e| e["event"] == "terminal_output").filter_map(|e| e["data"]["output"].as_str()).collect();
    process::assert_lines_once_in_order(&terminal, 60);
}
