//! Tokens at every door: missing, forged, expired, `alg: none`, for other topics,
//! without the rights; expiry while connected; the sign-in link; the page's headers.

use super::{get, post, secure, ws_with};
use crate::common::{self, http, start_secure_server_with, token, token_with, Client, TestServer, SECRET};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

async fn expect_refused(server: &TestServer, token: Option<&str>, why: &str) {
    let mut c = ws_with(server, "/ws", token).await;
    match c.next().await {
        Err(common::Closed::Code(code, reason)) => {
            assert_eq!(code, 1008, "{reason}");
            assert!(reason.starts_with("unauthorized") && reason.contains(why), "{reason:?} should say {why:?}");
        }
        other => panic!("expected close 1008, got {other:?}"),
    }
}

#[tokio::test]
async fn no_token_bad_signature_expired_and_alg_none_are_refused_everywhere() {
    let server = secure().await;
    let forged = token_with("another-secret-0123456789abcdef0123456789", "eve", &["*"], &["*"], true, 3600);
    let expired = token_with(SECRET, "old", &["*"], &["*"], true, -10);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let body = b64.encode(json!({"sub":"eve","exp":4_000_000_000u64,"sub_topics":["*"],"control":true}).to_string());
    let alg_none = format!("{}.{body}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#));

    expect_refused(&server, None, "no access token").await;
    expect_refused(&server, Some(&forged), "signature").await;
    expect_refused(&server, Some(&expired), "expired").await;
    expect_refused(&server, Some(&alg_none), "").await;

    for t in [None, Some(forged.as_str()), Some(expired.as_str()), Some(alg_none.as_str())] {
        for path in ["/api/v1/workflows", "/api/v1/stats", "/api/v1/topics/metrics/history", "/metrics", "/api/v1/session"] {
            let (status, body) = get(&server, path, t).await;
            assert_eq!(status, 401, "{path} with {t:?}: {body}");
            if path != "/metrics" {
                assert_eq!(body["error"]["code"], "unauthorized", "{path}");
            }
        }
    }
    // the health check stays open: it tells nothing but that the server is up
    assert_eq!(get(&server, "/healthz", None).await.0, 200);
    // and the real token gets in
    let good = token("ann", &["*"], &["*"], true);
    let mut c = ws_with(&server, "/ws", Some(&good)).await;
    c.expect_type("hello").await;
    assert_eq!(get(&server, "/api/v1/workflows", Some(&good)).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_token_reaches_only_its_topics_auto_subscriptions_included() {
    let server = secure().await;
    let t = token("ann", &["workflow:*", "session:abc"], &[], false);
    let mut c = ws_with(&server, "/ws?session_id=abc", Some(&t)).await;
    c.expect_type("hello").await;
    assert_eq!(c.expect_type("subscribed").await["topic"], "session:abc");
    let r = c.request(json!({"type":"subscribe","topic":"metrics"}), "m").await;
    assert_eq!((r["type"].clone(), r["code"].clone()), (json!("error"), json!("forbidden")));
    let r = c.request(json!({"type":"subscribe","topic":"workflow:42"}), "w").await;
    assert_eq!(r["type"], "subscribed");

    // auto-subscriptions are checked too: the connection stays, the topic is refused
    let mut a = ws_with(&server, "/ws/agent/local", Some(&t)).await;
    a.expect_type("hello").await;
    let e = a.expect_type("error").await;
    assert_eq!(e["code"], "forbidden");
    let mut u = ws_with(&server, "/ws?user_id=bob", Some(&t)).await;
    u.expect_type("hello").await;
    assert_eq!(u.expect_type("error").await["code"], "forbidden");
    let pong = u.request(json!({"type":"ping"}), "p").await;
    assert_eq!(pong["type"], "pong", "still open");

    // over HTTP: another topic's history is 403
    assert_eq!(get(&server, "/api/v1/topics/metrics/history", Some(&t)).await.0, 403);
    assert_eq!(get(&server, "/api/v1/topics/workflow:1/history", Some(&t)).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn publishing_needs_pub_topics_and_acting_needs_control() {
    let server = secure().await;
    let admin = token("admin", &["*"], &["*"], true);
    let reader = token("reader", &["*"], &[], false);
    let (status, run) = post(&server, "/api/v1/workflows", &admin, json!({"pipeline":{"name":"long","stages":[{"id":"s","run":"sleep 30"}]}})).await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();

    // publish: WebSocket and HTTP
    let mut c = ws_with(&server, "/ws", Some(&reader)).await;
    c.expect_type("hello").await;
    let r = c.request(json!({"type":"publish","topic":"session:x","event":"e","data":{}}), "p").await;
    assert_eq!(r["code"], "forbidden");
    let (status, body) = post(&server, "/api/v1/publish", &reader, json!({"topic":"session:x","event":"e","data":{}})).await;
    assert_eq!((status, body["error"]["code"].clone()), (403, json!("forbidden")));

    // control: cancel, confirm, commands, chat, and starting a run
    for msg in [
        json!({"type":"control","action":"cancel","workflow_id":id}),
        json!({"type":"confirm","workflow_id":id}),
        json!({"type":"command","command":"cancel_run","workflow_id":id}),
        json!({"type":"chat","workflow_id":id,"text":"hi"}),
    ] {
        let r = c.request(msg.clone(), "c").await;
        assert_eq!(r["code"], "forbidden", "{msg}");
    }
    for path in [format!("/api/v1/workflows/{id}/cancel"), format!("/api/v1/workflows/{id}/stages/s/restart")] {
        assert_eq!(post(&server, &path, &reader, json!({})).await.0, 403, "{path}");
    }
    assert_eq!(post(&server, &format!("/api/v1/workflows/{id}/chat"), &reader, json!({"text":"x"})).await.0, 403);
    assert_eq!(post(&server, "/api/v1/workflows", &reader, json!({"pipeline":"training-demo"})).await.0, 403);
    let (_, snap) = get(&server, &format!("/api/v1/workflows/{id}"), Some(&reader)).await;
    assert_eq!(snap["state"], "running", "nothing happened to the run");

    // the admin may; chat is from the token's subject
    let mut a = ws_with(&server, &format!("/ws/workflow/{id}"), Some(&admin)).await;
    a.expect_type("hello").await;
    a.expect_type("subscribed").await;
    // no id: the event comes before an ack would, and is what is checked
    a.send_json(json!({"type":"chat","text":"hello"})).await;
    let chat = loop {
        let ev = a.expect_type("event").await;
        if ev["event"] == "chat" {
            break ev;
        }
    };
    assert_eq!(chat["data"]["from"], "admin");
    assert_eq!(post(&server, &format!("/api/v1/workflows/{id}/cancel"), &admin, json!({})).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_foreign_origin_is_refused_at_the_upgrade() {
    let server = start_secure_server_with(|c| c.auth.allowed_origins = vec!["https://ops.example.com".into()]).await;
    let t = token("ann", &["*"], &[], false);
    let connect = |origin: &'static str| {
        let mut req = server.ws_url(&format!("/ws?token={t}")).into_client_request().unwrap();
        req.headers_mut().insert("origin", HeaderValue::from_static(origin));
        tokio_tungstenite::connect_async(req)
    };
    match connect("http://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let (mut ok, _) = connect("https://ops.example.com").await.expect("a listed origin");
    use futures::StreamExt;
    let hello = ok.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("hello"));
    // the dashboard's own origin is always allowed
    let own: &'static str = Box::leak(format!("http://{}", server.addr).into_boxed_str());
    assert!(connect(own).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn artifacts_need_a_token_that_sees_the_run_and_never_leave_its_folder() {
    let server = secure().await;
    let admin = token("admin", &["*"], &["*"], true);
    let (_, run) = post(&server, "/api/v1/workflows", &admin, json!({"pipeline":{"name":"art","stages":[{"id":"s","run":"echo hi > \"$SWITCHBOARD_ARTIFACTS/a.txt\"; echo ::artifact a.txt"}]}})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        if get(&server, &format!("/api/v1/workflows/{id}"), Some(&admin)).await.1["state"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = |name: &str| server.http_url(&format!("/api/v1/workflows/{id}/artifacts/{name}"));
    let fetch = |name: String, t: Option<String>| {
        let mut req = http().get(url(&name));
        if let Some(t) = t {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(fetch("a.txt".into(), None).await, 401);
    assert_eq!(fetch("a.txt".into(), Some(token("other", &["workflow:someone-else"], &[], false))).await, 403);
    assert_eq!(fetch("a.txt".into(), Some(admin.clone())).await, 200);
    for escape in ["..%2f..%2fswitchboard.db", "%2e%2e/%2e%2e/switchboard.db", "..%5c..%5cswitchboard.db"] {
        let status = fetch(escape.into(), Some(admin.clone())).await;
        assert!(status == 400 || status == 404, "{escape}: {status}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_flood_from_one_client_does_not_stop_another() {
    let server = start_secure_server_with(|c| {
        c.http.http_rate_per_s = 50;
        c.hub.rate_per_min = 60;
        c.hub.rate_burst = 5;
        c.hub.abuse_limit = 10;
    })
    .await;
    let (flood, calm) = (token("flood", &["*"], &["*"], true), token("calm", &["*"], &["*"], true));
    let mut limited = 0;
    for _ in 0..200 {
        let (status, body) = get(&server, "/api/v1/stats", Some(&flood)).await;
        if status == 429 {
            assert_eq!(body["error"]["code"], "rate_limited");
            limited += 1;
        }
    }
    assert!(limited >= 100, "the flood was throttled ({limited} of 200 refused)");
    assert_eq!(get(&server, "/api/v1/stats", Some(&calm)).await.0, 200, "the other client is not");

    // the same on the WebSocket: the flooding connection is cut, the other one answers
    let mut f = ws_with(&server, "/ws", Some(&flood)).await;
    f.expect_type("hello").await;
    let mut c = ws_with(&server, "/ws", Some(&calm)).await;
    c.expect_type("hello").await;
    for _ in 0..40 {
        f.send_json(json!({"type":"ping"})).await;
    }
    assert_eq!(f.expect_close().await, 1008);
    assert_eq!(c.request(json!({"type":"ping"}), "p").await["type"], "pong");
    server.stop().await;
}

#[tokio::test]
async fn a_token_that_expires_while_connected_closes_the_socket_at_expiry() {
    let server = secure().await;
    let t = token_with(SECRET, "brief", &["*"], &[], false, 2);
    let mut c = ws_with(&server, "/ws", Some(&t)).await;
    c.expect_type("hello").await;
    let started = std::time::Instant::now();
    match c.next_within(Duration::from_secs(5)).await {
        Some(Err(common::Closed::Code(code, reason))) => {
            assert_eq!((code, reason.as_str()), (1008, "token expired"));
            assert!(started.elapsed() < Duration::from_millis(2_900), "closed at expiry, not later");
        }
        other => panic!("expected close 1008 at expiry, got {other:?}"),
    }
    server.stop().await;
}

/// The Jupyter way, through the real binary: it prints a sign-in link; opening it sets
/// a strict, HttpOnly session cookie; the link works once; the cookie opens the API
/// and the socket.
#[tokio::test]
async fn the_printed_sign_in_link_works_once_and_sets_a_strict_http_only_cookie() {
    let data = common::tempdir::TempDir::new();
    let b = common::start_binary_env(data.path(), &[], &[("SWITCHBOARD_AUTH_SECRET", SECRET)]);
    let line = b.log_line("sign a browser in with");
    let link = line.split("sign a browser in with ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    assert!(link.starts_with(&format!("http://{}/login?code=", b.addr)), "{link}");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let base = format!("http://{}", b.addr);
    assert_eq!(client.get(format!("{base}/login?code=guess")).send().await.unwrap().status(), 401);
    let resp = client.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in ["switchboard_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    assert_eq!(client.get(&link).send().await.unwrap().status(), 401, "the link works once");
    b.log_line("the next sign-in link is");

    // the cookie opens the API, and /session gives the page a short-lived token
    let session_cookie = cookie.split(';').next().unwrap().to_owned();
    let session: Value =
        client.get(format!("{base}/api/v1/session")).header("cookie", &session_cookie).send().await.unwrap().json().await.unwrap();
    assert_eq!((session["auth"].clone(), session["control"].clone()), (json!(true), json!(true)));
    let access = session["token"].as_str().unwrap();
    let mut c = Client::connect(&format!("ws://{}/ws?token={access}", b.addr)).await;
    c.expect_type("hello").await;
    // the socket also takes the cookie itself
    let mut req = format!("ws://{}/ws", b.addr).into_client_request().unwrap();
    req.headers_mut().insert("cookie", HeaderValue::from_str(&session_cookie).unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    use futures::StreamExt;
    assert!(ws.next().await.unwrap().unwrap().to_text().unwrap().contains("hello"));
}

#[tokio::test]
async fn pages_carry_a_csp_with_their_script_nonce_and_the_other_headers() {
    let server = secure().await;
    let resp = http().get(server.http_url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "pages themselves are public: the data behind them is not");
    let h = resp.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
    let nonce = csp.split("'nonce-").nth(1).and_then(|r| r.split('\'').next()).expect("a nonce in the CSP").to_owned();
    let html = resp.text().await.unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "the hydration script carries it");
    assert!(csp.contains("'wasm-unsafe-eval'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let other = http().get(server.http_url("/")).send().await.unwrap();
    assert_ne!(other.headers()["content-security-policy"].to_str().unwrap(), csp, "a new nonce per page");
    let api = http().get(server.http_url("/api/v1/stats")).send().await.unwrap();
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    server.stop().await;
}
