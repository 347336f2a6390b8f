//! What each client message does (PROTOCOL.md section 4), its permission checked:
//! subscribe, unsubscribe, ping, publish, the run controls, chat, close.

use super::connection::{error_for, forbidden_topic, reply};
use super::outbox::CloseReason;
use super::{now_ms, ConnectionInfo, Hub, HubError};
use app::protocol::{Ack, ClientEnvelope, ClientMessage, CommandName, ErrorCode, ErrorMessage, Pong, ServerMessage, Unsubscribed};
use serde_json::Value;
use std::sync::Arc;

pub(super) async fn dispatch(hub: &Hub, conn: &Arc<ConnectionInfo>, env: &ClientEnvelope, workflow: Option<&str>) -> Result<(), ErrorMessage> {
    let hub_err = |e: HubError| error_for(e.code(), e.to_string(), env);
    let id = env.id.clone();
    let forbid = |message: String| error_for(ErrorCode::Forbidden, message, env);
    match &env.msg {
        ClientMessage::Subscribe { topic, since, epoch } => {
            super::check_topic(topic).map_err(hub_err)?;
            if !conn.principal.may_subscribe(topic) {
                return Err(error_for(ErrorCode::Forbidden, forbidden_topic(topic).message, env));
            }
            hub.subscribe(conn, topic, *since, epoch.as_deref(), id).await.map_err(hub_err)?;
        }
        ClientMessage::Unsubscribe { topic } => {
            super::check_topic(topic).map_err(hub_err)?;
            hub.unsubscribe(conn, topic);
            reply(conn, ServerMessage::Unsubscribed(Unsubscribed { topic: topic.clone(), id }));
        }
        ClientMessage::Ping { ts } => {
            reply(conn, ServerMessage::Pong(Pong { ts: ts.clone(), server_ts: now_ms(), id }));
        }
        ClientMessage::Publish { .. } => {
            if let Some(ack) = publish(hub, conn, env).await? {
                reply(conn, ack);
            }
        }
        ClientMessage::Control { workflow_id, .. }
        | ClientMessage::Confirm { workflow_id }
        | ClientMessage::Command { workflow_id, .. }
        | ClientMessage::Chat { workflow_id, .. } => {
            if !conn.principal.may_control() {
                return Err(forbid("this token may not act on workflows (its `control` is false)".into()));
            }
            let Some(workflow_id) = workflow_id.as_deref().or(workflow) else {
                return Err(error_for(ErrorCode::BadRequest, "`workflow_id` is required".into(), env));
            };
            if !conn.principal.may_subscribe(&format!("{}{workflow_id}", super::DURABLE_PREFIX)) {
                return Err(forbid(format!("this token may not see workflow {workflow_id:?}, so it may not act on it")));
            }
            let Some(actions) = hub.actions() else {
                return Err(error_for(ErrorCode::NotFound, format!("no workflow {workflow_id:?}"), env));
            };
            // with auth on, a message is from its token's subject
            let from = match &conn.principal.claims {
                Some(_) => conn.principal.sub.to_string(),
                None => conn.user_id.clone().unwrap_or_else(|| conn.client_id()),
            };
            let done = match &env.msg {
                ClientMessage::Control { action, .. } => actions.control(workflow_id, *action).await,
                ClientMessage::Confirm { .. } => actions.confirm(workflow_id).await,
                ClientMessage::Command { command: CommandName::CancelRun, .. } => {
                    actions.control(workflow_id, app::protocol::ControlAction::Cancel).await
                }
                ClientMessage::Command { command: CommandName::RestartStage, args, .. } => {
                    match args.as_ref().and_then(|a| a.get("stage_id")).and_then(Value::as_str) {
                        Some(stage) => actions.restart_stage(workflow_id, stage).await,
                        None => Err((ErrorCode::BadRequest, "restart_stage needs `args.stage_id`".into())),
                    }
                }
                ClientMessage::Chat { text, .. } if text.trim().is_empty() => {
                    Err((ErrorCode::BadRequest, "`text` must not be empty".into()))
                }
                ClientMessage::Chat { text, .. } => actions.chat(workflow_id, &from, text).await,
                _ => Ok(()),
            };
            done.map_err(|(code, message)| error_for(code, message, env))?;
            if let Some(id) = id {
                reply(conn, ServerMessage::Ack(Ack { id, result: None }));
            }
        }
        ClientMessage::Close => {
            conn.outbox.close(CloseReason::Normal);
        }
    }
    Ok(())
}

/// A `publish` message: its ack (when it has an `id`), or why it failed.
pub(super) async fn publish(hub: &Hub, conn: &ConnectionInfo, env: &ClientEnvelope) -> Result<Option<ServerMessage>, ErrorMessage> {
    let ClientMessage::Publish { topic, event, data } = &env.msg else { return Ok(None) };
    let hub_err = |e: HubError| error_for(e.code(), e.to_string(), env);
    super::check_topic(topic).map_err(hub_err)?;
    if let Some(why) = super::publish_refusal(&conn.principal, topic) {
        return Err(error_for(ErrorCode::Forbidden, why, env));
    }
    let raw = serde_json::value::to_raw_value(data).map_err(|e| error_for(ErrorCode::BadRequest, e.to_string(), env))?;
    let seq = hub.publish_raw(topic, event, &raw).await.map_err(hub_err)?;
    Ok(env.id.clone().map(|id| {
        let result = serde_json::json!({ "topic": topic, "seq": seq });
        ServerMessage::Ack(Ack { id, result: Some(result) })
    }))
}
