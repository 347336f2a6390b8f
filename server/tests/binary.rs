//! The walking skeleton, end to end through the real `switchboard` binary: it starts
//! on an ephemeral port, greets with `hello`, answers `ping`, reports bad messages
//! without dropping the connection, closes on `close`, shuts down gracefully on
//! SIGTERM (open sockets get 1001), and explains bad configuration.

mod common;

use common::{Binary, Client};
use serde_json::json;
use std::process::Command;

/// Starts the binary on port 0 and reads the address it logs.
fn start_binary() -> (Binary, common::tempdir::TempDir) {
    let data = common::tempdir::TempDir::new();
    (common::start_binary(data.path(), &[]), data)
}

#[tokio::test]
async fn hello_ping_bad_message_close_and_sigterm() {
    let (mut server, _data) = start_binary();
    let health: serde_json::Value =
        common::http().get(format!("http://{}/healthz", server.addr)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");

    let mut c = Client::connect(&format!("ws://{}/ws", server.addr)).await;
    let hello = c.expect_type("hello").await;
    assert_eq!(hello["v"], 1);
    assert!(hello["client_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(hello["server_ts"].as_i64().unwrap() > 1_600_000_000_000);
    assert_eq!(hello["heartbeat_ms"], 10_000);
    assert_eq!(hello["limits"], json!({"max_subscriptions":32,"max_message_bytes":65536,"rate_per_min":100}));

    c.send_json(json!({"type":"ping","ts":123,"id":"p1"})).await;
    let pong = c.expect_type("pong").await;
    assert_eq!((pong["ts"].clone(), pong["id"].clone()), (json!(123), json!("p1")));
    assert!(pong["server_ts"].as_i64().is_some());

    c.send_text("this is not json").await;
    let err = c.expect_type("error").await;
    assert_eq!(err["code"], "bad_json");
    assert_eq!(err["retryable"], false);
    assert_eq!(err["original_message"], "this is not json");

    c.send_json(json!({"type":"dance","id":7})).await;
    let err = c.expect_type("error").await;
    assert_eq!((err["code"].clone(), err["id"].clone()), (json!("unknown_type"), json!(7)));

    // still open after bad messages
    c.send_json(json!({"type":"ping"})).await;
    assert_eq!(c.expect_type("pong").await["ts"], serde_json::Value::Null);

    c.send_json(json!({"type":"close"})).await;
    assert_eq!(c.expect_close().await, 1000);

    // an open socket is told the server is going away
    let mut open = Client::connect(&format!("ws://{}/ws", server.addr)).await;
    open.expect_type("hello").await;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(server.child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    assert_eq!(open.expect_close().await, 1001);
    let status = tokio::task::spawn_blocking(move || server.child.wait()).await.unwrap().unwrap();
    // (dropping `server` now only reaps an already exited process)
    assert!(status.success(), "exits cleanly after SIGTERM: {status}");
}

fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run switchboard");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_flags_and_env_values_are_named() {
    let (ok, err) = run_to_exit(&["--port", "http"], &[]);
    assert!(!ok && err.contains("http"), "{err}");
    let (ok, err) = run_to_exit(&[], &[("SWITCHBOARD_HEARTBEAT_MS", "soon")]);
    assert!(!ok && err.contains("soon"), "{err}");
    let (ok, err) = run_to_exit(&["--bind", "0.0.0.0", "--auth", "off"], &[]);
    assert!(!ok && err.contains("0.0.0.0") && err.contains("loopback"), "{err}");
    let (ok, err) = run_to_exit(&["--auth", "none"], &[]);
    assert!(!ok && err.contains("none"), "{err}");
    let (ok, err) = run_to_exit(&["--worker-threads", "0"], &[]);
    assert!(!ok && err.contains("--worker-threads") && err.contains('0'), "{err}");
    let (ok, err) = run_to_exit(&["--help"], &[]);
    assert!(ok, "{err}");
}

#[tokio::test]
async fn worker_threads_are_as_many_as_asked() {
    for (args, env, want) in [(&["--worker-threads", "1"][..], &[][..], 1), (&[][..], &[("SWITCHBOARD_WORKER_THREADS", "3")][..], 3)] {
        let data = common::tempdir::TempDir::new();
        let all: Vec<&str> = ["--auth", "off"].iter().chain(args).copied().collect();
        let server = common::start_binary_env(data.path(), &all, env);
        let health = common::http().get(format!("http://{}/healthz", server.addr)).send().await.unwrap();
        assert!(health.status().is_success());
        let said = format!("worker_threads={want}");
        // the address is handed over just before its line is kept
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !server.log.lock().unwrap().iter().any(|l| l.contains("listening on")) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let log = server.log.lock().unwrap().join("\n");
        assert!(log.contains(&said), "{args:?} {env:?}: {log}");
    }
}

#[test]
fn an_occupied_port_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (ok, err) = run_to_exit(&["--port", &port], &[]);
    assert!(!ok, "must fail");
    assert!(err.contains("already in use") && err.contains(&port), "{err}");
}

fn run_stdout(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env_remove("SWITCHBOARD_AUTH_SECRET")
        .env_remove("SWITCHBOARD_AUTH_SECRET_FILE")
        .envs(env.iter().copied())
        .output()
        .expect("run switchboard");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Secure defaults: auth is on without any setting (a secret is created on the first
/// run, owner-only, and kept); off only when asked, loudly, and never on a
/// non-loopback address; a configured secret that is weak is named, never printed.
#[tokio::test]
async fn auth_is_on_by_default_and_off_only_explicitly_on_loopback() {
    let (ok, _, err) = run_stdout(&["--bind", "0.0.0.0", "--auth", "off"], &[]);
    assert!(!ok && err.contains("--auth off") && err.contains("--bind"), "{err}");
    let (ok, _, err) = run_stdout(&[], &[("SWITCHBOARD_AUTH_SECRET", "short")]);
    assert!(!ok && err.contains("SWITCHBOARD_AUTH_SECRET") && err.contains("5 bytes") && !err.contains("short"), "{err}");
    let (ok, _, err) = run_stdout(&[], &[("SWITCHBOARD_AUTH_SECRET", &"z".repeat(48))]);
    assert!(!ok && err.contains("repeated") && !err.contains("zzzz"), "{err}");
    let (ok, _, err) = run_stdout(&["--auth-secret-file", "/no/such/file"], &[]);
    assert!(!ok && err.contains("/no/such/file"), "{err}");

    // no setting at all: auth on, with a secret made for this data folder
    let data = common::tempdir::TempDir::new();
    let first = common::start_binary_env(data.path(), &[], &[]);
    first.log_line("created a signing secret (first run)");
    first.log_line("auth is on: sign a browser in with");
    let file = data.path().join("auth-secret");
    let secret = std::fs::read_to_string(&file).unwrap();
    assert!(secret.trim().len() >= 64 && secret.trim().chars().all(|c| c.is_ascii_hexdigit()), "32 random bytes, as hex");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let resp = common::http().get(format!("http://{}/api/v1/workflows", first.addr)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let mut c = Client::connect(&format!("ws://{}/ws", first.addr)).await;
    assert!(matches!(c.next().await, Err(common::Closed::Code(1008, _))));
    drop(first);
    let again = common::start_binary_env(data.path(), &[], &[]);
    again.log_line("signing secret loaded");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), secret, "kept across restarts");
    drop(again);

    let data = common::tempdir::TempDir::new();
    let open = common::start_binary_env(data.path(), &["--auth", "off"], &[]);
    open.log_line("auth is OFF");
    assert!(!data.path().join("auth-secret").exists(), "no secret made when auth is off");
    drop(open);
    let data = common::tempdir::TempDir::new();
    let secret = "0123456789abcdef0123456789abcdef";
    let anywhere = common::start_binary_env(data.path(), &["--bind", "0.0.0.0"], &[("SWITCHBOARD_AUTH_SECRET", secret)]);
    anywhere.log_line("auth is on: sign a browser in with");
    assert!(anywhere.addr.starts_with("0.0.0.0:"), "{}", anywhere.addr);
}

/// `switchboard token create` mints a token the server takes, with the same secret.
#[tokio::test]
async fn the_token_verb_mints_what_the_server_accepts() {
    let secret = "0123456789abcdef0123456789abcdef-cli";
    let env = [("SWITCHBOARD_AUTH_SECRET", secret)];
    let (ok, token, err) = run_stdout(&["token", "create", "--sub", "alice", "--sub-topics", "workflow:*,metrics", "--ttl", "1h"], &env);
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert!(err.contains("alice") && err.contains("valid until"), "{err}");

    let data = common::tempdir::TempDir::new();
    let server = common::start_binary_env(data.path(), &[], &env);
    let mut c = Client::connect(&format!("ws://{}/ws?token={token}", server.addr)).await;
    c.expect_type("hello").await;
    let ok = c.request(json!({"type":"subscribe","topic":"metrics"}), "m").await;
    assert_eq!(ok["type"], "subscribed");
    let no = c.request(json!({"type":"subscribe","topic":"agents"}), "a").await;
    assert_eq!(no["code"], "forbidden");

    let empty = common::tempdir::TempDir::new();
    let (ok, _, err) = run_stdout(&["token", "create", "--sub", "alice", "--data-dir", &empty.path().display().to_string()], &[]);
    assert!(!ok && err.contains("no signing secret") && err.contains("auth-secret"), "{err}");
    let (ok, _, err) = run_stdout(&["token", "create", "--sub", "a", "--sub-topics", "Workflow:*"], &env);
    assert!(!ok && err.contains("Workflow:*"), "{err}");
    let (ok, _, err) = run_stdout(&["token", "create", "--sub", "a", "--ttl", "forever"], &env);
    assert!(!ok && err.contains("forever"), "{err}");
}

/// The README's way: start the server with no setting, then mint an operator token
/// from the secret it made in its data folder, and use it.
#[tokio::test]
async fn the_token_verb_finds_the_secret_the_server_made() {
    let data = common::tempdir::TempDir::new();
    let server = common::start_binary_env(data.path(), &[], &[]);
    server.log_line("created a signing secret");
    let dir = data.path().display().to_string();
    let (ok, token, err) = run_stdout(&["token", "create", "--sub", "me", "--operator", "--data-dir", &dir], &[]);
    assert!(ok, "{err}");
    let resp = common::http()
        .post(format!("http://{}/api/v1/workflows", server.addr))
        .bearer_auth(token.trim())
        .json(&json!({"pipeline": "no-such-pipeline"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404, "past auth and the `run` right, to the engine");
}
