//! NVIDIA GPUs through NVML. NVML is initialised once; a machine without the driver or
//! a GPU reports no devices, says why once, and never retries in a loop. A device that
//! stops answering mid-run is reported (logged on each change), never a crash.

use app::protocol::GpuSample;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::Nvml;

/// Where GPU figures come from: NVML on a real machine, anything in tests.
pub trait GpuProbe: Send {
    /// Every device's figures, or why none could be read this time.
    fn sample(&mut self) -> Result<Vec<GpuSample>, String>;
}

/// No GPU, no driver: always an empty list.
pub struct NoGpu;

impl GpuProbe for NoGpu {
    fn sample(&mut self) -> Result<Vec<GpuSample>, String> {
        Ok(Vec::new())
    }
}

pub struct NvmlProbe {
    nvml: Nvml,
}

impl GpuProbe for NvmlProbe {
    fn sample(&mut self) -> Result<Vec<GpuSample>, String> {
        let count = self.nvml.device_count().map_err(|e| format!("cannot count GPUs: {e}"))?;
        let mut gpus = Vec::with_capacity(count as usize);
        for index in 0..count {
            let device = match self.nvml.device_by_index(index) {
                Ok(d) => d,
                Err(e) => {
                    // a device that fell off the bus: skip it, keep the others
                    tracing::debug!(index, error = %e, "GPU not readable");
                    continue;
                }
            };
            let memory = device.memory_info().ok();
            gpus.push(GpuSample {
                index,
                name: device.name().unwrap_or_else(|_| format!("GPU {index}")),
                util_percent: device.utilization_rates().ok().map(|u| u.gpu as f64),
                memory_used_bytes: memory.as_ref().map(|m| m.used),
                memory_total_bytes: memory.as_ref().map(|m| m.total),
                temperature_c: device.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
                power_w: device.power_usage().ok().map(|mw| mw as f64 / 1000.0),
            });
        }
        Ok(gpus)
    }
}

/// NVML when it initialises and sees at least one device; otherwise `NoGpu`, with the
/// reason logged once.
pub fn probe() -> Box<dyn GpuProbe> {
    match Nvml::init() {
        Ok(nvml) => match nvml.device_count() {
            Ok(n) if n > 0 => {
                tracing::info!(devices = n, "NVIDIA GPUs found through NVML");
                Box::new(NvmlProbe { nvml })
            }
            Ok(_) => {
                tracing::info!("NVML is present but reports no GPU; metrics say gpu_available: false");
                Box::new(NoGpu)
            }
            Err(e) => {
                tracing::info!(reason = %e, "NVML cannot count GPUs; metrics say gpu_available: false");
                Box::new(NoGpu)
            }
        },
        Err(e) => {
            tracing::info!(reason = %e, "no NVIDIA driver; metrics say gpu_available: false");
            Box::new(NoGpu)
        }
    }
}
