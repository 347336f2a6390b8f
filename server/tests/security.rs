//! Tests that try to get in (docs/security.md lists each and what it gets): every one a
//! real request against the real server. `tokens`: no token, a wrong signature, an
//! expired token, `alg: none`, a token for another topic, a publish without
//! `pub_topics`, a cancel without `control`, a foreign Origin, an artifact path escape,
//! a flood, expiry while connected, the sign-in link, the page's headers. `hosts`: a
//! rebound Host, cross-site forms. `rights`: a control-only token starting a command,
//! server-owned topics. `limits`: a body one byte over each limit, the queue, chat,
//! history budgets, an event at the maximum size. `slow`: half-open requests and the
//! per-address cap. `stages`: a stage printing its environment, a chat flood into a
//! stage that never reads, an HTML artifact. `leaks`: what a narrow token sees.
//! `closing`: a flooding client gets its errors and the close frame.

mod common;

#[path = "security/closing.rs"]
mod closing;
#[path = "security/hosts.rs"]
mod hosts;
#[path = "security/leaks.rs"]
mod leaks;
#[path = "security/limits.rs"]
mod limits;
#[path = "security/minting.rs"]
mod minting;
#[path = "security/rights.rs"]
mod rights;
#[path = "security/slow.rs"]
mod slow;
#[path = "security/stages.rs"]
mod stages;
#[path = "security/tokens.rs"]
mod tokens;

use common::{http, start_secure_server_with, Client, TestServer};
use serde_json::Value;

pub async fn secure() -> TestServer {
    start_secure_server_with(|c| {
        c.engine.pipelines_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pipelines");
    })
    .await
}

/// Opens `/ws?token=…` (or no token) and returns the first thing that happens.
pub async fn ws_with(server: &TestServer, path: &str, token: Option<&str>) -> Client {
    let url = match token {
        Some(t) => server.ws_url(&format!("{path}{}token={t}", if path.contains('?') { "&" } else { "?" })),
        None => server.ws_url(path),
    };
    Client::connect(&url).await
}

pub async fn get(server: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = http().get(server.http_url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub async fn post(server: &TestServer, path: &str, token: &str, body: Value) -> (u16, Value) {
    let resp = http().post(server.http_url(path)).bearer_auth(token).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Waits until run `id` is in `state` (through `token`).
pub async fn wait_state(server: &TestServer, id: &str, state: &str, token: Option<&str>) -> Value {
    for _ in 0..400 {
        let (_, snap) = get(server, &format!("/api/v1/workflows/{id}"), token).await;
        if snap["state"] == state {
            return snap;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("run {id} never reached {state}");
}

/// One raw HTTP/1.1 exchange, exactly as written: (status, the whole response).
pub async fn raw(server: &TestServer, request: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(common::TIMEOUT, s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}
