//! Nothing leaks to a narrow token: client details in stats need `admin`, pipeline
//! `env` values are never shown, and the aggregate topics (`coordinator`, `agents`,
//! `metrics`) name a run only to a token that may see it; session and access tokens
//! are told apart.

use super::{get, post, wait_state, ws_with};
use crate::common::{start_secure_server_with, token, token_rights};
use serde_json::{json, Value};
use server::auth::Rights;
use std::time::Duration;

#[tokio::test]
async fn a_narrow_token_sees_only_what_it_may() {
    let pipelines = crate::common::tempdir::TempDir::new();
    std::fs::write(
        pipelines.path().join("keyed.toml"),
        "name = \"keyed\"\n[[stages]]\nid = \"s\"\nrun = \"sleep 20\"\nenv = { API_KEY = \"sk-live-secret\" }\n",
    )
    .unwrap();
    let dir = pipelines.path().to_path_buf();
    let server = start_secure_server_with(move |c| {
        c.engine.pipelines_dir = dir;
        c.hub.metrics_interval_ms = 200;
    })
    .await;
    let admin = token("admin", &["*"], &["*"], true);
    let watcher = token_rights("grafana", &["metrics", "coordinator", "agents", "workflow:not-this-one"], Rights::NONE);

    let mut admin_ws = ws_with(&server, "/ws?user_id=ann&session_id=s1", Some(&admin)).await;
    admin_ws.expect_type("hello").await;
    let (_, stats) = get(&server, "/api/v1/stats", Some(&watcher)).await;
    assert_eq!(stats["active_connections"], 1);
    assert_eq!(stats["clients"], json!([]), "no user ids, session ids or subscriptions for a narrow token");
    let (_, stats) = get(&server, "/api/v1/stats", Some(&admin)).await;
    assert_eq!(stats["clients"][0]["user_id"], "ann", "the admin sees them");

    let (_, list) = get(&server, "/api/v1/pipelines", Some(&watcher)).await;
    let text = list.to_string();
    assert!(text.contains("API_KEY") && !text.contains("sk-live-secret"), "{text}");

    // a run the watcher may not see: its id is on no aggregate topic the watcher reads
    let mut watch = ws_with(&server, "/ws", Some(&watcher)).await;
    watch.expect_type("hello").await;
    for topic in ["coordinator", "agents", "metrics"] {
        let r = watch.request(json!({"type":"subscribe","topic":topic}), topic).await;
        assert_eq!(r["type"], "subscribed", "{r}");
    }
    let (status, run) = post(&server, "/api/v1/workflows", &admin, json!({"pipeline":"keyed"})).await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    wait_state(&server, &id, "running", Some(&admin)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    let (mut summaries, mut busy, mut samples) = (0, 0, 0);
    while tokio::time::Instant::now() < deadline {
        let Some(Ok(ev)) = watch.next_within(Duration::from_millis(500)).await else { continue };
        assert!(!ev.to_string().contains(&id), "the watcher was told of run {id}: {ev}");
        match (ev["topic"].as_str(), ev["event"].as_str()) {
            (Some("coordinator"), Some("workflow_status")) => summaries += 1,
            (Some("agents"), Some("agent_status")) if ev["data"]["status"] == "busy" => busy += 1,
            (Some("metrics"), _) if ev["data"]["running_count"] == 1 => {
                assert_eq!(ev["data"]["current_task"], Value::Null);
                samples += 1;
            }
            _ => {}
        }
    }
    assert!(summaries > 0 && busy > 0 && samples > 0, "the events still came, redacted ({summaries}, {busy}, {samples})");
    let (_, agents) = get(&server, "/api/v1/agents", Some(&watcher)).await;
    assert_eq!(agents["agents"][0]["current_task"], Value::Null, "{agents}");
    let (_, agents) = get(&server, "/api/v1/agents", Some(&admin)).await;
    assert!(agents["agents"][0]["current_task"].as_str().unwrap().starts_with(&id), "{agents}");
    let (_, history) = get(&server, "/api/v1/topics/coordinator/history?limit=1000", Some(&watcher)).await;
    assert!(!history.to_string().contains(&id), "nor in the history");
    let (_, workflows) = get(&server, "/api/v1/workflows", Some(&watcher)).await;
    assert_eq!(workflows["workflows"], json!([]));
    server.stop().await;
}

/// A token of the test secret with a chosen `typ` and `nbf`.
fn minted(typ: Option<&str>, nbf_in_s: Option<u64>) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = server::auth::Claims {
        sub: "someone".into(),
        exp: now + 600,
        iat: None,
        nbf: nbf_in_s.map(|s| now + s),
        typ: typ.map(String::from),
        sub_topics: vec!["*".into()],
        pub_topics: vec![],
        rights: Rights::OPERATOR,
    };
    server::auth::keys::Keys::new(crate::common::SECRET.as_bytes()).unwrap().mint(&claims).unwrap()
}

#[tokio::test]
async fn a_session_token_is_no_bearer_token_and_nbf_is_honoured() {
    let server = start_secure_server_with(|_| {}).await;
    let (status, body) = get(&server, "/api/v1/workflows", Some(&minted(Some("session"), None))).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("session token"), "{body}");
    let (status, body) = get(&server, "/api/v1/workflows", Some(&minted(None, Some(300)))).await;
    assert_eq!(status, 401, "nbf is honoured: {body}");
    assert_eq!(get(&server, "/api/v1/workflows", Some(&minted(Some("access"), None))).await.0, 200);
    server.stop().await;
}

/// The topic list names only the topics a token may subscribe to, and needs a token.
#[tokio::test]
async fn the_topic_list_shows_a_token_only_its_own_topics() {
    let server = start_secure_server_with(|_| {}).await;
    let admin = token("admin", &["*"], &["*"], true);
    for topic in ["session:mine", "session:theirs", "user:mine"] {
        let (status, _) = post(&server, "/api/v1/publish", &admin, json!({"topic": topic, "event": "e", "data": {}})).await;
        assert_eq!(status, 200);
    }
    let narrow = token_rights("mine", &["session:mine", "user:mine"], Rights::NONE);
    let (status, list) = get(&server, "/api/v1/topics", Some(&narrow)).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["topics"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["session:mine", "user:mine"], "{list}");
    assert_eq!(list["total"], 2, "the count is of what it may see too");
    let (status, _) = get(&server, "/api/v1/topics", None).await;
    assert_eq!(status, 401);
    server.stop().await;
}
