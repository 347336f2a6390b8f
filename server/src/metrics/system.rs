//! CPU and memory through sysinfo: one `System` kept across samples (CPU usage is a
//! difference between two readings), refreshing only CPU usage and memory.

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SystemFigures {
    pub cpu_percent: f64,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
}

/// Where CPU and memory figures come from.
pub trait SystemProbe: Send {
    fn sample(&mut self) -> SystemFigures;
}

pub struct SysinfoProbe {
    system: Option<System>,
}

impl SysinfoProbe {
    pub fn new() -> SysinfoProbe {
        let kind = RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing().with_usage())
            .with_memory(MemoryRefreshKind::nothing().with_ram());
        let system = System::new_with_specifics(kind)
            .map_err(|e| tracing::warn!(error = %e, "cannot read CPU and memory; reporting zeros"))
            .ok();
        SysinfoProbe { system }
    }
}

impl Default for SysinfoProbe {
    fn default() -> Self {
        SysinfoProbe::new()
    }
}

impl SystemProbe for SysinfoProbe {
    fn sample(&mut self) -> SystemFigures {
        let Some(system) = self.system.as_mut() else {
            return SystemFigures { cpu_percent: 0.0, memory_total_bytes: 0, memory_available_bytes: 0 };
        };
        system.refresh_cpu_usage();
        system.refresh_memory();
        SystemFigures {
            cpu_percent: system.global_cpu_usage() as f64,
            memory_total_bytes: system.total_memory(),
            memory_available_bytes: system.available_memory(),
        }
    }
}
