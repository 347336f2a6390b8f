//! Each agent's machine over time: the last few minutes of its CPU, memory and every
//! GPU's utilisation, from the `agent_status` samples its agent sends, for the
//! sparklines of the agents page.

use crate::protocol::AgentStatus;
use std::collections::{BTreeMap, VecDeque};

/// Samples kept per figure (an agent samples every 2 s by default: 4 minutes).
pub const POINTS: usize = 120;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MachineHistory {
    pub cpu: VecDeque<f64>,
    pub memory: VecDeque<f64>,
    /// Per GPU index: its name and its utilisation samples.
    pub gpus: BTreeMap<u32, (String, VecDeque<f64>)>,
    /// When the last sample taken was taken (its agent's `last_seen`): a status that
    /// says nothing new about the machine adds no point.
    last_at: Option<i64>,
}

fn push(series: &mut VecDeque<f64>, value: f64) {
    if series.len() == POINTS {
        series.pop_front();
    }
    series.push_back(value);
}

impl MachineHistory {
    /// Takes in one status: a point per figure when it carries a new machine sample.
    pub fn record(&mut self, status: &AgentStatus) {
        let Some(m) = &status.machine else { return };
        if status.last_seen.is_some() && status.last_seen == self.last_at {
            return;
        }
        self.last_at = status.last_seen;
        push(&mut self.cpu, m.cpu_percent);
        push(&mut self.memory, m.memory_percent);
        for g in &m.gpus {
            let entry = self.gpus.entry(g.index).or_insert_with(|| (g.name.clone(), VecDeque::new()));
            push(&mut entry.1, g.util_percent.unwrap_or(0.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AgentMetrics, AgentState, GpuSample, MachineMetrics};

    fn status(at: i64, cpu: f64, gpu: Option<f64>) -> AgentStatus {
        AgentStatus {
            agent_name: "gpu-1".into(),
            status: AgentState::Idle,
            capabilities: vec![],
            current_task: None,
            metrics: AgentMetrics { message_count: 0, error_count: 0, error_rate: 0.0, avg_execution_time: 0.0, is_healthy: true },
            last_seen: Some(at),
            running: 0,
            concurrency: Some(1),
            machine: Some(MachineMetrics {
                cpu_percent: cpu,
                memory_percent: 10.0,
                memory_used_bytes: 1,
                memory_total_bytes: 10,
                gpus: gpu
                    .map(|u| GpuSample {
                        index: 0,
                        name: "H200".into(),
                        util_percent: Some(u),
                        memory_used_bytes: None,
                        memory_total_bytes: None,
                        temperature_c: None,
                        power_w: None,
                    })
                    .into_iter()
                    .collect(),
            }),
        }
    }

    #[test]
    fn a_point_per_new_sample_bounded() {
        let mut h = MachineHistory::default();
        h.record(&status(1, 5.0, Some(90.0)));
        h.record(&status(1, 5.0, Some(90.0))); // the same sample again (a busy/idle change)
        h.record(&status(2, 7.0, Some(80.0)));
        assert_eq!(h.cpu, [5.0, 7.0]);
        assert_eq!(h.gpus[&0].1, [90.0, 80.0]);
        for i in 0..1000 {
            h.record(&status(10 + i, 1.0, None));
        }
        assert_eq!(h.cpu.len(), POINTS);
    }
}
