//! What a stage gets: an environment without the signing secret, its file's path or
//! any variable the operator denies; a stdin for chat that never blocks its run when
//! it does not read; and its artifacts served inert (HTML is a download, never a page
//! in this origin).

use super::{get, post, wait_state};
use crate::common::{self, http, start_server_with};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn terminal_text(base: &str, id: &str, token: &str) -> String {
    let url = format!("{base}/api/v1/topics/workflow:{id}/history?since=0&limit=1000");
    let page: Value = http().get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    page["events"].as_array().unwrap().iter().filter(|e| e["event"] == "terminal_output").map(|e| e["data"]["output"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_stage_printing_its_environment_shows_no_secret() {
    let data = common::tempdir::TempDir::new();
    let secret_file = data.path().join("signing-secret");
    std::fs::write(&secret_file, "file-secret-0123456789abcdef0123456789abcdef\n").unwrap();
    let file_arg = secret_file.display().to_string();
    let env_secret = "env-secret-0123456789abcdef0123456789abcdef";
    let b = common::start_binary_env(
        data.path(),
        &["--inline-pipelines", "on", "--auth-secret-file", &file_arg, "--stage-env-deny", "MY_*,*SECRET*"],
        &[("SWITCHBOARD_AUTH_SECRET", env_secret), ("MY_API_KEY", "sk-live-abc"), ("DB_PASSWORD", "hunter2"), ("KEEP_ME", "visible")],
    );
    let base = format!("http://{}", b.addr);
    let token = common::token_with(env_secret, "root", &["*"], &["*"], true, 600);
    let resp = http().post(format!("{base}/api/v1/workflows")).bearer_auth(&token)
        .json(&json!({"pipeline":{"name":"env","stages":[{"id":"s","run":"env; echo ::notice done"}]}})).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let mut text = String::new();
    for _ in 0..100 {
        text = terminal_text(&base, &id, &token).await;
        if text.contains("KEEP_ME") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains("KEEP_ME=visible") && text.contains("PATH="), "the rest of the environment is kept: {text}");
    assert!(text.contains("SWITCHBOARD_WORKFLOW_ID="), "and the stage's own variables are set");
    for leak in [env_secret, "file-secret", "signing-secret", &file_arg, "SWITCHBOARD_AUTH_SECRET", "sk-live-abc", "MY_API_KEY"] {
        assert!(!text.contains(leak), "the stage saw {leak:?}:\n{text}");
    }
    assert!(text.contains("DB_PASSWORD=hunter2"), "the operator's own list replaced the defaults");
}

#[tokio::test]
async fn a_chat_flood_into_a_stage_that_never_reads_does_not_wedge_its_run() {
    let server = start_server_with(|c| c.engine.cancel_grace_s = 1).await;
    let (_, run) = post(&server, "/api/v1/workflows", "", json!({"pipeline":{"name":"deaf","stages":[{"id":"s","stdin":"chat","run":"sleep 60"}]}})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    wait_state(&server, &id, "running", None).await;
    let line = "z".repeat(16_000);
    let started = Instant::now();
    for _ in 0..300 {
        // 4.8 MB in all: far past a pipe's 64 KiB and the 64-line queue
        let (status, _) = post(&server, &format!("/api/v1/workflows/{id}/chat"), "", json!({"text": line})).await;
        assert_eq!(status, 200);
    }
    assert!(started.elapsed() < Duration::from_secs(20), "chat never waited on the stage");
    let cancelled = Instant::now();
    assert_eq!(post(&server, &format!("/api/v1/workflows/{id}/cancel"), "", json!({})).await.0, 200);
    wait_state(&server, &id, "cancelled", None).await;
    assert!(cancelled.elapsed() < Duration::from_secs(5), "the cancel was handled at once");
    let (_, history) = get(&server, &format!("/api/v1/topics/workflow:{id}/history?limit=1000"), None).await;
    let notices: Vec<&Value> = history["events"].as_array().unwrap().iter().filter(|e| e["event"] == "log_line" && e["data"]["message"].as_str().unwrap_or("").contains("chat not delivered")).collect();
    assert!(!notices.is_empty(), "the drop is told, once a second at most");
    assert!(notices.len() <= 25, "{} notices", notices.len());
    server.stop().await;
}

#[tokio::test]
async fn artifacts_are_inert_downloads_but_images_show_inline() {
    let server = start_server_with(|_| {}).await;
    let script = "cd \"$SWITCHBOARD_ARTIFACTS\"; echo '<script>alert(document.cookie)</script>' > page.html; echo '<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>' > pic.svg; printf '\\211PNG\\r\\n\\032\\n' > img.png; echo hi > notes.txt; for f in page.html pic.svg img.png notes.txt; do echo ::artifact $f; done";
    let (_, run) = post(&server, "/api/v1/workflows", "", json!({"pipeline":{"name":"art","stages":[{"id":"s","run":script}]}})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    wait_state(&server, &id, "completed", None).await;
    for (name, inline) in [("page.html", false), ("pic.svg", false), ("notes.txt", false), ("img.png", true)] {
        let resp = http().get(server.http_url(&format!("/api/v1/workflows/{id}/artifacts/{name}"))).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{name}");
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{name}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("sandbox") && csp.contains("default-src 'none'"), "{name}: {csp}");
        let disposition = h.get("content-disposition").map(|v| v.to_str().unwrap().to_owned());
        if inline {
            assert_eq!(disposition, None, "{name} shows in the gallery");
            assert_eq!(h["content-type"], "image/png");
        } else {
            assert_eq!(disposition, Some(format!("attachment; filename=\"{name}\"")), "{name}");
        }
    }
    server.stop().await;
}
