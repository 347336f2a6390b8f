//! The WebSocket doors: `/ws` and its aliases, each a `/ws` connection already
//! subscribed to one topic (PROTOCOL.md section 1).

use crate::hub::connection::{self, ConnectParams};
use crate::AppState;
use app::protocol::{ErrorCode, ErrorMessage, TopicKind, COORDINATOR_TOPIC};
use crate::auth::AuthError;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use crate::http_server::ConnectionSlot;
use serde::Deserialize;

/// Bytes read from the socket at a time. axum's default (128 KiB, allocated per
/// connection) costs 134 KB of RSS per idle connection; 4 KiB costs ~6 KB.
const READ_BUFFER: usize = 4 * 1024;
/// Bytes buffered before a write reaches the socket; a flush writes them anyway.
const WRITE_BUFFER: usize = 16 * 1024;

/// A query that does not parse is answered with an `error` after `hello`.
type QueryResult = Result<Query<WsQuery>, axum::extract::rejection::QueryRejection>;

/// `?token=`, `?session_id=` (or `sessionId`), `?user_id=` (or `userId`); anything else
/// is named in an `error` rather than silently ignored.
#[derive(Debug, Default, Deserialize)]
pub struct WsQuery {
    token: Option<String>,
    #[serde(alias = "sessionId")]
    session_id: Option<String>,
    #[serde(alias = "userId")]
    user_id: Option<String>,
    #[serde(flatten)]
    unknown: std::collections::BTreeMap<String, String>,
}

const KNOWN_PARAMS: &str = "token, session_id (or sessionId), user_id (or userId)";

/// The HTTP connection's place in the per-address count, kept for the socket's life.
type Slot = Option<Extension<ConnectionSlot>>;

pub async fn root(state: State<AppState>, slot: Slot, q: QueryResult, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    upgrade(state, slot, q, headers, ws, None)
}

pub async fn workflow(
    state: State<AppState>,
    slot: Slot,
    Path(id): Path<String>,
    q: QueryResult,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(state, slot, q, headers, ws, Some(Alias::Id(TopicKind::Workflow, id)))
}

pub async fn agent(
    state: State<AppState>,
    slot: Slot,
    Path(name): Path<String>,
    q: QueryResult,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(state, slot, q, headers, ws, Some(Alias::Id(TopicKind::Agent, name)))
}

pub async fn coordinator(state: State<AppState>, slot: Slot, q: QueryResult, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    upgrade(state, slot, q, headers, ws, Some(Alias::Coordinator))
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
    slot: Slot,
    q: QueryResult,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
    alias: Option<Alias>,
) -> Response {
    // (the Host and the Origin were checked by `gate`, before any handler)
    let (q, bad_query) = match q {
        Ok(Query(q)) => (q, None),
        Err(e) => (WsQuery::default(), Some(format!("the query string is not understood ({e}); it takes {KNOWN_PARAMS}"))),
    };
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
    params.errors.extend(bad_query.map(|why| ErrorMessage::new(ErrorCode::BadRequest, why)));
    for name in q.unknown.keys() {
        let why = format!("unknown query parameter {name:?}: it is ignored (this endpoint takes {KNOWN_PARAMS})");
        params.errors.push(ErrorMessage::new(ErrorCode::BadRequest, why));
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
    // The write buffer may pass WRITE_BUFFER by one frame, never more: the writer
    // flushes before it feeds the next frame once the socket pushes back. A cap below
    // the largest frame (an event at the maximum size, a replayed one) would end the
    // connection instead, so the cap is left open and the outbox bounds the memory.
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(max)
        .max_frame_size(max)
        // no wrapping future: a wrapper that awaits it would hold it twice (an idle
        // connection's memory is mostly this future)
        .on_upgrade(move |socket| tracker.track_future(connection::serve(socket, hub, params, slot)))
}
