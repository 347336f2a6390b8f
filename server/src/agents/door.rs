//! `/api/v1/agents/connect`: an executor's connection. It needs the `agent` right, and
//! registers under its token's subject (an admin's token may name any agent). The first
//! message is `register`; the answer, `welcome`, says which of the stages it still runs
//! the server takes up (and from which report seq) and which it does not know. Then
//! reports in, work and signals out, machine figures now and then, a Ping per heartbeat;
//! `applied` once a report's effects are on disk (the stage's task sends it).

use super::reports::Refusal;
use super::Registry;
use crate::auth::Principal;
use crate::engine::pipeline::valid_agent_name;
use app::protocol::{AgentMessage, ResumeFrom, ServerToAgent, StageKey};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a new connection has to say `register`.
const REGISTER_WITHIN: Duration = Duration::from_secs(10);

async fn refuse(mut ws: WebSocket, why: String) {
    let reason = app::protocol::truncate_at_char(&why, 120).to_owned();
    let _ = ws.send(Message::Close(Some(CloseFrame { code: 1008, reason: reason.into() }))).await;
}

fn text(msg: &ServerToAgent) -> Message {
    // our own types: they always serialize
    Message::Text(Utf8Bytes::from(serde_json::to_string(msg).unwrap_or_default()))
}

/// What a refusal says to the agent.
pub fn refused(r: &Refusal) -> ServerToAgent {
    match r {
        Refusal::NotRunning(key) => ServerToAgent::Refused {
            code: "conflict".into(),
            message: format!("stage {:?} of run {:?} (attempt {}) is not running here", key.stage, key.run, key.attempt),
            key: Some(key.clone()),
            expected: None,
        },
        Refusal::NotYours { key, agent } => ServerToAgent::Refused {
            code: "forbidden".into(),
            message: format!("stage {:?} of run {:?} is run by {agent:?}, not by you", key.stage, key.run),
            key: Some(key.clone()),
            expected: None,
        },
        Refusal::Gap { key, expected } => ServerToAgent::Refused {
            code: "conflict".into(),
            message: format!("reports of stage {:?} must go on from seq {expected}", key.stage),
            key: Some(key.clone()),
            expected: Some(*expected),
        },
    }
}

/// Serves one agent connection until it ends.
pub async fn serve(mut ws: WebSocket, registry: Registry, who: Principal) {
    let first = tokio::time::timeout(REGISTER_WITHIN, ws.recv()).await;
    let Ok(Some(Ok(Message::Text(first)))) = first else {
        return refuse(ws, "an agent first sends `register`".into()).await;
    };
    let (name, capabilities, concurrency, running) = match serde_json::from_str::<AgentMessage>(first.as_str()) {
        Ok(AgentMessage::Register { name, capabilities, concurrency, running }) => (name, capabilities, concurrency, running),
        Ok(_) => return refuse(ws, "an agent first sends `register`".into()).await,
        Err(e) => return refuse(ws, format!("bad register: {e}")).await,
    };
    if !valid_agent_name(&name) || name == super::LOCAL_AGENT {
        return refuse(ws, format!("{name:?} is not an agent name (1-64 of a-z, 0-9, '_', '.', '-'; not \"local\")")).await;
    }
    if who.sub.as_ref() != name && !who.is_admin() {
        return refuse(ws, format!("this token registers as {:?}, not {name:?}", who.sub)).await;
    }
    if let Some(c) = capabilities.iter().find(|c| !valid_agent_name(c)) {
        return refuse(ws, format!("{c:?} is not a capability name")).await;
    }
    // what the server has it run that it does not say it runs: the `assign` was lost
    // with a connection, or the agent restarted (its stage's task decides which)
    for slot in registry.slots_of(&name) {
        if !running.iter().any(|r| r.key == slot.key) {
            slot.mark_missing();
        }
    }
    // a stage of a run another node owns: its connection there was cut, and it came
    // back here (several nodes: engine::agent_moves). Brought before the agent counts
    // as connected, so that no other stage takes its place meanwhile.
    for r in &running {
        if registry.slot(&r.key).is_none() {
            registry.bring(&r.key, &name).await;
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = registry.connect(&name, capabilities, concurrency, tx).await;
    let mut resume = Vec::new();
    let mut unknown = Vec::new();
    let mut on_disk = Vec::new();
    for r in running {
        match registry.slot(&r.key) {
            Some(slot) if slot.agent == name => {
                resume.push(ResumeFrom { next_seq: slot.next_seq().await, key: r.key.clone() });
                on_disk.push(ServerToAgent::Applied { key: r.key, seq: slot.durable_seq() });
            }
            _ => {
                registry.told_to_drop(&r.key);
                unknown.push(r.key);
            }
        }
    }
    let heartbeat = registry.config().heartbeat;
    let welcome = ServerToAgent::Welcome { heartbeat_ms: heartbeat.as_millis() as u64, resume, unknown };
    for msg in std::iter::once(welcome).chain(on_disk) {
        if ws.send(text(&msg)).await.is_err() {
            return registry.disconnect(&name, conn).await;
        }
    }
    tracing::info!(agent = %name, "agent connected");
    let mut ping = tokio::time::interval(heartbeat);
    ping.tick().await;
    let mut silent_since = tokio::time::Instant::now();
    let shutdown = registry.hub().shutdown_token().clone();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let bye = CloseFrame { code: 1001, reason: "server shutting down".into() };
                let _ = ws.send(Message::Close(Some(bye))).await;
                break;
            }
            out = rx.recv() => match out {
                Some(msg) => if ws.send(text(&msg)).await.is_err() { break },
                None => break,
            },
            incoming = ws.recv() => {
                let msg = match incoming {
                    Some(Ok(m)) => m,
                    _ => break,
                };
                silent_since = tokio::time::Instant::now();
                registry.heard_from(&name);
                match msg {
                    Message::Text(t) => {
                        if let Some(reply) = handle(&registry, &name, t.as_str()).await {
                            for r in reply {
                                if ws.send(text(&r)).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            _ = ping.tick() => {
                if silent_since.elapsed() > 2 * heartbeat {
                    tracing::info!(agent = %name, "agent silent for two heartbeats: closing");
                    break;
                }
                if ws.send(Message::Ping(bytes::Bytes::new())).await.is_err() {
                    break;
                }
            }
        }
    }
    tracing::info!(agent = %name, "agent disconnected");
    registry.disconnect(&name, conn).await;
}

/// One message from an agent; the replies to send back.
async fn handle(registry: &Registry, name: &str, text: &str) -> Option<Vec<ServerToAgent>> {
    let msg = match serde_json::from_str::<AgentMessage>(text) {
        Ok(m) => m,
        Err(e) => {
            return Some(vec![ServerToAgent::Refused { code: "bad_request".into(), message: e.to_string(), key: None, expected: None }])
        }
    };
    match msg {
        AgentMessage::Reports { reports, .. } => {
            let (applied, refusal) = match registry.apply(Some(name), reports).await {
                Ok(applied) => (applied, None),
                Err((refusal, applied)) => (applied, Some(refusal)),
            };
            // what is on disk already (a report sent again); the stage's task says the rest
            let mut replies: Vec<ServerToAgent> = applied
                .into_keys()
                .filter_map(|key: StageKey| registry.slot(&key).map(|s| (key, s.durable_seq())))
                .filter(|(_, seq)| *seq > 0)
                .map(|(key, seq)| ServerToAgent::Applied { key, seq })
                .collect();
            replies.extend(refusal.as_ref().map(refused));
            Some(replies)
        }
        AgentMessage::Metrics { metrics } => {
            registry.machine(name, metrics).await;
            None
        }
        AgentMessage::Ack { .. } => None,
        AgentMessage::Register { .. } => Some(vec![ServerToAgent::Refused {
            code: "conflict".into(),
            message: "already registered on this connection".into(),
            key: None,
            expected: None,
        }]),
    }
}
