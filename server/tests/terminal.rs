//! The terminal's clients against the real binary: `switchboard publish` (an event a
//! subscriber then reads; bad JSON and a bad topic named, nothing sent) and `switchboard
//! watch` (a run's coloured terminal on stdout, its stages on stderr, the exit status
//! the run's).

mod common;

use common::http;
use serde_json::{json, Value};
use std::process::Command;

fn cli(addr: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("SWITCHBOARD_SERVER", format!("http://{addr}"))
        .env_remove("SWITCHBOARD_TOKEN")
        .output()
        .expect("run switchboard")
}

#[tokio::test]
async fn publish_sends_one_event_and_names_what_is_wrong() {
    let data = common::tempdir::TempDir::new();
    let b = common::start_binary(data.path(), &[]);
    let out = cli(&b.addr, &["publish", "session:cli", "ai_progress", r#"{"progress":0.5}"#]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    let page: Value = http().get(format!("http://{}/api/v1/topics/session:cli/history?since=0", b.addr)).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["events"][0]["data"], json!({"progress":0.5}));

    let out = cli(&b.addr, &["publish", "session:cli", "e", "{not json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("{not json"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&b.addr, &["publish", "Bad Topic", "e"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Bad Topic"));
    let out = cli(&b.addr, &["publish", "coordinator", "e"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("forbidden"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn watch_follows_a_run_to_its_end() {
    let data = common::tempdir::TempDir::new();
    let b = common::start_binary(data.path(), &[]);
    let start = |run: &str| {
        let body = json!({"pipeline":{"name":"watched","stages":[{"id":"s","run":run}]}});
        let url = format!("http://{}/api/v1/workflows", b.addr);
        async move { http().post(url).json(&body).send().await.unwrap().json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned() }
    };
    let id = start(r"for i in 1 2 3 4 5; do printf '\033[32mline %d\033[0m\n' $i; echo ::progress $i/5; sleep 0.2; done").await;
    let addr = b.addr.clone();
    let out = tokio::task::spawn_blocking(move || cli(&addr, &["watch", &id])).await.unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert_eq!(lines[0], "\u{1b}[32mline 1\u{1b}[0m", "colours kept");
    assert!(stderr.contains("[s] 100%") && stderr.contains("completed"), "{stderr}");

    let failing = start("echo doomed; exit 3").await;
    let addr = b.addr.clone();
    let out = tokio::task::spawn_blocking(move || cli(&addr, &["watch", &failing])).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed"));
    let out = cli(&b.addr, &["watch", "NOT VALID"]);
    assert_eq!(out.status.code(), Some(2));
}
