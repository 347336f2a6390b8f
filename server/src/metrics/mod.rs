//! The metrics sampler: every `metrics_interval` one `metrics` event on the `metrics`
//! topic with CPU, memory, every NVIDIA GPU and the job queue (PROTOCOL.md section 5).
//! The probes sit behind traits so the arithmetic is tested with 0, 1 or 8 fake GPUs.

pub mod gpu;
pub mod system;

use crate::hub::Hub;
use app::protocol::{names, CurrentTask, GpuSample, GpuType, MetricsSample, METRICS_TOPIC};
use gpu::GpuProbe;
use std::sync::Arc;
use std::time::Duration;
use system::{SystemFigures, SystemProbe};
use tokio_util::sync::CancellationToken;

/// The job queue as the metrics bar shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueFigures {
    pub pending: u64,
    pub running: u64,
    pub current_task: Option<CurrentTask>,
}

/// Where queue figures come from (the job engine).
pub trait QueueProbe: Send + Sync {
    fn figures(&self) -> QueueFigures;
}

/// Until a job engine is attached: an empty queue.
pub struct EmptyQueue;

impl QueueProbe for EmptyQueue {
    fn figures(&self) -> QueueFigures {
        QueueFigures::default()
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// One `metrics` event from raw figures. GPU averages are over the devices that
/// reported the figure; with no device they are null.
pub fn figures(system: SystemFigures, gpus: Vec<GpuSample>, queue: QueueFigures) -> MetricsSample {
    let used = system.memory_total_bytes.saturating_sub(system.memory_available_bytes);
    let gpu_percent = mean(gpus.iter().filter_map(|g| g.util_percent));
    let gpu_memory_percent = mean(gpus.iter().filter_map(|g| match (g.memory_used_bytes, g.memory_total_bytes) {
        (Some(u), Some(t)) if t > 0 => Some(percent(u, t)),
        _ => None,
    }));
    let available = !gpus.is_empty();
    MetricsSample {
        cpu_percent: system.cpu_percent.clamp(0.0, 100.0),
        memory_percent: percent(used, system.memory_total_bytes),
        memory_used_bytes: used,
        memory_total_bytes: system.memory_total_bytes,
        gpu_available: available,
        gpu_type: if available { GpuType::Cuda } else { GpuType::None },
        gpu_percent,
        gpu_memory_percent,
        gpus,
        pending_count: queue.pending,
        running_count: queue.running,
        current_task: queue.current_task,
    }
}

pub struct Sampler {
    pub system: Box<dyn SystemProbe>,
    pub gpu: Box<dyn GpuProbe>,
    pub queue: Arc<dyn QueueProbe>,
    /// The last GPU error, so a failing device is logged when it changes, not each tick.
    last_gpu_error: Option<String>,
}

impl Sampler {
    pub fn new(system: Box<dyn SystemProbe>, gpu: Box<dyn GpuProbe>, queue: Arc<dyn QueueProbe>) -> Sampler {
        Sampler { system, gpu, queue, last_gpu_error: None }
    }

    /// The real probes: sysinfo and NVML (or no GPU).
    pub fn for_this_machine(queue: Arc<dyn QueueProbe>) -> Sampler {
        Sampler::new(Box::new(system::SysinfoProbe::new()), gpu::probe(), queue)
    }

    pub fn sample(&mut self) -> MetricsSample {
        let system = self.system.sample();
        let gpus = match self.gpu.sample() {
            Ok(gpus) => {
                if self.last_gpu_error.take().is_some() {
                    tracing::info!("GPUs readable again");
                }
                gpus
            }
            Err(e) => {
                if self.last_gpu_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, "GPU figures unavailable");
                    self.last_gpu_error = Some(e);
                }
                Vec::new()
            }
        };
        figures(system, gpus, self.queue.figures())
    }

    /// Publishes a sample every `every` until `shutdown`. Probes may block (NVML calls
    /// take milliseconds), so each sample is taken on the blocking pool.
    pub async fn run(self, hub: Hub, every: Duration, shutdown: CancellationToken) {
        let mut sampler = Some(self);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(mut s) = sampler.take() else { return };
            let Ok((s, sample)) = tokio::task::spawn_blocking(move || {
                let sample = s.sample();
                (s, sample)
            })
            .await
            else {
                tracing::error!("the metrics sampler panicked; no more samples");
                return;
            };
            sampler = Some(s);
            // the current task names a run: only those who may see it are told which
            let published = match sample.current_task.as_ref().and_then(|t| app::protocol::TopicKind::Workflow.topic(&t.id).ok()) {
                Some(scope) => {
                    let redacted = MetricsSample { current_task: None, ..sample.clone() };
                    hub.publish_scoped(METRICS_TOPIC, names::METRICS, &sample, &scope, &redacted).await
                }
                None => hub.publish(METRICS_TOPIC, names::METRICS, &sample).await,
            };
            if let Err(e) = published {
                tracing::error!(error = %e, "cannot publish metrics");
            }
        }
    }
}

#[cfg(test)]
mod tests;
