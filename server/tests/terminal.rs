//! The terminal's clients against the real binary: `switchboard publish` (an event a
//! subscriber then reads; bad JSON and a bad topic named, nothing sent) and `switchboard
//! watch` (a run's coloured terminal on stdout, its stages on stderr, the exit status
//! the run's), across a cut connection and a server killed and started again.

mod common;
#[path = "agents/proxy.rs"]
#[allow(dead_code)]
mod proxy;

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

#[tokio::test]
async fn run_makes_a_command_an_external_run_with_its_exit_code() {
    let data = common::tempdir::TempDir::new();
    let b = common::start_binary(data.path(), &[]);
    let addr = b.addr.clone();
    let script = "echo \"hello from $0\"; echo ::progress 0.5 half; echo ::metric loss=0.5 step=1; echo oops >&2; exit 3";
    let out = tokio::task::spawn_blocking(move || cli(&addr, &["run", "--id", "from-cli", "--", "sh", "-c", script, "it's me"])).await.unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.lines().next().unwrap_or("").ends_with("/workflows/from-cli"), "the URL first: {stderr}");
    assert!(stdout.contains("hello from it's me") && stderr.contains("oops"), "shown here too: {stdout} / {stderr}");
    let snap: Value = http().get(format!("http://{}/api/v1/workflows/from-cli", b.addr)).send().await.unwrap().json().await.unwrap();
    assert_eq!(snap["state"], "failed", "{snap}");
    assert_eq!(snap["stages"][0]["exit_code"], 3);
    assert_eq!(snap["stages"][0]["agent"], "cli");
    let page: Value = http().get(format!("http://{}/api/v1/topics/workflow:from-cli/history?since=0&limit=1000", b.addr)).send().await.unwrap().json().await.unwrap();
    let events = page["events"].as_array().unwrap();
    let text: String = events.iter().filter(|e| e["event"] == "terminal_output").map(|e| e["data"]["output"].as_str().unwrap().to_owned()).collect();
    assert_eq!(text.matches("hello from it's me").count(), 1, "{text}");
    assert!(events.iter().any(|e| e["event"] == "metric_scalar" && e["data"]["name"] == "loss"), "the output protocol applies");

    // Ctrl-C cancels it
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "--id", "cancelled-cli", "--", "sleep", "30"])
        .env("SWITCHBOARD_SERVER", format!("http://{}", b.addr))
        .env_remove("SWITCHBOARD_TOKEN")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        let snap: Value = http().get(format!("http://{}/api/v1/workflows/cancelled-cli", b.addr)).send().await.unwrap().json().await.unwrap();
        if snap["stages"][0]["status"] == "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(130));
    let snap: Value = http().get(format!("http://{}/api/v1/workflows/cancelled-cli", b.addr)).send().await.unwrap().json().await.unwrap();
    assert_eq!(snap["state"], "cancelled", "{snap}");
}

/// `watch` as a child process through `proxy`, its stdout gathered as it comes.
fn watch_through(proxy: &proxy::Proxy, run: &str) -> (std::process::Child, std::sync::Arc<std::sync::Mutex<String>>) {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["watch", run])
        .env("SWITCHBOARD_SERVER", proxy.base())
        .env_remove("SWITCHBOARD_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run switchboard watch");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let into = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            into.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (child, seen)
}

async fn wait_printed(seen: &std::sync::Mutex<String>, needle: &str) {
    for _ in 0..400 {
        if seen.lock().unwrap().contains(needle) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("watch never printed {needle:?}: {}", seen.lock().unwrap());
}

/// Waits until the run's events in the SQLite file (read-only, beside the server) hold
/// `needle`.
async fn wait_committed(data: &std::path::Path, id: &str, needle: &str) {
    use sqlx::ConnectOptions;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(data.join("switchboard.db")).read_only(true);
    let mut conn = options.connect().await.expect("open the database read-only");
    for _ in 0..400 {
        let frames: Vec<String> = sqlx::query_scalar("SELECT frame FROM events WHERE topic = ?").bind(format!("workflow:{id}")).fetch_all(&mut conn).await.unwrap_or_default();
        if frames.iter().any(|f| f.contains(&needle.replace('\n', "\\n"))) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{needle:?} never reached the database");
}

/// What the run's durable log holds as terminal output, in order.
async fn logged_output(addr: &str, id: &str) -> String {
    let url = format!("http://{addr}/api/v1/topics/workflow:{id}/history?since=0&limit=1000");
    let page: Value = http().get(url).send().await.unwrap().json().await.unwrap();
    let events = page["events"].as_array().unwrap();
    events.iter().filter(|e| e["event"] == "terminal_output").map(|e| e["data"]["output"].as_str().unwrap().to_owned()).collect()
}

/// `watch` dials again after its connection is cut and after the server is SIGKILLed and
/// started again (on another port, behind the same address): every line the run's log
/// holds is printed once, in order, and the exit status is the run's.
#[tokio::test]
async fn watch_resumes_across_a_cut_connection_and_a_server_restart() {
    let data = common::tempdir::TempDir::new();
    let proxy = proxy::Proxy::start("127.0.0.1:9".parse().unwrap()).await;
    let host = proxy.addr.to_string();
    let args = ["--allowed-hosts", host.as_str()];
    let start = |addr: String, name: &'static str, lines: u32| async move {
        let run = format!("for i in $(seq 1 {lines}); do echo \"{name} $i\"; sleep 0.05; done");
        let body = json!({"pipeline":{"name":name,"stages":[{"id":"s","run":run}]}});
        let resp = http().post(format!("http://{addr}/api/v1/workflows")).json(&body).send().await.unwrap();
        resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    };

    // a cut connection, and dials refused for a while: the run completes, lines once
    let b = common::start_binary(data.path(), &args);
    proxy.point_at(b.addr.parse().unwrap());
    let id = start(b.addr.clone(), "cut", 60).await;
    let (mut child, seen) = watch_through(&proxy, &id);
    wait_printed(&seen, "cut 10\n").await;
    proxy.refuse(true);
    proxy.cut();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    proxy.refuse(false);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success());
    let expected: String = (1..=60).map(|i| format!("cut {i}\n")).collect();
    assert_eq!(*seen.lock().unwrap(), expected);

    // the server SIGKILLed mid-run and started again: the run ends failed (its stage was
    // running) and watch exits 1; it printed every line the log kept, once, in order (and
    // perhaps the few the crash lost from the log after it had sent them)
    let id = start(b.addr.clone(), "killed", 400).await;
    let (mut child, seen) = watch_through(&proxy, &id);
    wait_printed(&seen, "killed 10\n").await;
    // the writer batches (and the history endpoint answers from memory): kill only once
    // line 10 is in the database file, so the check below is about what watch printed,
    // not about how far the batch had got at the kill
    wait_committed(data.path(), &id, "killed 10\n").await;
    let mut b = b;
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let again = common::start_binary(data.path(), &args);
    proxy.point_at(again.addr.parse().unwrap());
    proxy.cut();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(1), "the run failed: server restarted");
    let kept = logged_output(&again.addr, &id).await;
    assert!(kept.contains("killed 10\n"), "{kept}");
    let printed = seen.lock().unwrap().clone();
    let lines = printed.lines().count();
    let expected: String = (1..=lines).map(|i| format!("killed {i}\n")).collect();
    assert_eq!(printed, expected, "no line twice, none missing");
    assert!(printed.starts_with(&kept), "every kept line: {kept}");
}
