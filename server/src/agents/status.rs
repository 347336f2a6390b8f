//! An agent's `agent_status`: its state, capabilities, current task, counters, last
//! seen and machine figures; and publishing it so that a subscriber that may not see
//! the run it works on gets it without its current task.

use super::{Agent, AgentsConfig};
use crate::hub::{now_ms, Hub};
use app::protocol::{names, AgentMetrics, AgentState, AgentStatus, TopicKind, AGENTS_TOPIC};

pub(super) fn of(name: &str, a: &Agent, config: AgentsConfig) -> AgentStatus {
    let error_rate = if a.stages_run == 0 { 0.0 } else { a.errors as f64 / a.stages_run as f64 };
    let offline = !a.local && a.conn.is_none();
    let is_healthy = !offline && (a.stages_run < 4 || error_rate < 0.5);
    let status = match () {
        _ if offline => AgentState::Offline,
        _ if a.stages_run >= 4 && error_rate >= 0.5 => AgentState::Error,
        _ if !a.running.is_empty() => AgentState::Busy,
        _ => AgentState::Idle,
    };
    let _ = config;
    AgentStatus {
        agent_name: name.to_owned(),
        status,
        capabilities: a.capabilities.clone(),
        current_task: a.running.iter().next().map(|k| format!("{}/{}", k.run, k.stage)),
        metrics: AgentMetrics {
            message_count: a.stages_run,
            error_count: a.errors,
            error_rate,
            avg_execution_time: if a.stages_run == 0 { 0.0 } else { a.total_seconds / a.stages_run as f64 },
            is_healthy,
        },
        last_seen: Some(if a.local { now_ms() } else { a.last_seen }),
        running: a.running.len() as u32,
        concurrency: (!a.local).then_some(a.concurrency),
        machine: a.machine.clone(),
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

/// On `agents` and `agent:{name}`; redacted for who may not see the current task's run.
pub(super) async fn publish(hub: &Hub, status: &AgentStatus) {
    let topics = [Some(AGENTS_TOPIC.to_owned()), TopicKind::Agent.topic(&status.agent_name).ok()];
    for topic in topics.iter().flatten() {
        let _ = match task_scope(status) {
            Some(scope) => {
                let redacted = AgentStatus { current_task: None, ..status.clone() };
                hub.publish_scoped(topic, names::AGENT_STATUS, status, &scope, &redacted).await
            }
            None => hub.publish(topic, names::AGENT_STATUS, status).await,
        };
    }
}
