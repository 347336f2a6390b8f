//! A Switchboard server started by the load generator as a child process, on loopback,
//! with its own data directory: the scenarios that kill and restart it need the process.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client whose every request gives up after 10 s: a server that accepts and
/// never answers fails a scenario rather than hanging it.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default()
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts the server on `data` on a free port; returns once `/healthz` answers, and how
/// long that took.
pub async fn start(bin: &Path, data: &Path, extra: &[&str]) -> anyhow::Result<(Server, Duration)> {
    start_on(bin, data, free_port()?, extra).await
}

/// Starts the server on `data` and `port` (a restart keeps the address its clients know).
pub async fn start_on(bin: &Path, data: &Path, port: u16, extra: &[&str]) -> anyhow::Result<(Server, Duration)> {
    let started = Instant::now();
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--log", "warn", "--auth", "off", "--inline-pipelines", "on"])
        .args(["--max-connections-per-ip", "100000", "--max-queued-runs", "100000"])
        .args(extra)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let server = Server { child, addr: format!("127.0.0.1:{port}") };
    let http = reqwest::Client::new();
    for _ in 0..2_000 {
        if let Ok(r) = http.get(format!("http://{}/healthz", server.addr)).send().await {
            if r.status().is_success() {
                return Ok((server, started.elapsed()));
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    anyhow::bail!("the server did not become healthy")
}
