//! A real `switchboard agent` process, as the tests start it.
#![allow(dead_code)]

use super::common;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// A real `switchboard agent` process; killed (SIGKILL) on drop.
pub struct AgentProcess {
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
    _work: common::tempdir::TempDir,
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AgentProcess {
    /// SIGKILL, now: it says nothing to the server.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

/// Starts `switchboard agent --server base --name name` with `extra` arguments and the
/// token (if any) in `SWITCHBOARD_TOKEN`.
pub fn start_agent(base: &str, name: &str, extra: &[&str], token: Option<&str>) -> AgentProcess {
    use std::io::{BufRead, BufReader};
    let work = common::tempdir::TempDir::new();
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("SWITCHBOARD_") {
            command.env_remove(var);
        }
    }
    if let Some(t) = token {
        command.env("SWITCHBOARD_TOKEN", t);
    }
    let mut child = command
        .args(["agent", "--server", base, "--name", name, "--metrics-interval-ms", "200", "--work-dir"])
        .arg(work.path())
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn switchboard agent");
    let stderr = child.stderr.take().expect("piped stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line);
        }
    });
    AgentProcess { child, log, _work: work }
}

/// Asserts the terminal holds exactly `line 1` .. `line n`, each once and in order.
pub fn assert_lines_once_in_order(text: &str, n: usize) {
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("line ")).collect();
    let expected: Vec<String> = (1..=n).map(|i| format!("line {i}")).collect();
    if lines != expected {
        let dup = lines.len().saturating_sub(n);
        let first_bad = lines.iter().zip(&expected).position(|(a, b)| a != b);
        panic!("{} lines (expected {n}, {dup} extra); first out of place at {first_bad:?}", lines.len());
    }
}

/// A stage that prints `line 1` .. `line n`, one every `ms` milliseconds.
pub fn counting(n: usize, ms: u32) -> String {
    format!("i=1; while [ $i -le {n} ]; do echo \"line $i\"; i=$((i+1)); sleep {}; done", ms as f64 / 1000.0)
}
