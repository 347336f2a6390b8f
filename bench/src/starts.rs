//! The cost of starting a stage: the server's own dequeue-to-start histogram read from
//! `/metrics`, and its baseline, a bare `sh -c true` spawned from tokio here.

use crate::scenario::Target;
use std::time::Instant;

/// Percentiles of a Prometheus histogram read from `/metrics`: the upper bound of
/// the bucket holding each quantile, and the count.
pub async fn stage_start_from_metrics(target: &Target) -> anyhow::Result<(u64, f64, f64, f64)> {
    let text = reqwest::get(format!("http://{}/metrics", target.addr)).await?.text().await?;
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    let mut sum = 0.0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("switchboard_stage_start_seconds_bucket{le=\"") {
            let (le, count) = rest.split_once("\"} ").unwrap_or(("", ""));
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
            buckets.push((le, count.trim().parse().unwrap_or(0)));
        } else if let Some(rest) = line.strip_prefix("switchboard_stage_start_seconds_sum ") {
            sum = rest.trim().parse().unwrap_or(0.0);
        }
    }
    let count = buckets.last().map_or(0, |b| b.1);
    anyhow::ensure!(count > 0, "no stage has started on this server");
    let quantile = |q: f64| {
        let rank = (q * count as f64).ceil() as u64;
        buckets.iter().find(|b| b.1 >= rank).map_or(f64::INFINITY, |b| b.0 * 1000.0)
    };
    Ok((count, quantile(0.5), quantile(0.99), sum / count as f64 * 1000.0))
}

/// The baseline of a stage start: `sh -c true` in its own process group, spawned by
/// tokio here, `n` times: (p50, p99) in ms.
pub async fn bare_spawn(n: usize) -> anyhow::Result<(f64, f64)> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "true"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .spawn()?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        child.wait().await?;
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    Ok((at(0.5), at(0.99)))
}
