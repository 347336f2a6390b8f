//! Helpers shared by the integration tests: start the real server (in-process on port
//! 0, or the real binary), and a WebSocket client whose every receive has a timeout,
//! so a broken server fails a test instead of hanging it.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use server::auth::Rights;
use server::config::Config;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A server running inside the test process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    _data: tempdir::TempDir,
}

impl TestServer {
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn connect(&self, path: &str) -> Client {
        Client::connect(&self.ws_url(path)).await
    }

    /// A client that has read its `hello`.
    pub async fn client(&self) -> Client {
        let mut c = self.connect("/ws").await;
        c.expect_type("hello").await;
        c
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(TIMEOUT, self.task).await;
    }
}

pub async fn start_server() -> TestServer {
    start_server_with(|_| {}).await
}

/// The signing secret of the servers started with auth on.
pub const SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

/// Starts the real server on 127.0.0.1:0 with the defaults, changed by `tweak`.
pub async fn start_server_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    start_in(tempdir::TempDir::new(), tweak).await
}

/// The same, with auth on (the default), the secret in a file as a deployment would
/// have it, and inline pipelines on (the test servers' own setting).
pub async fn start_secure_server_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let data = tempdir::TempDir::new();
    let secret = data.path().join("secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("write the secret");
    start_in(data, move |c| {
        c.auth.mode = server::config::Switch::On;
        c.auth.auth_secret_file = Some(secret);
        tweak(c);
    })
    .await
}

/// A token signed with `secret` (HS256), valid for `ttl_s` seconds (negative: expired),
/// with `rights`.
pub fn token_signed(secret: &str, sub: &str, sub_topics: &[&str], pub_topics: &[&str], rights: Rights, ttl_s: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = server::auth::Claims {
        sub: sub.into(),
        exp: (now + ttl_s).max(0) as u64,
        iat: None,
        nbf: None,
        typ: None,
        sub_topics: sub_topics.iter().map(|s| s.to_string()).collect(),
        pub_topics: pub_topics.iter().map(|s| s.to_string()).collect(),
        rights,
    };
    server::auth::keys::Keys::new(secret.as_bytes()).unwrap().mint(&claims).unwrap()
}

/// The same, with an operator's rights or none.
pub fn token_with(secret: &str, sub: &str, sub_topics: &[&str], pub_topics: &[&str], operator: bool, ttl_s: i64) -> String {
    let rights = if operator { Rights::OPERATOR } else { Rights::NONE };
    token_signed(secret, sub, sub_topics, pub_topics, rights, ttl_s)
}

/// A token of the test servers' secret, valid for an hour: an operator's or no rights.
pub fn token(sub: &str, sub_topics: &[&str], pub_topics: &[&str], operator: bool) -> String {
    token_with(SECRET, sub, sub_topics, pub_topics, operator, 3600)
}

/// A token of the test servers' secret with exactly `rights`, valid for an hour.
pub fn token_rights(sub: &str, sub_topics: &[&str], rights: Rights) -> String {
    token_signed(SECRET, sub, sub_topics, &[], rights, 3600)
}

async fn start_in(data: tempdir::TempDir, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = Config::for_tests(data.path().to_path_buf());
    tweak(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        server::run(config, listener, token).await.expect("server runs");
    });
    TestServer { addr, shutdown, task, _data: data }
}

/// A minimal temporary folder, removed on drop.
pub mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> TempDir {
            let path = std::env::temp_dir().join(format!("switchboard-test-{:016x}", rand::random::<u64>()));
            std::fs::create_dir_all(&path).expect("temp dir");
            TempDir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a receive ended when it did not yield a JSON message.
#[derive(Debug, PartialEq)]
pub enum Closed {
    Code(u16, String),
    NoFrame,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        Client { ws }
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// The next JSON text message, or how the connection ended.
    pub async fn next(&mut self) -> Result<Value, Closed> {
        self.next_within(TIMEOUT).await.expect("a message within the timeout")
    }

    /// None when nothing arrived within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Option<Result<Value, Closed>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next()).await.ok()?;
            return Some(match msg {
                Some(Ok(Message::Text(t))) => Ok(serde_json::from_str(t.as_str()).expect("server sends JSON")),
                Some(Ok(Message::Close(Some(f)))) => Err(Closed::Code(u16::from(f.code), f.reason.to_string())),
                Some(Ok(Message::Close(None))) => Err(Closed::Code(1005, String::new())),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("server sent a binary frame"),
                Some(Err(_)) | None => Err(Closed::NoFrame),
            });
        }
    }

    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Ok(v) => v,
            Err(c) => panic!("expected a message, connection ended: {c:?}"),
        }
    }

    pub async fn expect_type(&mut self, kind: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], kind, "expected {kind}, got {v}");
        v
    }

    /// Reads until the server closes; returns the close code.
    pub async fn expect_close(&mut self) -> u16 {
        loop {
            match self.next().await {
                Ok(_) => continue,
                Err(Closed::Code(code, _)) => return code,
                Err(Closed::NoFrame) => panic!("connection dropped without a close frame"),
            }
        }
    }

    /// Sends and waits for the reply carrying `id`, skipping events in between.
    pub async fn request(&mut self, mut msg: Value, id: &str) -> Value {
        msg["id"] = Value::String(id.into());
        self.send_json(msg).await;
        loop {
            let v = self.recv().await;
            if v["id"] == id {
                return v;
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })).await;
    }
}

/// A plain HTTP client.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(TIMEOUT).build().expect("http client")
}

/// The real `switchboard` binary, started on port 0 with `args`; killed on drop.
pub struct Binary {
    pub child: std::process::Child,
    pub addr: String,
    /// Every line it has written on stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    /// The first logged line containing `needle`, waiting up to 10 s for it.
    pub fn log_line(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(std::time::Instant::now() < deadline, "the server never logged {needle:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts the binary on a free port with its data in `data`, auth off and inline
/// pipelines on (the tests that are not about auth), and reads the address it logs.
pub fn start_binary(data: &std::path::Path, args: &[&str]) -> Binary {
    let mut all = vec!["--auth", "off", "--inline-pipelines", "on"];
    all.extend_from_slice(args);
    start_binary_env(data, &all, &[])
}

/// The binary on its shipped defaults (auth on), `args` and `env` added; nothing of the
/// caller's own `SWITCHBOARD_*` environment.
pub fn start_binary_env(data: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Binary {
    use std::io::{BufRead, BufReader};
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SWITCHBOARD_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .args(["--port", "0", "--log", "info"])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn switchboard");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
            }
            lines.lock().unwrap().push(line);
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(20)).expect("the server logs its address");
    Binary { child, addr, log }
}
