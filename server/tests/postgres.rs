//! The server on PostgreSQL (`--database`), with a real PostgreSQL of the test's own:
//! runs survive a SIGKILL as they do on SQLite, several nodes see every run, and bad
//! or unreachable URLs and a database of a newer schema are refused with a message
//! that names them (without the password).

mod common;
#[path = "cluster/postgres_server.rs"]
mod postgres_server;
#[path = "cluster/pg_nodes.rs"]
mod pg_nodes;
#[path = "cluster/watch.rs"]
mod watch;

use common::{http, Binary};
use pg_nodes::*;
use postgres_server::PostgresServer;
use serde_json::{json, Value};
use std::time::Duration;

/// Exits (within 20 s) with its stderr; panics if it serves instead.
fn refused(data: &std::path::Path, args: &[&str]) -> (i32, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--port", "0", "--auth", "off", "--data-dir"])
        .arg(data)
        .args(args)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn switchboard");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut err).expect("read stderr");
            return (status.code().unwrap_or(-1), err);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("switchboard {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn runs_on_postgres_survive_a_sigkill_like_on_sqlite() {
    let pg = PostgresServer::start();
    let url = pg.database("survive").await;
    let data = common::tempdir::TempDir::new();
    let mut a = node(data.path(), &url, &[]);
    let done = start_run(&a, json!({"name":"quick","stages":[{"id":"a","run":"echo finished-before"}]})).await;
    wait_for(&a, &done, "completed", |s| s["state"] == "completed").await;
    let long = start_run(&a, json!({"name":"long","stages":[{"id":"count","run":"i=0; while true; do i=$((i+1)); echo line $i; sleep 0.05; done"}]})).await;
    wait_for(&a, &long, "printed", |s| s["seq"].as_u64().unwrap_or(0) >= 8).await;
    let before = api(&a, "GET", &format!("/api/v1/topics/workflow:{long}/history?limit=1000"), None).await;
    // let the writer catch up with what the clients saw, then die without warning
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigkill(&mut a);

    let a = node(data.path(), &url, &[]);
    let snap = wait_for(&a, &long, "failed", |s| s["state"] == "failed").await;
    assert_eq!(snap["stages"][0]["error"], "server restarted");
    assert_ne!(snap["epoch"], before["epoch"], "a new epoch after a crash");
    let after = api(&a, "GET", &format!("/api/v1/topics/workflow:{long}/history?limit=1000"), None).await;
    let seqs: Vec<u64> = after["events"].as_array().expect("events").iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "gapless from 1");
    for e in before["events"].as_array().expect("events") {
        let seq = e["seq"].as_u64().expect("seq") as usize;
        assert_eq!(&after["events"][seq - 1], e, "every event seen before the kill is kept as it was");
    }
    let old = api(&a, "GET", &format!("/api/v1/topics/workflow:{done}/history"), None).await;
    assert!(old["events"].to_string().contains("finished-before"), "{old}");
}

#[tokio::test]
async fn bad_or_unreachable_databases_are_refused_by_name_without_the_password() {
    let data = common::tempdir::TempDir::new();
    let (code, err) = refused(data.path(), &["--database", "mysql://root:hunter2@db/x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a PostgreSQL URL") && err.contains("mysql://"), "{err}");
    assert!(!err.contains("hunter2"), "the password is never printed: {err}");

    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let nobody = format!("postgres://app:hunter2@127.0.0.1:{port}/x");
    let (code, err) = refused(data.path(), &["--database", &nobody]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("cannot open the database") && err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("hunter2"), "the password is never printed: {err}");
}

#[tokio::test]
async fn a_postgres_database_of_a_newer_schema_is_refused() {
    let pg = PostgresServer::start();
    let url = pg.database("newer").await;
    let data = common::tempdir::TempDir::new();
    let mut a = node(data.path(), &url, &[]);
    sigkill(&mut a);
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.expect("connect");
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99, 'from the future', true, '\\x00'::bytea, 0)")
        .execute(&mut conn)
        .await
        .expect("a newer migration");
    let (code, err) = refused(data.path(), &["--database", &url]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("newer Switchboard (schema 99"), "{err}");
}

#[tokio::test]
async fn a_node_killed_mid_stage_has_its_runs_taken_over_as_their_retries_say() {
    let pg = PostgresServer::start();
    let url = pg.database("takeover").await;
    let (da, db) = (common::tempdir::TempDir::new(), common::tempdir::TempDir::new());
    let mark = da.path().join("tried-once");
    let lease = ["--node-lease-s", "3"];
    let mut a = node(da.path(), &url, &lease);
    let lost = start_run(&a, json!({"name":"lost","stages":[{"id":"gate","run":"echo gate","confirm":true},{"id":"work","run":"echo started; sleep 30"},{"id":"after","run":"echo after"}]})).await;
    let retried = start_run(&a, json!({"name":"retried","stages":[{"id":"work","retries":1,
        "run": format!("if [ -f '{m}' ]; then echo second-try; exit 0; fi; touch '{m}'; echo first-try; sleep 30", m = mark.display())}]})).await;
    wait_for(&a, &lost, "at its gate", |s| s["state"] == "waiting_confirmation").await;
    wait_for(&a, &retried, "ran", |s| s["stages"][0]["status"] == "running").await;

    // B starts beside a live A: it sees A's runs and leaves them to A; a confirmation
    // sent to B is relayed to A
    let b = node(db.path(), &url, &lease);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let seen = wait_for(&b, &lost, "seen on B", |s| s["state"] == "waiting_confirmation").await;
    assert_eq!(seen["stages"][0]["status"], "waiting_confirmation", "{seen}");
    let (status, body) = post_status(&b, &format!("/api/v1/workflows/{lost}/confirm")).await;
    assert_eq!(status, 200, "{body}");
    wait_for(&a, &lost, "past its gate on A", |s| s["stages"][1]["status"] == "running").await;
    assert_eq!(api(&a, "GET", &format!("/api/v1/workflows/{retried}"), None).await["state"], "running", "A still runs it");
    let listed = api(&b, "GET", "/api/v1/workflows", None).await.to_string();
    assert!(listed.contains(&lost) && listed.contains(&retried), "B lists A's runs: {listed}");

    // stored: what A only held in memory when it died would be lost with it
    wait_for(&b, &lost, "stored past its gate", |s| s["stages"][1]["status"] == "running").await;
    sigkill(&mut a);
    let failed = wait_for(&b, &lost, "failed on B", |s| s["state"] == "failed").await;
    assert_eq!(failed["stages"][0]["status"], "completed", "{failed}");
    assert_eq!(failed["stages"][1]["error"], "node lost", "{failed}");
    assert_eq!(failed["stages"][2]["status"], "skipped", "{failed}");
    assert_eq!(failed["error"], "node lost", "{failed}");
    let done = wait_for(&b, &retried, "completed on B", |s| s["state"] == "completed").await;
    assert_eq!(done["stages"][0]["attempt"], 2, "{done}");
    let events = history(&b, &retried).await;
    let text = Value::Array(events.clone()).to_string();
    assert!(text.contains("first-try") && text.contains("second-try"), "{text}");
    assert!(text.contains("node lost: stage \\\"work\\\" is queued again (attempt 2 of 2)"), "{text}");
    assert_once_in_order(&events);
    assert_once_in_order(&history(&b, &lost).await);
}

#[tokio::test]
async fn a_node_that_lost_its_lease_while_paused_stops_and_writes_nothing_more() {
    let pg = PostgresServer::start();
    let url = pg.database("failstop").await;
    let (da, db) = (common::tempdir::TempDir::new(), common::tempdir::TempDir::new());
    let lease = ["--node-lease-s", "3"];
    let mut a = node(da.path(), &url, &lease);
    let b = node(db.path(), &url, &lease);
    let id = start_run(&a, json!({"name":"ticking","stages":[{"id":"tick","run":"i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo tick $i; sleep 0.05; done"}]})).await;
    wait_for(&a, &id, "ticking", |s| s["seq"].as_u64().unwrap_or(0) >= 5).await;
    let pid = nix::unistd::Pid::from_raw(a.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    let failed = wait_for(&b, &id, "taken over", |s| s["state"] == "failed").await;
    assert_eq!(failed["stages"][0]["error"], "node lost");
    let stored = |url: String, topic: String| async move {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.expect("connect");
        let row: (i64, Option<i64>) = sqlx::query_as("SELECT COUNT(*), MAX(seq) FROM events WHERE topic = $1").bind(topic).fetch_one(&mut conn).await.expect("count");
        row
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = stored(url.clone(), format!("workflow:{id}")).await;
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = a.child.try_wait().expect("wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "A went on after losing its lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "A stops with a failure status: {status}");
    a.log_line("took this node's runs over");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stored(url.clone(), format!("workflow:{id}")).await, settled, "nothing A had still to write reached the database");
    assert_once_in_order(&history(&b, &id).await);
    assert_eq!(api(&b, "GET", &format!("/api/v1/workflows/{id}"), None).await["state"], "failed");
}

#[tokio::test]
async fn controls_sent_to_any_node_reach_the_runs_owner() {
    let pg = PostgresServer::start();
    let url = pg.database("relay").await;
    let (da, db) = (common::tempdir::TempDir::new(), common::tempdir::TempDir::new());
    let a = node(da.path(), &url, &[]);
    let b = node(db.path(), &url, &[]);
    let id = start_run(&a, json!({"name":"relayed","stages":[{"id":"chat","stdin":"chat","run":"read line; case \"$line\" in *'hello from B'*) echo HEARD-IT;; esac; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done"}]})).await;
    wait_for(&a, &id, "running", |s| s["stages"][0]["status"] == "running").await;
    wait_for(&b, &id, "seen running on B", |s| s["stages"][0]["status"] == "running").await;

    // over HTTP on B: chat reaches the stage's stdin on A; pause and resume act there
    let chat = http().post(format!("http://{}/api/v1/workflows/{id}/chat", b.addr)).json(&json!({"text":"hello from B"})).send().await.expect("chat");
    assert_eq!(chat.status(), 200, "{:?}", chat.text().await);
    for _ in 0..100 {
        if history(&a, &id).await.iter().any(|e| e.to_string().contains("HEARD-IT")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(Value::Array(history(&a, &id).await).to_string().contains("HEARD-IT"), "the stage read the chat: {:?} {:?}", a.log.lock().unwrap(), b.log.lock().unwrap());
    assert_eq!(post_status(&b, &format!("/api/v1/workflows/{id}/pause")).await.0, 200);
    wait_for(&a, &id, "paused on A", |s| s["state"] == "paused").await;
    let (status, body) = post_status(&b, &format!("/api/v1/workflows/{id}/pause")).await;
    assert_eq!(status, 409, "A's own answer comes back: {body}");
    assert!(body.to_string().contains("paused"), "{body}");

    // over a WebSocket on B
    let mut c = common::Client::connect(&format!("ws://{}/ws", b.addr)).await;
    c.expect_type("hello").await;
    let ack = c.request(json!({"type":"control","action":"resume","workflow_id":id}), "r").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    wait_for(&a, &id, "running again on A", |s| s["state"] == "running").await;
    let ack = c.request(json!({"type":"control","action":"cancel","workflow_id":id}), "x").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    wait_for(&a, &id, "cancelled on A", |s| s["state"] == "cancelled").await;
    wait_for(&b, &id, "cancelled as B reads it", |s| s["state"] == "cancelled").await;
}

#[tokio::test]
async fn a_run_is_watched_live_from_any_node_every_event_once_in_order() {
    let pg = PostgresServer::start();
    let url = pg.database("watch").await;
    let (da, db) = (common::tempdir::TempDir::new(), common::tempdir::TempDir::new());
    let a = node(da.path(), &url, &[]);
    let b = node(db.path(), &url, &[]);
    let id = start_run(&a, json!({"name":"watched","stages":[
        {"id":"wait","run":"sleep 1"},
        {"id":"print","run":"i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo line-$i; sleep 0.01; done"}
    ]})).await;
    // subscribed on B while A runs it
    let mut c = common::Client::connect(&format!("ws://{}/ws", b.addr)).await;
    c.expect_type("hello").await;
    let reply = c.request(json!({"type":"subscribe","topic":format!("workflow:{id}"),"since":0}), "s").await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    // and the connections that listen for announcements are cut again and again
    let cuts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cutter = tokio::spawn({
        let (url, cuts) = (url.clone(), cuts.clone());
        async move {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.expect("connect");
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let done = sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()")
                    .execute(&mut conn)
                    .await;
                cuts.fetch_add(done.map(|d| d.rows_affected()).unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let mut seqs = Vec::new();
    let mut text = String::new();
    loop {
        let v = c.recv().await;
        if v["type"] != "event" {
            continue;
        }
        seqs.push(v["seq"].as_u64().expect("seq"));
        text.push_str(&v.to_string());
        if v["event"] == "workflow_status" && v["data"]["state"] == "completed" {
            break;
        }
    }
    cutter.abort();
    assert!(cuts.load(std::sync::atomic::Ordering::Relaxed) > 0, "listening connections were cut");
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, in order, from 1");
    for i in [1, 150, 300] {
        assert!(text.contains(&format!("line-{i}")), "line-{i} reached B's subscriber");
    }
    let on_a = history(&a, &id).await;
    assert!(on_a.len() >= seqs.len(), "A stored all B's subscriber got");
    assert_eq!(on_a[seqs.len() - 1]["event"], "workflow_status", "the same event at the same seq on A: {}", on_a[seqs.len() - 1]);
}

#[tokio::test]
async fn the_cluster_concurrency_limit_holds_across_nodes_and_a_dead_nodes_slots_come_back() {
    let pg = PostgresServer::start();
    let url = pg.database("slots").await;
    let (da, db) = (common::tempdir::TempDir::new(), common::tempdir::TempDir::new());
    let limit = ["--cluster-concurrency", "1", "--node-lease-s", "3"];
    let a = node(da.path(), &url, &limit);
    let b = node(db.path(), &url, &limit);
    let trace = da.path().join("trace");
    let stage = |name: &str| {
        json!({"name": name, "stages": [{"id": "one", "run": format!("echo start >> '{t}'; sleep 0.3; echo end >> '{t}'", t = trace.display())}]})
    };
    let mut ids = Vec::new();
    for (i, n) in [&a, &b, &a, &b].into_iter().enumerate() {
        ids.push((n, start_run(n, stage(&format!("limited-{i}"))).await));
    }
    for (n, id) in &ids {
        wait_for(n, id, "completed", |s| s["state"] == "completed").await;
    }
    let lines = std::fs::read_to_string(&trace).expect("the trace");
    assert_eq!(lines, "start\nend\n".repeat(4), "one run at a time across both nodes");

    // A holds the only slot and dies: once its lease is out, B's waiting run gets it
    let mut a = a;
    let held = start_run(&a, json!({"name":"holder","stages":[{"id":"hold","run":"sleep 30"}]})).await;
    wait_for(&a, &held, "running", |s| s["state"] == "running").await;
    let waiting = start_run(&b, stage("waiting")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(api(&b, "GET", &format!("/api/v1/workflows/{waiting}"), None).await["state"], "pending", "no slot while A holds it");
    sigkill(&mut a);
    wait_for(&b, &waiting, "completed once A's slot came back", |s| s["state"] == "completed").await;
    let lost = wait_for(&b, &held, "failed", |s| s["state"] == "failed").await;
    assert_eq!(lost["stages"][0]["error"], "node lost");
}

#[tokio::test]
async fn a_node_that_cannot_reach_postgres_stops_before_its_lease_runs_out() {
    let mut pg = PostgresServer::start();
    let url = pg.database("gone").await;
    let data = common::tempdir::TempDir::new();
    let mut a = node(data.path(), &url, &["--node-lease-s", "3"]);
    let id = start_run(&a, json!({"name":"quick","stages":[{"id":"a","run":"echo hi"}]})).await;
    wait_for(&a, &id, "completed", |s| s["state"] == "completed").await;
    pg.kill();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = a.child.try_wait().expect("wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the node went on without its lease: {:#?}", a.log.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(1), "{status}");
    a.log_line("could not be renewed and is about to run out");
}

#[tokio::test]
async fn one_id_sent_to_two_nodes_at_once_runs_once_and_a_restart_is_claimed_by_one_node() {
    let pg = PostgresServer::start();
    let url = pg.database("claims").await;
    let (da, db) = (common::tempdir::TempDir::new(), common::tempdir::TempDir::new());
    let (a, b) = (node(da.path(), &url, &[]), node(db.path(), &url, &[]));
    let body = json!({"id": "same-id", "pipeline": {"name": "once", "stages": [{"id": "s", "run": "echo ran-once"}]}});
    let send = |n: &Binary| http().post(format!("http://{}/api/v1/workflows", n.addr)).json(&body).send();
    let (ra, rb) = tokio::join!(send(&a), send(&b));
    let mut codes = vec![ra.expect("A").status().as_u16(), rb.expect("B").status().as_u16()];
    codes.sort();
    assert_eq!(codes[1], 409, "the second is refused: {codes:?}");
    assert!(codes[0] < 300, "{codes:?}");
    wait_for(&a, "same-id", "completed", |s| s["state"] == "completed").await;
    // B reads what A's batched writer has committed: wait until the run's last status is
    // there, then it must hold the stage's line exactly once
    let mut text = String::new();
    for _ in 0..200 {
        text = Value::Array(history(&b, "same-id").await).to_string();
        if text.contains(r#""state":"completed""#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(text.matches("ran-once").count(), 1, "{text}");

    // restarted through whichever node: that node runs it, in a new epoch if it moved
    let (status, body) = post_status(&b, "/api/v1/workflows/same-id/stages/s/restart").await;
    assert_eq!(status, 200, "{body}");
    wait_for(&b, "same-id", "completed again", |s| s["state"] == "completed" && s["stages"][0]["attempt"].as_u64().unwrap_or(0) >= 2).await;
    let events = history(&b, "same-id").await;
    assert_once_in_order(&events);
    assert_eq!(Value::Array(events).to_string().matches("ran-once").count(), 2);
    let (status, _) = post_status(&a, "/api/v1/workflows/same-id/stages/s/restart").await;
    assert_eq!(status, 200);
    wait_for(&a, "same-id", "completed a third time", |s| s["state"] == "completed" && s["stages"][0]["attempt"].as_u64().unwrap_or(0) >= 3).await;
    assert_once_in_order(&history(&a, "same-id").await);
}

#[tokio::test]
async fn a_run_queued_on_a_busy_node_moves_to_one_with_room_and_its_watchers_miss_nothing() {
    let pg = PostgresServer::start();
    let url = pg.database("handoff").await;
    let (da, db) = (common::tempdir::TempDir::new(), common::tempdir::TempDir::new());
    let a = node_running(da.path(), &url, 1, &[]);
    let busy = start_run(&a, json!({"name":"busy","stages":[{"id":"hold","run":"sleep 6"}]})).await;
    wait_for(&a, &busy, "running", |s| s["state"] == "running").await;
    let trace = da.path().join("ran-in");
    let queued = start_run(&a, json!({"name":"queued","stages":[
        {"id":"where","run":format!("pwd >> '{}'", trace.display())},
        {"id":"count","run":"for i in 1 2 3; do echo line-$i; done"}
    ]})).await;
    let topic = format!("workflow:{queued}");
    // watched on A, the node it was queued on; then B, with room, comes up
    let (c, _) = watch::watch(&a, &topic, None).await;
    let b = node_running(db.path(), &url, 1, &[]);
    let done = |v: &Value| v["event"] == "workflow_status" && v["data"]["state"] == "completed";
    let events = watch::across_a_move(&a, &queued, c, done).await;
    assert_eq!(api(&a, "GET", &format!("/api/v1/workflows/{busy}"), None).await["state"], "running", "it did not wait for A's slot");
    let ran_in = std::fs::read_to_string(&trace).expect("the stage ran");
    assert!(ran_in.starts_with(&db.path().display().to_string()), "B ran it: {ran_in}");
    let seqs = watch::seqs(&events);
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, in order, from 1");
    let text = serde_json::to_string(&events).expect("JSON");
    assert!(text.contains("line-3") && text.contains("which had a free slot"), "the run's output and why it moved: {text}");
    let (on_a, on_b) = (history(&a, &queued).await, history(&b, &queued).await);
    assert_once_in_order(&on_b);
    assert_eq!(on_a, on_b, "one log, whichever node it is read from");
    // the watcher stopped at `completed`; the run's closing notification may follow
    assert!(on_b.len() >= seqs.len(), "the watcher got no more than the log");
    assert_eq!(on_b[seqs.len() - 1]["data"]["state"], "completed", "the same event at the same seq");
    wait_for(&a, &busy, "completed", |s| s["state"] == "completed").await;
}
