//! DNS rebinding and cross-site requests, auth on and off: a page on `evil.example`
//! whose name points at 127.0.0.1 sends `Host: evil.example:PORT`; a cross-site form
//! posts `application/x-www-form-urlencoded` or `text/plain` with no preflight. Each
//! gets its refusal before any handler runs, and nothing happens to any run.

use super::{get, post, raw, secure, wait_state};
use crate::common::{start_server_with, token, TestServer};
use serde_json::json;

fn request(server: &TestServer, method: &str, path: &str, host: &str, headers: &[&str], body: &str) -> String {
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    let _ = server;
    format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())
}

async fn run_count(server: &TestServer, token: Option<&str>) -> usize {
    get(server, "/api/v1/workflows", token).await.1["workflows"].as_array().map_or(0, |a| a.len())
}

#[tokio::test]
async fn a_rebound_host_is_refused_on_every_door_with_auth_off_and_on() {
    let open = start_server_with(|_| {}).await; // auth off, inline pipelines on: the attack's target
    let secure = secure().await;
    let admin = token("admin", &["*"], &["*"], true);
    for (server, bearer) in [(&open, None), (&secure, Some(admin.as_str()))] {
        let port = server.addr.port();
        let evil = format!("evil.example:{port}");
        let auth = bearer.map(|t| format!("Authorization: Bearer {t}")).unwrap_or_default();
        let auth_h: Vec<&str> = [auth.as_str()].into_iter().filter(|h| !h.is_empty()).collect();
        let inline = r#"{"pipeline":{"name":"pwn","stages":[{"id":"s","run":"touch /tmp/switchboard-pwned"}]}}"#;
        let origin = format!("Origin: http://{evil}");
        let mut post_h = vec!["Content-Type: application/json", origin.as_str()];
        post_h.extend(auth_h.iter());
        let upgrade = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="];
        for req in [
            request(server, "GET", "/", &evil, &auth_h, ""),
            request(server, "GET", "/api/v1/workflows", &evil, &auth_h, ""),
            request(server, "GET", "/healthz", &evil, &[], ""),
            request(server, "POST", "/api/v1/workflows", &evil, &post_h, inline),
            request(server, "GET", "/ws", &evil, &upgrade, ""),
        ] {
            let (status, text) = raw(server, &req).await;
            assert_eq!(status, 421, "{req}\n-> {text}");
            assert!(text.contains("misdirected_request") && text.contains("--allowed-hosts"), "{text}");
        }
        assert_eq!(run_count(server, bearer).await, 0, "nothing was started");
        // the server's own names still work
        for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
            assert_eq!(raw(server, &request(server, "GET", "/healthz", &host, &[], "")).await.0, 200, "{host}");
        }
    }
    open.stop().await;
    secure.stop().await;
}

#[tokio::test]
async fn allowed_hosts_are_answered() {
    let server = start_server_with(|c| c.auth.allowed_hosts = vec!["switchboard.internal".into()]).await;
    let req = request(&server, "GET", "/healthz", "switchboard.internal", &[], "");
    assert_eq!(raw(&server, &req).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_cross_site_form_reaches_no_body_less_endpoint() {
    let server = start_server_with(|c| c.engine.pipelines_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pipelines")).await;
    let (status, run) = post(&server, "/api/v1/workflows", "", json!({"pipeline":{"name":"gate","stages":[
        {"id":"a","run":"echo ready","confirm":true},{"id":"b","run":"sleep 30"}]}})).await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    wait_state(&server, &id, "waiting_confirmation", None).await;
    let host = server.addr.to_string();
    let evil_origin = "Origin: http://evil.example";
    let paths = [
        format!("/api/v1/workflows/{id}/confirm"),
        format!("/api/v1/workflows/{id}/cancel"),
        format!("/api/v1/workflows/{id}/pause"),
        format!("/api/v1/workflows/{id}/resume"),
        format!("/api/v1/workflows/{id}/stages/a/restart"),
        format!("/api/v1/workflows/{id}/chat"),
        "/api/v1/workflows".to_string(),
        "/api/v1/publish".to_string(),
    ];
    let attempts: [(&[&str], &str, u16); 5] = [
        // what a form on another site sends: its Origin, cross-site, a simple type
        (&[evil_origin, "Sec-Fetch-Site: cross-site", "Content-Type: application/x-www-form-urlencoded"], "a=1", 403),
        (&[evil_origin, "Content-Type: text/plain"], "{}", 403),
        // a browser that sends no Origin still says cross-site
        (&["Sec-Fetch-Site: cross-site"], "", 403),
        // and a simple type alone is refused: the API takes JSON or nothing
        (&["Content-Type: text/plain"], r#"{"text":"hi"}"#, 415),
        (&["Content-Type: multipart/form-data; boundary=x"], "--x--", 415),
    ];
    for path in &paths {
        for (headers, body, expected) in attempts {
            let (status, text) = raw(&server, &request(&server, "POST", path, &host, headers, body)).await;
            assert_eq!(status, expected, "{path} with {headers:?}\n-> {text}");
        }
    }
    let (_, snap) = get(&server, &format!("/api/v1/workflows/{id}"), None).await;
    assert_eq!(snap["state"], "waiting_confirmation", "nothing happened to the run: {snap}");
    // the dashboard's own request: same origin, JSON
    let own = format!("Origin: http://{host}");
    let (status, text) = raw(&server, &request(&server, "POST", &format!("/api/v1/workflows/{id}/confirm"), &host, &[own.as_str(), "Sec-Fetch-Site: same-origin", "Content-Type: application/json"], "")).await;
    assert_eq!(status, 200, "{text}");
    wait_state(&server, &id, "running", None).await;
    let (status, _) = raw(&server, &request(&server, "POST", &format!("/api/v1/workflows/{id}/cancel"), &host, &[], "")).await;
    assert_eq!(status, 200, "a body-less POST with no browser headers (curl -X POST) still works");
    server.stop().await;
}
