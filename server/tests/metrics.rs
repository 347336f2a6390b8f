//! The sampler publishes `metrics` every interval with every field of PROTOCOL.md
//! section 5, and the topic's history lets a new page draw the recent past at once.

mod common;

use common::start_server_with;
use serde_json::json;

const FIELDS: [&str; 12] = [
    "cpu_percent",
    "memory_percent",
    "memory_used_bytes",
    "memory_total_bytes",
    "gpu_available",
    "gpu_type",
    "gpu_percent",
    "gpu_memory_percent",
    "gpus",
    "pending_count",
    "running_count",
    "current_task",
];

#[tokio::test]
async fn two_samples_one_interval_apart_with_every_field() {
    let server = start_server_with(|c| c.hub.metrics_interval_ms = 300).await;
    let mut c = server.client().await;
    c.request(json!({"type":"subscribe","topic":"metrics"}), "m").await;
    let a = c.expect_type("event").await;
    let b = c.expect_type("event").await;
    for ev in [&a, &b] {
        assert_eq!((ev["topic"].clone(), ev["event"].clone()), (json!("metrics"), json!("metrics")));
        let data = ev["data"].as_object().unwrap();
        for field in FIELDS {
            assert!(data.contains_key(field), "{field} missing from {ev}");
        }
        let cpu = data["cpu_percent"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&cpu));
        assert!(data["memory_total_bytes"].as_u64().unwrap() > 0);
        // this machine has no NVIDIA driver: the event says so instead of failing
        if data["gpu_available"] == false {
            assert_eq!((data["gpu_type"].clone(), data["gpus"].clone()), (json!("none"), json!([])));
            assert!(data["gpu_percent"].is_null() && data["gpu_memory_percent"].is_null());
        }
        // no job engine yet: the queue is empty
        assert_eq!((data["pending_count"].clone(), data["running_count"].clone()), (json!(0), json!(0)));
        assert!(data["current_task"].is_null());
    }
    assert_eq!(b["seq"].as_u64().unwrap(), a["seq"].as_u64().unwrap() + 1);
    let gap = b["ts"].as_i64().unwrap() - a["ts"].as_i64().unwrap();
    assert!((150..=1_000).contains(&gap), "one interval apart, got {gap} ms");

    // a late subscriber with since=0 gets the samples already taken
    let mut late = server.client().await;
    let sub = late.request(json!({"type":"subscribe","topic":"metrics","since":0}), "m").await;
    assert_eq!(sub["recovered"], true);
    let first = late.expect_type("event").await;
    assert_eq!(first["seq"], 1, "history starts at the first sample");
    server.stop().await;
}
