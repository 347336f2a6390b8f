//! Storage never lies: the real binary with its data folder on a small tmpfs that is
//! then filled. Writes fail, are retried and counted, `/healthz` says `degraded`, the
//! stage blocks (its pipe fills) rather than anything being dropped; when space comes
//! back, everything queued is written and the run completes with every event once, in
//! order; a new run asked for meanwhile is refused (503, retryable) and taken after;
//! and the process, which had failed writes, records no clean shutdown, so the next
//! start gives the run's topic a new epoch.

mod common;

use common::http;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A tmpfs of `size`, unmounted on drop; None where mounting is not allowed.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = std::env::temp_dir().join(format!("switchboard-small-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(SmallDisk(dir))
    }

    /// Writes zeros until the disk is full; returns the filler's path.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The stage's own count of lines written (read again if caught mid-write).
fn progress(path: &Path) -> u64 {
    for _ in 0..100 {
        if let Some(n) = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    0
}

async fn health(base: &str) -> (u16, Value) {
    let resp = http().get(format!("{base}/healthz")).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn a_full_disk_blocks_the_stage_then_everything_is_written_once() {
    let Some(disk) = SmallDisk::mount("16m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN); this test fills a real filesystem");
        return;
    };
    let data = disk.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // far more than the queue, the read-ahead and the pipe's buffer hold together
    const LINES: u64 = 20_000;
    let marker = std::env::temp_dir().join(format!("switchboard-progress-{:x}", rand::random::<u64>()));
    let b = common::start_binary(&data, &["--db-queue", "100", "--durable-window-events", "50"]);
    let base = format!("http://{}", b.addr);
    let script = format!(
        "for i in $(seq 1 {LINES}); do echo \"::metric v=$i step=$i\"; echo $i > {}; if [ $i = 500 ]; then sleep 1; fi; done",
        marker.display()
    );
    let run: Value = http()
        .post(format!("{base}/api/v1/workflows"))
        .json(&json!({"pipeline":{"name":"steady","stages":[{"id":"emit","run":script}]}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = run["id"].as_str().unwrap().to_owned();
    while progress(&marker) < 500 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let filler = disk.fill();
    // failing writes are told, and retried
    let mut degraded = Value::Null;
    for _ in 0..100 {
        let (status, body) = health(&base).await;
        if status == 503 {
            degraded = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(degraded["status"], "degraded", "{degraded}");
    assert!(degraded["storage"]["error"].as_str().unwrap().contains("full"), "{degraded}");
    // a new run is refused, honestly: its 201 could not mean it is stored
    let refused = http().post(format!("{base}/api/v1/workflows")).json(&json!({"pipeline":{"name":"late","stages":[{"id":"s","run":"true"}]}})).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("not taking writes") && message.contains("full") && message.contains("not started"), "{message}");
    // the producer waits: once the queue, the read-ahead and the pipe are full, the
    // stage stops making progress, well before its end
    let mut stalled = None;
    for _ in 0..20 {
        let before = progress(&marker);
        tokio::time::sleep(Duration::from_secs(1)).await;
        if progress(&marker) == before {
            stalled = Some(before);
            break;
        }
    }
    let stalled = stalled.expect("the stage is blocked on its pipe");
    assert!(stalled < LINES / 2, "{stalled}");
    let metrics = http().get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let failures: f64 = metrics.lines().find(|l| l.starts_with("switchboard_storage_write_failures_total")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap();
    assert!(failures >= 1.0, "{metrics}");
    // space again: everything queued is written, the stage goes on and completes
    std::fs::remove_file(&filler).unwrap();
    let mut state = Value::Null;
    for _ in 0..300 {
        let s: Value = http().get(format!("{base}/api/v1/workflows/{id}")).send().await.unwrap().json().await.unwrap();
        state = s["state"].clone();
        if state == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "completed", "progress {} health {:?} log {:?}", progress(&marker), health(&base).await, b.log.lock().unwrap().iter().rev().take(5).collect::<Vec<_>>());
    assert_eq!(health(&base).await.0, 200, "healthy again");
    let listed: Value = http().get(format!("{base}/api/v1/workflows")).send().await.unwrap().json().await.unwrap();
    assert!(!listed.to_string().contains("\"late\""), "the refused run is nowhere: {listed}");
    let again = http().post(format!("{base}/api/v1/workflows")).json(&json!({"pipeline":{"name":"late","stages":[{"id":"s","run":"true"}]}})).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 201, "taken once writes succeed");
    let mut values = Vec::new();
    let (mut since, mut seqs) = (0u64, Vec::new());
    loop {
        let page: Value = http().get(format!("{base}/api/v1/topics/workflow:{id}/history?since={since}&limit=1000")).send().await.unwrap().json().await.unwrap();
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            break;
        }
        for e in events {
            seqs.push(e["seq"].as_u64().unwrap());
            if e["event"] == "metric_scalar" {
                values.push(e["data"]["value"].as_f64().unwrap() as u64);
            }
        }
        since = *seqs.last().unwrap();
    }
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "gapless");
    assert_eq!(values, (1..=LINES).collect::<Vec<_>>(), "every line once, in order");
    let epoch = http().get(format!("{base}/api/v1/workflows/{id}")).send().await.unwrap().json::<Value>().await.unwrap()["epoch"].clone();
    // no clean-shutdown marker after failed writes: the next start renews the epoch
    let mut b = b;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(b.child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    b.child.wait().unwrap();
    let b = common::start_binary(&data, &[]);
    b.log_line("did not stop cleanly");
    let after: Value = http().get(format!("http://{}/api/v1/workflows/{id}", b.addr)).send().await.unwrap().json().await.unwrap();
    assert_ne!(after["epoch"], epoch, "a new epoch after a process that lost writes for a while");
    assert_eq!(after["state"], "completed");
    let _ = std::fs::remove_file(&marker);
}
