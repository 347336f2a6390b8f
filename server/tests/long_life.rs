//! Months of uptime: finished runs leave memory and are served from the database (the
//! snapshot, the history, a replay from seq 1 over the WebSocket, the artifacts, a
//! restart); each run's stored terminal output has a cap; old runs are pruned, by the
//! server's sweep and by `switchboard prune`, and asking for one says so; the list of
//! runs pages and filters, and refuses what does not parse.

mod common;

use common::{http, start_server_with, Client, TestServer};
use serde_json::{json, Value};
use std::time::Duration;

async fn post(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let resp = http().post(server.http_url(path)).json(&body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn get(server: &TestServer, path: &str) -> (u16, Value) {
    let resp = http().get(server.http_url(path)).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn start(server: &TestServer, pipeline: Value) -> String {
    let (status, run) = post(server, "/api/v1/workflows", json!({ "pipeline": pipeline })).await;
    assert_eq!(status, 201, "{run}");
    run["id"].as_str().unwrap().to_owned()
}

async fn wait_state(server: &TestServer, id: &str, state: &str) -> Value {
    for _ in 0..400 {
        let (_, snap) = get(server, &format!("/api/v1/workflows/{id}")).await;
        if snap["state"] == state {
            return snap;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} never reached {state}");
}

async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = http().get(server.http_url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(-1.0)
}

/// Every event of a topic, read through the history API page by page.
async fn all_events(server: &TestServer, topic: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut since = 0;
    loop {
        let (_, page) = get(server, &format!("/api/v1/topics/{topic}/history?since={since}&limit=1000")).await;
        let batch = page["events"].as_array().unwrap().clone();
        if batch.is_empty() {
            return events;
        }
        since = batch.last().unwrap()["seq"].as_u64().unwrap();
        events.extend(batch);
    }
}

fn lines_pipeline(name: &str, n: usize) -> Value {
    json!({"name": name, "stages": [
        {"id": "print", "run": format!("for i in $(seq 1 {n}); do echo \"line $i\"; echo \"::metric v=$i step=$i\"; done; echo x > \"$SWITCHBOARD_ARTIFACTS/out.txt\"; echo ::artifact out.txt")},
        {"id": "after", "run": "echo after"}
    ]})
}

#[tokio::test]
async fn a_finished_run_leaves_memory_and_is_served_whole_from_the_database() {
    let server = start_server_with(|c| {
        c.engine.finished_runs_in_memory = 0;
        c.engine.finished_run_memory_s = 0;
        c.hub.durable_window_events = 20;
    })
    .await;
    let id = start(&server, lines_pipeline("lines", 300)).await;
    let finished = wait_state(&server, &id, "completed").await;
    let topic = format!("workflow:{id}");
    // gone from memory once every write is on disk (checked at each coordinator tick)
    let mut left = false;
    for _ in 0..150 {
        if metric(&server, "switchboard_runs_in_memory").await == 0.0 {
            left = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left, "the finished run left memory");
    let (status, from_db) = get(&server, &format!("/api/v1/workflows/{id}")).await;
    assert_eq!(status, 200);
    for field in ["state", "stages", "progress", "created_at", "finished_at", "epoch"] {
        assert_eq!(from_db[field], finished[field], "{field}");
    }
    assert!(from_db["seq"].as_u64().unwrap() >= finished["seq"].as_u64().unwrap());
    let events = all_events(&server, &topic).await;
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "the whole log, gapless");
    assert_eq!(events.iter().filter(|e| e["event"] == "metric_scalar").count(), 300);
    // a replay from seq 1 over the WebSocket, from the database
    let mut c = Client::connect(&server.ws_url("/ws")).await;
    c.expect_type("hello").await;
    let r = c.request(json!({"type":"subscribe","topic":topic,"since":0,"epoch":from_db["epoch"]}), "s").await;
    assert_eq!((r["type"].clone(), r["recovered"].clone()), (json!("subscribed"), json!(true)), "{r}");
    for expected in 1..=seqs.len() as u64 {
        assert_eq!(c.expect_type("event").await["seq"], expected);
    }
    let art = http().get(server.http_url(&format!("/api/v1/workflows/{id}/artifacts/out.txt"))).send().await.unwrap();
    assert_eq!(art.status(), 200);
    // acting on it: chat is taken, a control says what state it is in
    assert_eq!(post(&server, &format!("/api/v1/workflows/{id}/chat"), json!({"text":"late note"})).await.0, 200);
    let (status, body) = post(&server, &format!("/api/v1/workflows/{id}/pause"), json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("completed"), "{body}");
    // restarting a stage brings it back into memory, and its seq goes on
    assert_eq!(post(&server, &format!("/api/v1/workflows/{id}/stages/after/restart"), json!({})).await.0, 200);
    wait_state(&server, &id, "completed").await;
    let more = all_events(&server, &topic).await;
    assert!(more.len() > events.len());
    assert_eq!(more[..events.len()], events[..], "the old log is untouched, the new events follow");
    server.stop().await;
}

#[tokio::test]
async fn a_runs_terminal_output_is_capped_with_one_notice_and_the_drop_counted() {
    let server = start_server_with(|c| c.engine.max_output_bytes = 10_000).await;
    let id = start(&server, json!({"name":"chatty","stages":[{"id":"talk","run":"for i in $(seq 1 500); do printf 'line %04d %s\\n' $i 0123456789012345678901234567890123456789; done"}]})).await;
    let snap = wait_state(&server, &id, "completed").await;
    let events = all_events(&server, &format!("workflow:{id}")).await;
    let stored: usize = events.iter().filter(|e| e["event"] == "terminal_output").map(|e| e["data"]["output"].as_str().unwrap().len()).sum();
    assert!(stored <= 10_000 && stored > 9_000, "{stored} bytes stored");
    let notices = events.iter().filter(|e| e["event"] == "log_line" && e["data"]["message"].as_str().unwrap().contains("past its cap")).count();
    assert_eq!(notices, 1);
    let dropped = snap["stages"][0]["output_dropped_bytes"].as_u64().unwrap();
    assert_eq!(stored as u64 + dropped, 500 * 51, "every byte either stored or counted");
    server.stop().await;
}

#[tokio::test]
async fn old_runs_are_pruned_by_the_sweep_and_asking_for_one_says_so() {
    let server = start_server_with(|c| {
        c.storage.retention = server::config::Retention(Some(Duration::from_secs(1)));
        c.storage.prune_every_s = 1;
    })
    .await;
    let id = start(&server, json!({"name":"brief","stages":[{"id":"a","run":"echo hi > \"$SWITCHBOARD_ARTIFACTS/a.txt\""}]})).await;
    wait_state(&server, &id, "completed").await;
    let mut gone = Value::Null;
    for _ in 0..100 {
        let (status, body) = get(&server, &format!("/api/v1/workflows/{id}")).await;
        if status == 404 {
            gone = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone["error"]["message"].as_str().unwrap_or("").contains("pruned"), "{gone}");
    let (_, page) = get(&server, &format!("/api/v1/topics/workflow:{id}/history")).await;
    assert_eq!(page["events"], json!([]), "its events went with it");
    let (_, list) = get(&server, "/api/v1/workflows").await;
    assert!(!list.to_string().contains(&id));
    server.stop().await;
}

#[tokio::test]
async fn the_list_pages_newest_first_filters_and_refuses_what_does_not_parse() {
    let server = start_server_with(|c| c.engine.concurrency = 4).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        let pipeline = if i % 5 == 0 {
            json!({"name":"bad","stages":[{"id":"a","run":"exit 3"}]})
        } else {
            json!({"name":"good","stages":[{"id":"a","run":"true"}]})
        };
        ids.push(start(&server, pipeline).await);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    for id in &ids {
        for _ in 0..200 {
            let (_, s) = get(&server, &format!("/api/v1/workflows/{id}")).await;
            if s["state"] == "completed" || s["state"] == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/workflows?limit=10&cursor={c}"),
            None => "/api/v1/workflows?limit=10".into(),
        };
        let (status, page) = get(&server, &path).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        seen.extend(page["workflows"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first, "every run once, newest first");
    let (_, failed) = get(&server, "/api/v1/workflows?state=failed").await;
    assert_eq!(failed["workflows"].as_array().unwrap().len(), 5);
    let (_, good) = get(&server, "/api/v1/workflows?pipeline=good&state=completed,failed&limit=500").await;
    assert_eq!(good["workflows"].as_array().unwrap().len(), 20);
    for (path, named) in [
        ("/api/v1/workflows?cursor=not-a-cursor", "not-a-cursor"),
        ("/api/v1/workflows?state=done", "done"),
        ("/api/v1/workflows?limit=0", "limit"),
        ("/api/v1/workflows?limit=lots", "limit"),
        ("/api/v1/workflows?colour=red", "colour"),
    ] {
        let (status, body) = get(&server, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(named), "{path}: {body}");
    }
    server.stop().await;
}

/// `switchboard prune` on a stopped server's data folder, then the server says so.
#[tokio::test]
async fn the_prune_verb_deletes_finished_runs_and_their_folders() {
    let data = common::tempdir::TempDir::new();
    let b = common::start_binary(data.path(), &[]);
    let url = format!("http://{}", b.addr);
    let resp = http().post(format!("{url}/api/v1/workflows")).json(&json!({"pipeline":{"name":"p","stages":[{"id":"a","run":"echo x > \"$SWITCHBOARD_ARTIFACTS/f\""}]}})).send().await.unwrap();
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        let s: Value = http().get(format!("{url}/api/v1/workflows/{id}")).send().await.unwrap().json().await.unwrap();
        if s["state"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut b = b;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(b.child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    b.child.wait().unwrap();
    assert!(data.path().join("runs").join(&id).exists());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["prune", "--older-than", "1ms", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1 run(s) deleted");
    assert!(!data.path().join("runs").join(&id).exists(), "its folder is gone");
    let b = common::start_binary(data.path(), &[]);
    let resp = http().get(format!("http://{}/api/v1/workflows/{id}", b.addr)).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("pruned"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard")).args(["prune", "--data-dir", "/no/such/dir"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/no/such/dir"));
}
