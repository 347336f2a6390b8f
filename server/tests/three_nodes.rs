//! Three nodes on one Redis and one PostgreSQL, each of the test's own: a run started
//! through A, watched from C, confirmed through B, and A SIGKILLed mid-stage. The run
//! ends as its stage's policy says (`node lost`), C's watcher is told the topic
//! started over and resumes, and the run's log has every event once.

mod common;
#[path = "cluster/postgres_server.rs"]
mod postgres_server;
#[path = "cluster/redis_server.rs"]
mod redis_server;
#[path = "cluster/watch.rs"]
mod watch;

use common::{http, Binary};
use postgres_server::PostgresServer;
use redis_server::RedisServer;
use serde_json::{json, Value};
use std::time::Duration;
use watch::{read_until, seqs, watch};

fn node(data: &std::path::Path, redis: &str, database: &str) -> Binary {
    common::start_binary(data, &["--broker", redis, "--database", database, "--node-lease-s", "3"])
}

async fn get(b: &Binary, path: &str) -> Value {
    http().get(format!("http://{}{}", b.addr, path)).send().await.expect("HTTP").json().await.expect("JSON")
}

async fn wait_state(b: &Binary, id: &str, state: &str) -> Value {
    for _ in 0..400 {
        let s = get(b, &format!("/api/v1/workflows/{id}")).await;
        if s["state"] == state {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id} never {state}: {}", get(b, &format!("/api/v1/workflows/{id}")).await);
}

#[tokio::test]
async fn a_run_started_on_a_confirmed_on_b_watched_from_c_survives_a_being_killed() {
    let redis = RedisServer::start();
    let pg = PostgresServer::start();
    let database = pg.database("three").await;
    let dirs = [common::tempdir::TempDir::new(), common::tempdir::TempDir::new(), common::tempdir::TempDir::new()];
    let mut a = node(dirs[0].path(), &redis.url(), &database);
    let b = node(dirs[1].path(), &redis.url(), &database);
    let c = node(dirs[2].path(), &redis.url(), &database);

    let started = http()
        .post(format!("http://{}/api/v1/workflows", a.addr))
        .json(&json!({"pipeline": {"name": "three", "stages": [
            {"id": "gate", "run": "echo ready", "confirm": true},
            {"id": "work", "run": "echo working; while true; do echo tick; sleep 0.1; done"},
            {"id": "after", "run": "echo after"}
        ]}}))
        .send()
        .await
        .expect("start")
        .json::<Value>()
        .await
        .expect("JSON");
    let id = started["id"].as_str().expect("id").to_owned();
    let topic = format!("workflow:{id}");
    let (mut watcher, subscribed) = watch(&c, &topic, None).await;
    let old_epoch = subscribed["epoch"].as_str().expect("epoch").to_owned();

    wait_state(&b, &id, "waiting_confirmation").await;
    let confirmed = http().post(format!("http://{}/api/v1/workflows/{id}/confirm", b.addr)).send().await.expect("confirm");
    assert_eq!(confirmed.status(), 200, "{:?}", confirmed.text().await);
    let (before, closed) = read_until(&mut watcher, &topic, |v| v.to_string().contains("tick")).await;
    assert_eq!(closed, None, "C's watcher sees the stage run on A, live");
    assert_eq!(seqs(&before), (1..=before.len() as u64).collect::<Vec<_>>(), "in order, once each");

    a.child.kill().expect("SIGKILL A");
    a.child.wait().expect("reaped");
    // the lease runs out, B or C takes the run over: its topic starts a new epoch
    let (during, closed) = read_until(&mut watcher, &topic, |_| false).await;
    assert_eq!(closed, Some(1012), "the watcher is told the topic started over");
    let seen = before.len() as u64 + during.len() as u64;
    assert_eq!(seqs(&during), (before.len() as u64 + 1..=seen).collect::<Vec<_>>());

    let (watcher, resumed) = watch(&c, &topic, Some((seen, &old_epoch))).await;
    assert_eq!(resumed["recovered"], false, "a new epoch: {resumed}");
    assert_ne!(resumed["epoch"], old_epoch.as_str());
    let failed = wait_state(&b, &id, "failed").await;
    assert_eq!(failed["stages"][0]["status"], "completed", "{failed}");
    assert_eq!(failed["stages"][1]["error"], "node lost", "{failed}");
    assert_eq!(failed["stages"][2]["status"], "skipped", "{failed}");
    assert_eq!(wait_state(&c, &id, "failed").await["stages"][1]["error"], "node lost");

    // the log, replayed on C from seq 1 in the new epoch: every event once, in order
    let (mut replay, _) = watch(&c, &topic, None).await;
    let (log, closed) = read_until(&mut replay, &topic, |v| v["event"] == "workflow_status" && v["data"]["state"] == "failed").await;
    assert_eq!(closed, None);
    assert_eq!(seqs(&log), (1..=log.len() as u64).collect::<Vec<_>>(), "every event once, gapless from 1");
    let text = Value::Array(log.clone()).to_string();
    assert!(text.contains("ready") && text.contains("working") && text.contains("node lost"), "{text}");
    drop(watcher);
}
