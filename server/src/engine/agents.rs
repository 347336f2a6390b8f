//! The agent registry. The local executor is the first agent: its status (idle or
//! busy), capabilities and counters are published on `agents` and `agent:local`.

use crate::hub::Hub;
use app::protocol::{names, AgentMetrics, AgentState, AgentStatus, TopicKind, AGENTS_TOPIC};
use std::sync::Mutex;

pub const LOCAL_AGENT: &str = "local";

#[derive(Debug, Default)]
struct Counters {
    running: u64,
    current_task: Option<String>,
    stages_run: u64,
    errors: u64,
    total_seconds: f64,
}

pub struct LocalAgent {
    counters: Mutex<Counters>,
}

impl LocalAgent {
    pub fn new() -> LocalAgent {
        LocalAgent { counters: Mutex::new(Counters::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn status(&self) -> AgentStatus {
        let c = self.lock();
        let error_rate = if c.stages_run == 0 { 0.0 } else { c.errors as f64 / c.stages_run as f64 };
        AgentStatus {
            agent_name: LOCAL_AGENT.into(),
            status: if c.running > 0 { AgentState::Busy } else { AgentState::Idle },
            capabilities: vec!["shell".into(), "process-group".into(), "artifacts".into()],
            current_task: c.current_task.clone(),
            metrics: AgentMetrics {
                message_count: c.stages_run,
                error_count: c.errors,
                error_rate,
                avg_execution_time: if c.stages_run == 0 { 0.0 } else { c.total_seconds / c.stages_run as f64 },
                // healthy while fewer than half of its recent stages fail
                is_healthy: c.stages_run < 4 || error_rate < 0.5,
            },
        }
    }

    /// Its status on `agents` and `agent:local`; a subscriber that may not see the run
    /// it works on gets the status without its current task.
    pub async fn publish(&self, hub: &Hub) {
        let status = self.status();
        let topics = [Some(AGENTS_TOPIC.to_owned()), TopicKind::Agent.topic(LOCAL_AGENT).ok()];
        for topic in topics.iter().flatten() {
            let _ = match task_scope(&status) {
                Some(scope) => {
                    let redacted = AgentStatus { current_task: None, ..status.clone() };
                    hub.publish_scoped(topic, names::AGENT_STATUS, &status, &scope, &redacted).await
                }
                None => hub.publish(topic, names::AGENT_STATUS, &status).await,
            };
        }
    }

    pub async fn stage_started(&self, hub: &Hub, task: &str) {
        {
            let mut c = self.lock();
            c.running += 1;
            c.current_task = Some(task.to_owned());
        }
        self.publish(hub).await;
    }

    pub async fn stage_finished(&self, hub: &Hub, seconds: f64, failed: bool) {
        {
            let mut c = self.lock();
            c.running = c.running.saturating_sub(1);
            if c.running == 0 {
                c.current_task = None;
            }
            c.stages_run += 1;
            c.total_seconds += seconds;
            if failed {
                c.errors += 1;
            }
        }
        self.publish(hub).await;
    }
}

/// The run topic an agent's current task (`RUN_ID/STAGE_ID`) belongs to.
fn task_scope(status: &AgentStatus) -> Option<String> {
    let task = status.current_task.as_deref()?;
    let run = task.split('/').next().unwrap_or(task);
    TopicKind::Workflow.topic(run).ok()
}

/// The status as `who` may see it: the current task only when it may see that run.
pub fn as_seen_by(mut status: AgentStatus, who: &crate::auth::Principal) -> AgentStatus {
    if task_scope(&status).is_some_and(|scope| !who.may_subscribe(&scope)) {
        status.current_task = None;
    }
    status
}

impl Default for LocalAgent {
    fn default() -> Self {
        LocalAgent::new()
    }
}
