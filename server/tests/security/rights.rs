//! Each right is its own: `control` acts on runs but starts nothing, `run` starts only
//! named pipelines, `exec` (any shell command) needs the server to allow inline
//! pipelines too; and no token, whatever its `pub_topics`, writes a server-owned topic.

use super::{get, post, secure, ws_with};
use crate::common::{start_secure_server_with, start_server_with, token, token_rights};
use serde_json::json;
use server::auth::Rights;
use server::config::Switch;

fn inline() -> serde_json::Value {
    json!({"pipeline":{"name":"cmd","stages":[{"id":"s","run":"echo hi"}]}})
}

#[tokio::test]
async fn a_control_only_token_starts_no_command_and_run_starts_only_named_pipelines() {
    let server = secure().await; // inline pipelines on (a test setting)
    let control = token_rights("ops", &["*"], Rights { control: true, ..Rights::NONE });
    let run = token_rights("ci", &["*"], Rights { run: true, ..Rights::NONE });
    let exec = token_rights("dev", &["*"], Rights { exec: true, ..Rights::NONE });

    let (status, body) = post(&server, "/api/v1/workflows", &control, inline()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("`exec`"), "{body}");
    let (status, body) = post(&server, "/api/v1/workflows", &control, json!({"pipeline":"training-demo"})).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("`run`"), "{body}");

    let (status, body) = post(&server, "/api/v1/workflows", &run, inline()).await;
    assert_eq!(status, 403, "`run` is not `exec`: {body}");
    let (status, started) = post(&server, "/api/v1/workflows", &run, json!({"pipeline":"render-demo"})).await;
    assert_eq!(status, 201, "{started}");
    // `run` alone may not act on what it started
    let id = started["id"].as_str().unwrap();
    assert_eq!(post(&server, &format!("/api/v1/workflows/{id}/cancel"), &run, json!({})).await.0, 403);
    assert_eq!(post(&server, &format!("/api/v1/workflows/{id}/cancel"), &control, json!({})).await.0, 200);

    let (status, body) = post(&server, "/api/v1/workflows", &exec, inline()).await;
    assert_eq!(status, 201, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn inline_pipelines_are_off_unless_the_server_turns_them_on() {
    let server = start_secure_server_with(|c| c.engine.inline_pipelines = Switch::Off).await;
    let operator = token("root", &["*"], &["*"], true);
    let (status, body) = post(&server, "/api/v1/workflows", &operator, inline()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("SWITCHBOARD_INLINE_PIPELINES"), "{body}");
    server.stop().await;
    // and with auth off, the shipped default still refuses them
    let open = start_server_with(|c| c.engine.inline_pipelines = Switch::Off).await;
    let (status, _) = post(&open, "/api/v1/workflows", "", inline()).await;
    assert_eq!(status, 403);
    open.stop().await;
}

#[tokio::test]
async fn no_publish_reaches_a_server_owned_topic() {
    let server = secure().await;
    let everything = token("producer", &["*"], &["*"], true);
    let mut c = ws_with(&server, "/ws", Some(&everything)).await;
    c.expect_type("hello").await;
    for topic in ["workflow:abc", "coordinator", "agents", "agent:local", "metrics"] {
        let (status, body) = post(&server, "/api/v1/publish", &everything, json!({"topic":topic,"event":"fake","data":{}})).await;
        assert_eq!((status, body["error"]["code"].clone()), (403, json!("forbidden")), "{topic}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("written only by the server"), "{body}");
        let r = c.request(json!({"type":"publish","topic":topic,"event":"fake","data":{}}), "p").await;
        assert_eq!(r["code"], "forbidden", "{topic}: {r}");
        let (_, history) = get(&server, &format!("/api/v1/topics/{topic}/history"), Some(&everything)).await;
        let fakes = history["events"].as_array().unwrap().iter().filter(|e| e["event"] == "fake").count();
        assert_eq!(fakes, 0, "{topic}");
    }
    // a topic of one's own still works
    let (status, _) = post(&server, "/api/v1/publish", &everything, json!({"topic":"session:1","event":"e","data":{}})).await;
    assert_eq!(status, 200);
    server.stop().await;
}
