use super::*;

fn sys(cpu: f64, total: u64, available: u64) -> SystemFigures {
    SystemFigures { cpu_percent: cpu, memory_total_bytes: total, memory_available_bytes: available }
}

fn gpu(index: u32, util: f64, used: u64, total: u64) -> GpuSample {
    GpuSample {
        index,
        name: format!("Fake GPU {index}"),
        util_percent: Some(util),
        memory_used_bytes: Some(used),
        memory_total_bytes: Some(total),
        temperature_c: Some(40.0 + index as f64),
        power_w: Some(100.0),
    }
}

#[test]
fn memory_percent_is_total_minus_available() {
    let m = figures(sys(12.5, 16_000, 4_000), vec![], QueueFigures::default());
    assert_eq!(m.memory_used_bytes, 12_000);
    assert_eq!(m.memory_percent, 75.0);
    assert_eq!(m.cpu_percent, 12.5);
}

#[test]
fn no_gpu_means_nulls_and_an_empty_list() {
    let m = figures(sys(1.0, 1, 1), vec![], QueueFigures::default());
    assert!(!m.gpu_available);
    assert_eq!(m.gpu_type, GpuType::None);
    assert_eq!((m.gpu_percent, m.gpu_memory_percent), (None, None));
    assert!(m.gpus.is_empty());
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["gpu_type"], "none");
    assert!(json["gpu_percent"].is_null() && json["gpu_memory_percent"].is_null());
}

#[test]
fn one_gpu() {
    let m = figures(sys(1.0, 1, 1), vec![gpu(0, 30.0, 20, 80)], QueueFigures::default());
    assert!(m.gpu_available);
    assert_eq!(m.gpu_type, GpuType::Cuda);
    assert_eq!(m.gpu_percent, Some(30.0));
    assert_eq!(m.gpu_memory_percent, Some(25.0));
}

#[test]
fn eight_gpus_are_averaged() {
    let gpus: Vec<_> = (0..8).map(|i| gpu(i, i as f64 * 10.0, i as u64 * 10, 100)).collect();
    let m = figures(sys(1.0, 1, 1), gpus, QueueFigures::default());
    assert_eq!(m.gpus.len(), 8);
    assert_eq!(m.gpu_percent, Some(35.0));
    assert_eq!(m.gpu_memory_percent, Some(35.0));
}

#[test]
fn missing_device_figures_are_left_out_of_averages() {
    let mut partial = gpu(1, 0.0, 0, 0);
    partial.util_percent = None;
    partial.memory_total_bytes = Some(0);
    let m = figures(sys(1.0, 1, 1), vec![gpu(0, 50.0, 50, 100), partial], QueueFigures::default());
    assert_eq!(m.gpu_percent, Some(50.0));
    assert_eq!(m.gpu_memory_percent, Some(50.0));
}

#[test]
fn out_of_range_cpu_is_clamped_and_zero_memory_is_not_nan() {
    let m = figures(sys(100.3, 0, 0), vec![], QueueFigures::default());
    assert_eq!(m.cpu_percent, 100.0);
    assert_eq!(m.memory_percent, 0.0);
}

struct FlakyGpu(u32);

impl GpuProbe for FlakyGpu {
    fn sample(&mut self) -> Result<Vec<GpuSample>, String> {
        self.0 += 1;
        if self.0 == 2 {
            Err("GPU has fallen off the bus".into())
        } else {
            Ok(vec![gpu(0, 10.0, 1, 2)])
        }
    }
}

struct FixedSystem;

impl SystemProbe for FixedSystem {
    fn sample(&mut self) -> SystemFigures {
        sys(5.0, 10, 5)
    }
}

struct Queue;

impl QueueProbe for Queue {
    fn figures(&self) -> QueueFigures {
        QueueFigures {
            pending: 3,
            running: 2,
            current_task: Some(CurrentTask { id: "w1".into(), name: "train".into(), progress: 0.5 }),
        }
    }
}

#[test]
fn a_gpu_that_disappears_is_reported_not_a_crash() {
    let mut s = Sampler::new(Box::new(FixedSystem), Box::new(FlakyGpu(0)), Arc::new(Queue));
    assert!(s.sample().gpu_available);
    let gone = s.sample();
    assert!(!gone.gpu_available, "no devices readable this tick");
    assert_eq!(gone.cpu_percent, 5.0, "the rest of the sample is still there");
    assert!(s.sample().gpu_available, "and back");
}

#[test]
fn queue_figures_are_carried() {
    let mut s = Sampler::new(Box::new(FixedSystem), Box::new(gpu::NoGpu), Arc::new(Queue));
    let m = s.sample();
    assert_eq!((m.pending_count, m.running_count), (3, 2));
    assert_eq!(m.current_task.unwrap().name, "train");
}

#[test]
fn the_real_probes_never_fail_on_this_machine() {
    let mut s = Sampler::for_this_machine(Arc::new(EmptyQueue));
    let m = s.sample();
    assert!(m.memory_total_bytes > 0);
    assert!((0.0..=100.0).contains(&m.cpu_percent));
    // the queue is empty until a job engine is attached
    assert_eq!((m.pending_count, m.running_count, m.current_task), (0, 0, None));
}
