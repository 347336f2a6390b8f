//! The WebSocket doors: `/ws` and its aliases, each a `/ws` connection already
//! subscribed to one topic (PROTOCOL.md section 1).

use crate::hub::connection::{self, ConnectParams};
use crate::AppState;
use app::protocol::{ErrorCode, ErrorMessage, TopicKind, COORDINATOR_TOPIC};
use super::error::ApiError;
use crate::auth::AuthError;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Bytes read from the socket at a time. axum's default (128 KiB, allocated per
/// connection) costs 134 KB of RSS per idle connection; 4 KiB costs ~6 KB.
const READ_BUFFER: usize = 4 * 1024;
/// Bytes buffered before a write reaches the socket; a flush writes them anyway.
const WRITE_BUFFER: usize = 16 * 1024;

/// A query that does not parse is ignored, as if there were none.
type QueryResult = Result<Query<WsQuery>, axum::extract::rejection::QueryRejection>;

#[derive(Debug, Default, Deserialize)]
pub struct WsQuery {
    token: Option<String>,
    session_id: Option<String>,
    user_id: Option<String>,
}

pub async fn root(state: State<AppState>, q: QueryResult, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    upgrade(state, q, headers, ws, None)
}

pub async fn workflow(
    state: State<AppState>,
    Path(id): Path<String>,
    q: QueryResult,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(state, q, headers, ws, Some(Alias::Id(TopicKind::Workflow, id)))
}

pub async fn agent(
    state: State<AppState>,
    Path(name): Path<String>,
    q: QueryResult,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(state, q, headers, ws, Some(Alias::Id(TopicKind::Agent, name)))
}

pub async fn coordinator(state: State<AppState>, q: QueryResult, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    upgrade(state, q, headers, ws, Some(Alias::Coordinator))
}

/// Longest close reason a close frame carries (the protocol's limit is 123 bytes).
const CLOSE_REASON_MAX: usize = 120;

/// Accepts the upgrade only to say why not: close 1008 right away (PROTOCOL.md
/// section 7), so a client knows it was refused rather than cut off.
fn refuse(ws: WebSocketUpgrade, hub: &crate::hub::Hub, why: String) -> Response {
    hub.counters().closed(1008);
    let reason = format!("unauthorized: {why}");
    let reason = app::protocol::truncate_at_char(&reason, CLOSE_REASON_MAX).to_owned();
    ws.on_upgrade(move |mut socket| async move {
        let frame = CloseFrame { code: 1008, reason: reason.into() };
        let _ = socket.send(Message::Close(Some(frame))).await;
    })
}

pub enum Alias {
    Id(TopicKind, String),
    Coordinator,
}

fn add_topic(params: &mut ConnectParams, kind: TopicKind, id: &str) {
    match kind.topic(id) {
        Ok(topic) => params.auto_topics.push(topic),
        Err(e) => params.errors.push(ErrorMessage::new(
            ErrorCode::BadRequest,
            format!("{kind} id {id:?} makes an invalid topic name: {e}"),
        )),
    }
}

fn upgrade(
    State(state): State<AppState>,
    q: QueryResult,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
    alias: Option<Alias>,
) -> Response {
    // a page of another site must not open this socket with this browser's cookie
    if !state.origins.allows(&headers) {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()).unwrap_or("?");
        return ApiError::new(ErrorCode::Forbidden, format!("origin {origin:?} may not open the WebSocket (SWITCHBOARD_ALLOWED_ORIGINS)"))
            .into_response();
    }
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let principal = match state.auth.principal(&headers, q.token.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            let why = match e {
                AuthError::Invalid(t) => t.to_string(),
                _ => "no access token".to_owned(),
            };
            return refuse(ws, &state.hub, why);
        }
    };
    let mut params = ConnectParams {
        principal,
        user_id: q.user_id.clone(),
        session_id: q.session_id.clone(),
        auto_topics: Vec::new(),
        errors: Vec::new(),
        workflow_id: None,
    };
    match alias {
        Some(Alias::Id(kind, id)) => {
            add_topic(&mut params, kind, &id);
            if kind == TopicKind::Workflow {
                params.workflow_id = Some(id);
            }
        }
        Some(Alias::Coordinator) => params.auto_topics.push(COORDINATOR_TOPIC.to_owned()),
        None => {}
    }
    if let Some(id) = &q.session_id {
        add_topic(&mut params, TopicKind::Session, id);
    }
    if let Some(id) = &q.user_id {
        add_topic(&mut params, TopicKind::User, id);
    }
    let config = state.hub.config();
    let max = config.max_message_bytes;
    let hub = state.hub.clone();
    let tracker = state.tracker.clone();
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER + 4 * max)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| tracker.track_future(connection::serve(socket, hub, params)))
}
