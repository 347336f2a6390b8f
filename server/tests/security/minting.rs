//! Tokens minted over the API and CORS for apps on other origins: an admin's token
//! mints a narrower, shorter one that works for exactly its topics; wider topics, more
//! rights, a non-admin caller, unknown rights and bad lifetimes are refused. A listed
//! origin gets CORS headers on preflight and on the answer (never credentials); an
//! unlisted one gets none, and its cross-site POST is still refused.

use super::{get, post, secure};
use crate::common::{http, start_secure_server_with, token, token_rights};
use serde_json::{json, Value};
use server::auth::Rights;

#[tokio::test]
async fn an_admin_mints_a_narrower_shorter_token_and_nothing_wider() {
    let server = secure().await;
    let backend = token("backend", &["session:*", "user:*", "workflow:*"], &["session:*"], true);
    let (status, minted) = post(&server, "/api/v1/tokens", &backend, json!({"sub":"user-7","sub_topics":["user:7","session:s7"],"pub_topics":["session:s7"],"ttl_s":600})).await;
    assert_eq!(status, 201, "{minted}");
    let user = minted["token"].as_str().unwrap().to_owned();
    let ttl = minted["expires_at"].as_i64().unwrap() - server::hub::now_ms();
    assert!((590_000..=601_000).contains(&ttl), "{ttl}");
    assert_eq!(minted["rights"], json!([]));
    // it reads and writes its own topics, nothing else
    let (status, _) = post(&server, "/api/v1/publish", &user, json!({"topic":"session:s7","event":"hi","data":{}})).await;
    assert_eq!(status, 200);
    let (status, _) = post(&server, "/api/v1/publish", &user, json!({"topic":"session:s8","event":"hi","data":{}})).await;
    assert_eq!(status, 403);
    assert_eq!(get(&server, "/api/v1/topics/user:7/history?since=0", Some(&user)).await.0, 200);
    assert_eq!(get(&server, "/api/v1/topics/user:8/history?since=0", Some(&user)).await.0, 403);
    // and it may mint nothing itself
    let (status, _) = post(&server, "/api/v1/tokens", &user, json!({"sub":"x","sub_topics":["user:7"]})).await;
    assert_eq!(status, 403);

    for (body, status, says) in [
        (json!({"sub":"u","sub_topics":["*"]}), 403, "wider"),
        (json!({"sub":"u","sub_topics":["sess*"]}), 403, "wider"),
        (json!({"sub":"u","pub_topics":["user:1"]}), 403, "wider"),
        (json!({"sub":"u","rights":["agent"]}), 403, "agent"),
        (json!({"sub":"u","rights":["root"]}), 400, "root"),
        (json!({"sub":"u","ttl_s":0}), 400, "ttl_s"),
        (json!({"sub":"","sub_topics":["user:1"]}), 400, "sub"),
        (json!({"sub":"u","sub_topics":["User:1"]}), 400, "User:1"),
        (json!({"sub":"u","scope":"all"}), 400, "scope"),
    ] {
        let (got, answer) = post(&server, "/api/v1/tokens", &backend, body.clone()).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert!(answer["error"]["message"].as_str().unwrap_or("").contains(says), "{body} -> {answer}");
    }
    // never longer than the caller's own
    let short = crate::common::token_with(crate::common::SECRET, "brief", &["*"], &[], true, 60);
    let (_, minted) = post(&server, "/api/v1/tokens", &short, json!({"sub":"u","ttl_s":86_400})).await;
    assert!(minted["expires_at"].as_i64().unwrap() - server::hub::now_ms() <= 61_000, "{minted}");
    let no_admin = token_rights("plain", &["*"], Rights { control: true, ..Rights::NONE });
    let (status, _) = post(&server, "/api/v1/tokens", &no_admin, json!({"sub":"u"})).await;
    assert_eq!(status, 403);
    server.stop().await;
}

#[tokio::test]
async fn a_listed_origin_gets_cors_and_others_do_not() {
    let server = start_secure_server_with(|c| c.auth.allowed_origins = vec!["http://app.example:5173".into()]).await;
    let ops = token("ops", &["*"], &["*"], true);
    let preflight = |origin: &'static str| {
        http().request(reqwest::Method::OPTIONS, server.http_url("/api/v1/publish")).header("origin", origin)
            .header("access-control-request-method", "POST").header("access-control-request-headers", "authorization,content-type").send()
    };
    let resp = preflight("http://app.example:5173").await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "http://app.example:5173");
    assert!(h["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    assert!(h.get("access-control-allow-credentials").is_none(), "no credentials cross-origin");
    let resp = preflight("http://evil.example").await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    // the request itself, as a browser on the listed origin sends it
    let publish = |origin: &'static str| {
        http().post(server.http_url("/api/v1/publish")).bearer_auth(&ops).header("origin", origin).header("sec-fetch-site", "cross-site")
            .json(&json!({"topic":"session:cors","event":"e","data":{}})).send()
    };
    let resp = publish("http://app.example:5173").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], "http://app.example:5173");
    let resp = publish("http://evil.example").await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    server.stop().await;
}
