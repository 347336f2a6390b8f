//! One WebSocket connection, in one task: it reads the client's messages and writes
//! what its outbox holds (events, replies, the heartbeat's Pings), taking turns, until
//! the outbox's close signal says why it ends (one reason, one close code). A close the
//! server starts sends what was queued, then the close frame, then reads and discards
//! until the peer's close frame (RFC 6455's closing handshake), so the peer learns why.
//! One task, not a reader and a spawned writer: an idle connection's memory is mostly
//! its task, and one small future is what ten thousand of them cost.

use super::in_flight::{self, InFlight};
use super::outbox::{CloseReason, Outbound, Outbox, OutboxReceiver};
use super::rate::ConnectionLimits;
use super::{now_ms, ConnectionInfo, Hub};
use app::protocol::{
    parse_client_message, ClientEnvelope, ClientMessage, ErrorCode, ErrorMessage, Hello, Limits, MessageId, ServerMessage,
};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::SinkExt;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most queued items written before one flush.
const WRITE_BATCH: usize = 64;
/// A write batch with at most this many slots is freed after use.
const SHRINK_SMALL: usize = 8;
/// How long a close frame may take to go out before the socket is just dropped (a slow
/// consumer that resumes reading within it still learns why: 1013).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// After the server decides to close, how long it keeps reading (and discarding) for
/// the peer's close frame (RFC 6455 section 7.1.1: the closing handshake).
const CLOSING_HANDSHAKE: Duration = Duration::from_secs(5);

/// What the upgrade request asked for, already checked.
#[derive(Debug)]
pub struct ConnectParams {
    /// Who connected (checked at the upgrade), and what they may do.
    pub principal: crate::auth::Principal,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    /// Topics to subscribe before anything else (aliases, `session_id`, `user_id`).
    pub auto_topics: Vec<String>,
    /// Errors to report right after `hello` (an alias or id that makes no valid topic).
    pub errors: Vec<ErrorMessage>,
    /// The workflow of a `/ws/workflow/{id}` alias: the default `workflow_id`.
    pub workflow_id: Option<String>,
}

/// Registers one upgraded socket and returns the future that serves it until it closes.
/// `slot` (the connection's place in its address's count) is given back at the end.
pub fn serve<Slot: Send + 'static>(
    mut socket: WebSocket,
    hub: Hub,
    params: ConnectParams,
    slot: Slot,
) -> impl std::future::Future<Output = ()> + Send {
    let (outbox, mut rx) = Outbox::new(hub.config().outbound_queue);
    let conn = hub.connect(outbox, params.principal.clone(), params.user_id.clone(), params.session_id.clone());
    // no span wrapped around it (the few lines it logs name the client): every byte of
    // this future is paid by every idle connection
    async move {
        tracing::debug!(client = %conn.client_id(), "connected");
        // boxed: run once, so its state need not live in every idle connection's future
        let workflow = Box::pin(greet(&hub, &conn, params)).await;
        let contiguous = serve_loop(&mut socket, &mut rx, &hub, &conn, workflow.as_deref()).await;
        // closing: no more events for it, and it no longer counts as connected
        hub.disconnect(&conn);
        Box::pin(finish(socket, rx, &conn, &hub, contiguous)).await;
        drop(slot);
        tracing::debug!(client = %conn.client_id(), reason = conn.outbox.close_reason().text(), "disconnected");
    }
}

/// `hello`, then every auto-subscription's `subscribed`, then any error about them.
/// Returns the alias's workflow, if any.
async fn greet(hub: &Hub, conn: &Arc<ConnectionInfo>, params: ConnectParams) -> Option<String> {
    let config = hub.config();
    let hello = ServerMessage::Hello(Hello {
        client_id: conn.client_id(),
        server_ts: now_ms(),
        heartbeat_ms: config.heartbeat.as_millis() as u64,
        limits: Limits {
            max_subscriptions: config.max_subscriptions,
            max_message_bytes: config.max_message_bytes,
            rate_per_min: config.rate_per_min,
        },
    });
    let _ = conn.outbox.push_frame(hello.to_json());
    for topic in &params.auto_topics {
        if !conn.principal.may_subscribe(topic) {
            reply_error(hub, conn, forbidden_topic(topic));
            continue;
        }
        if let Err(e) = hub.subscribe(conn, topic, None, None, None).await {
            reply_error(hub, conn, ErrorMessage::new(e.code(), e.to_string()));
        }
    }
    for err in &params.errors {
        reply_error(hub, conn, err.clone());
    }
    params.workflow_id
}

pub(super) fn forbidden_topic(topic: &str) -> ErrorMessage {
    ErrorMessage::new(ErrorCode::Forbidden, format!("this token may not subscribe to {topic:?} (see its sub_topics)"))
}

pub(super) fn reply(conn: &ConnectionInfo, msg: ServerMessage) {
    // a full queue closes the connection with 1013 inside push; nothing else to do
    let _ = conn.outbox.push_frame(msg.to_json());
}

pub(super) fn reply_error(hub: &Hub, conn: &ConnectionInfo, err: ErrorMessage) {
    hub.counters().reject(err.code);
    reply(conn, ServerMessage::Error(err));
}

pub(super) fn error_for(code: ErrorCode, message: String, env: &ClientEnvelope) -> ErrorMessage {
    let mut err = ErrorMessage::new(code, message);
    err.id = env.id.clone();
    err.original_message = serde_json::to_value(env).ok();
    err
}

/// Reads and writes, taking turns at random when both are ready (neither starves the
/// other: the heartbeat's Pongs are read while a busy subscriber is written to). Returns
/// whether what is still queued follows on from what was written (not so when a write
/// was cut short by the close: the rest must not go out after a hole).
async fn serve_loop(
    ws: &mut WebSocket,
    rx: &mut OutboxReceiver,
    hub: &Hub,
    conn: &Arc<ConnectionInfo>,
    workflow: Option<&str>,
) -> bool {
    // made on the first message: a connection that only listens carries none
    let mut limits: Option<Box<ConnectionLimits>> = None;
    // made on the first publish to a shared topic (several nodes)
    let mut in_flight: Option<Box<InFlight>> = None;
    // the connection lasts as long as its token (boxed: only a connection with a token
    // that expires carries a timer)
    let mut expiry = conn.principal.expires_at_ms.map(|at| {
        let left = (at - now_ms()).max(0) as u64;
        Box::pin(tokio::time::sleep(Duration::from_millis(left)))
    });
    // grown on first use: an idle connection should not carry a batch buffer
    let mut batch = Vec::new();
    let outbox = &conn.outbox;
    loop {
        // once closing, not one more message is read as a request
        if outbox.is_closing() {
            return true;
        }
        let expired = async {
            match expiry.as_mut() {
                Some(sleep) => sleep.as_mut().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = expired => {
                tracing::info!(client = %conn.client_id(), "closing: the access token expired");
                outbox.close(CloseReason::Policy("token expired"));
                return true;
            }
            done = next_reply(&mut in_flight) => in_flight::send(hub, conn, done),
            n = rx.recv_many(&mut batch, WRITE_BATCH) => {
                if n == 0 {
                    return true; // closing
                }
                // boxed: a write's state need not live in an idle connection; a close
                // asked for meanwhile (a slow consumer) stops a write the peer never takes
                let written = tokio::select! {
                    _ = outbox.closed() => return false,
                    written = Box::pin(write_batch(ws, &mut batch, hub)) => written,
                };
                if written.is_err() {
                    outbox.close(CloseReason::ClientGone);
                    return false;
                }
                // a quiet connection gives its few slots back (a busy one keeps them)
                if batch.capacity() <= SHRINK_SMALL {
                    batch = Vec::new();
                }
            }
            next = ws.recv() => {
                let msg = match next {
                    None => {
                        outbox.close(CloseReason::ClientGone);
                        return true;
                    }
                    Some(Err(e)) => {
                        let reason = if is_too_big(e) { CloseReason::TooBig } else { CloseReason::ClientGone };
                        outbox.close(reason);
                        return true;
                    }
                    Some(Ok(msg)) => msg,
                };
                conn.touch();
                match msg {
                    Message::Text(text) => {
                        hub.counters().messages_in.inc();
                        // boxed: a message's handling (a subscribe that opens a topic, a
                        // control that awaits the engine) is large
                        let limits = limits.get_or_insert_with(|| Box::new(ConnectionLimits::new(hub.config())));
                        Box::pin(handle_text(hub, conn, limits, text.as_str(), workflow, &mut in_flight)).await;
                    }
                    Message::Binary(_) => {
                        hub.counters().messages_in.inc();
                        let limits = limits.get_or_insert_with(|| Box::new(ConnectionLimits::new(hub.config())));
                        if admit(hub, conn, limits, false, None, None) {
                            let mut err = ErrorMessage::new(ErrorCode::BadRequest, "binary frames are not supported: send JSON text frames");
                            err.original_message = Some(Value::String("<binary frame>".into()));
                            reply_error(hub, conn, err);
                        }
                    }
                    Message::Close(_) => {
                        outbox.close(CloseReason::ClientGone);
                        return true;
                    }
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
        }
    }
}

/// Whether tungstenite gave up on a message for its size (close 1009).
fn is_too_big(e: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    matches!(e.into_inner().downcast_ref::<WsError>(), Some(WsError::Capacity(_)))
}

/// Charges the message to its budget; when spent, answers `rate_limited` (and closes
/// the connection with 1008 after repeated abuse). Returns whether to go on.
fn admit(
    hub: &Hub,
    conn: &ConnectionInfo,
    limits: &mut ConnectionLimits,
    is_publish: bool,
    id: Option<MessageId>,
    original: Option<Value>,
) -> bool {
    if limits.allow(is_publish) {
        return true;
    }
    let mut err = ErrorMessage::new(ErrorCode::RateLimited, "too many messages: slow down and retry later");
    err.id = id;
    err.original_message = original;
    reply_error(hub, conn, err);
    if limits.record_rejection(Instant::now()) {
        tracing::info!(client = %conn.client_id(), "closing after repeated rate limiting");
        conn.outbox.close(CloseReason::Policy("rate limit exceeded repeatedly"));
    }
    false
}

/// The next reply of a publish in flight; pending while there is none.
async fn next_reply(in_flight: &mut Option<Box<InFlight>>) -> in_flight::Reply {
    match in_flight {
        Some(f) if !f.is_empty() => f.next().await,
        _ => std::future::pending().await,
    }
}

async fn handle_text(
    hub: &Hub,
    conn: &Arc<ConnectionInfo>,
    limits: &mut ConnectionLimits,
    text: &str,
    workflow: Option<&str>,
    in_flight: &mut Option<Box<InFlight>>,
) {
    let env = match parse_client_message(text) {
        Ok(env) => env,
        Err(err) => {
            if admit(hub, conn, limits, false, err.id.clone(), err.original_message.clone()) {
                reply_error(hub, conn, *err);
            }
            return;
        }
    };
    let is_publish = matches!(env.msg, ClientMessage::Publish { .. });
    if !admit(hub, conn, limits, is_publish, env.id.clone(), serde_json::to_value(&env).ok()) {
        return;
    }
    if let ClientMessage::Publish { topic, .. } = &env.msg {
        if hub.is_shared(topic) {
            in_flight.get_or_insert_with(Default::default).start(hub, conn, env).await;
            return;
        }
    }
    if let Some(f) = in_flight.as_mut() {
        f.drain(hub, conn).await;
    }
    if let Err(err) = super::dispatch::dispatch(hub, conn, &env, workflow).await {
        reply_error(hub, conn, err);
    }
}

/// Writes queued items without a flush each, then flushes once.
async fn write_batch(
    sink: &mut WebSocket,
    batch: &mut Vec<Outbound>,
    hub: &Hub,
) -> Result<(), axum::Error> {
    let mut oldest: Option<Instant> = None;
    let mut frames = 0u64;
    for item in batch.drain(..) {
        match item {
            Outbound::Frame(frame) => {
                sink.feed(Message::Text(frame)).await?;
                frames += 1;
            }
            Outbound::Event { frame, published_at } => {
                oldest.get_or_insert(published_at);
                sink.feed(Message::Text(frame)).await?;
                frames += 1;
            }
            Outbound::Batch(list) => {
                for frame in list.into_vec() {
                    sink.feed(Message::Text(frame)).await?;
                    frames += 1;
                }
            }
            Outbound::Ping => sink.feed(Message::Ping(bytes::Bytes::new())).await?,
        }
    }
    sink.flush().await?;
    let counters = hub.counters();
    counters.messages_out.inc_by(frames);
    if let Some(t) = oldest {
        counters.delivery_latency.observe(t.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Reads until the peer's close frame, or the end of the stream, dropping everything.
async fn discard_until_close(ws: &mut WebSocket) {
    while let Some(Ok(msg)) = ws.recv().await {
        if matches!(msg, Message::Close(_)) {
            return;
        }
    }
}

/// Ends the connection. When the server closes: what is already queued (the replies
/// that explain it, a slow consumer's gapless backlog), then the close frame the reason
/// calls for, each bounded in time; then the peer's frames are read and dropped until
/// its close frame. Dropping the socket with the peer's frames unread would make the
/// kernel reset the connection, and the peer would see neither the replies nor why.
/// (A peer silent past the heartbeat is presumed gone: no one to wait for.) When a
/// write was cut short (`contiguous` false), nothing more goes out but the close frame.
async fn finish(mut ws: WebSocket, rx: OutboxReceiver, conn: &ConnectionInfo, hub: &Hub, contiguous: bool) {
    let reason = conn.outbox.close_reason();
    if reason == CloseReason::ClientGone {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close()).await;
        return;
    }
    if contiguous {
        let mut batch = Vec::new();
        rx.try_recv_many(&mut batch, usize::MAX);
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, write_batch(&mut ws, &mut batch, hub)).await;
    }
    hub.counters().closed(reason.code());
    let frame = CloseFrame { code: reason.code(), reason: Utf8Bytes::from_static(reason.text()) };
    let Ok(Ok(())) = tokio::time::timeout(CLOSE_TIMEOUT, ws.send(Message::Close(Some(frame)))).await else {
        return; // the socket is stuck or broken: drop it; a codeless close would only mislead
    };
    if reason != CloseReason::HeartbeatTimeout {
        let _ = tokio::time::timeout(CLOSING_HANDSHAKE, discard_until_close(&mut ws)).await;
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close()).await;
}
