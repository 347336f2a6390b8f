//! One WebSocket connection: the reader runs in place, the writer is spawned and owns
//! the socket's sending half, the outbound queue and the heartbeat. Either side ends
//! the connection through the outbox's close signal, with one reason and close code.

use super::outbox::{CloseReason, Outbound, Outbox, OutboxReceiver};
use super::rate::ConnectionLimits;
use super::{now_ms, ConnectionInfo, Hub, HubError};
use app::protocol::{
    parse_client_message, Ack, ClientEnvelope, ClientMessage, CommandName, ErrorCode, ErrorMessage, Hello, Limits, MessageId,
    Pong, ServerMessage, Unsubscribed,
};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Most queued items written before one flush.
const WRITE_BATCH: usize = 64;
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

/// Sets up one upgraded socket (registers it, queues `hello` and its subscriptions,
/// spawns the writer) and returns the future that reads it until it closes. The set-up
/// is synchronous so the long-lived future keeps only the reader's state: an idle
/// connection's memory is mostly these futures.
pub fn serve(socket: WebSocket, hub: Hub, params: ConnectParams) -> impl std::future::Future<Output = ()> + Send {
    let (outbox, rx) = Outbox::new(hub.config().outbound_queue, hub.shutdown_token());
    let conn = hub.connect(outbox, params.principal.clone(), params.user_id.clone(), params.session_id.clone());
    // a debug span: at the default `info` level it allocates nothing per connection
    let span = tracing::debug_span!("ws", client = %conn.client_id);
    let _entered = span.enter();
    tracing::debug!("connected");
    let (sink, stream) = socket.split();
    let writer = tokio::spawn(write_loop(sink, rx, conn.clone(), hub.clone()).in_current_span());
    drop(_entered);
    async move {
        // boxed: run once, so its state need not live in every idle connection's future
        let workflow = Box::pin(greet(&hub, &conn, params)).await;
        let mut stream = stream;
        read_loop(&mut stream, &hub, &conn, workflow.as_deref()).await;
        // closing: no more events for it, and it no longer counts as connected
        hub.disconnect(&conn);
        // A close the server starts: while the writer sends what is queued and the close
        // frame, the reader goes on reading and discarding until the peer's close frame.
        // Dropping the socket with the peer's frames unread would make the kernel reset
        // the connection, and the peer would see neither our replies nor why we closed.
        // (A peer silent past the heartbeat is presumed gone: no one to wait for.)
        let handshake = async {
            if !matches!(conn.outbox.close_reason(), CloseReason::ClientGone | CloseReason::HeartbeatTimeout) {
                let _ = tokio::time::timeout(CLOSING_HANDSHAKE, discard_until_close(&mut stream)).await;
            }
        };
        let (_, ()) = tokio::join!(writer, handshake);
        tracing::debug!(reason = conn.outbox.close_reason().text(), "disconnected");
    }
    .instrument(span)
}

/// `hello`, then every auto-subscription's `subscribed`, then any error about them.
/// Returns the alias's workflow, if any.
async fn greet(hub: &Hub, conn: &Arc<ConnectionInfo>, params: ConnectParams) -> Option<String> {
    let config = hub.config();
    let hello = ServerMessage::Hello(Hello {
        client_id: conn.client_id.clone(),
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

fn forbidden_topic(topic: &str) -> ErrorMessage {
    ErrorMessage::new(ErrorCode::Forbidden, format!("this token may not subscribe to {topic:?} (see its sub_topics)"))
}

fn reply(conn: &ConnectionInfo, msg: ServerMessage) {
    // a full queue closes the connection with 1013 inside push; nothing else to do
    let _ = conn.outbox.push_frame(msg.to_json());
}

fn reply_error(hub: &Hub, conn: &ConnectionInfo, err: ErrorMessage) {
    hub.counters().reject(err.code);
    reply(conn, ServerMessage::Error(err));
}

fn error_for(code: ErrorCode, message: String, env: &ClientEnvelope) -> ErrorMessage {
    let mut err = ErrorMessage::new(code, message);
    err.id = env.id.clone();
    err.original_message = serde_json::to_value(env).ok();
    err
}

/// Reads until the peer's close frame, or the end of the stream, dropping everything.
async fn discard_until_close(stream: &mut SplitStream<WebSocket>) {
    while let Some(Ok(msg)) = stream.next().await {
        if matches!(msg, Message::Close(_)) {
            return;
        }
    }
}

async fn read_loop(stream: &mut SplitStream<WebSocket>, hub: &Hub, conn: &Arc<ConnectionInfo>, workflow: Option<&str>) {
    let mut limits = ConnectionLimits::new(hub.config());
    // the connection lasts as long as its token
    let expiry = conn.principal.expires_at_ms.map(|at| {
        let left = (at - now_ms()).max(0) as u64;
        tokio::time::Instant::now() + Duration::from_millis(left)
    });
    loop {
        let next = tokio::select! {
            // once closing, not one more message is read as a request
            biased;
            _ = conn.outbox.closing().cancelled() => return,
            _ = tokio::time::sleep_until(expiry.unwrap_or_else(tokio::time::Instant::now)), if expiry.is_some() => {
                tracing::info!("closing: the access token expired");
                return conn.outbox.close(CloseReason::Policy("token expired"));
            }
            next = stream.next() => next,
        };
        let msg = match next {
            None => return conn.outbox.close(CloseReason::ClientGone),
            Some(Err(e)) => {
                let reason = if is_too_big(e) { CloseReason::TooBig } else { CloseReason::ClientGone };
                return conn.outbox.close(reason);
            }
            Some(Ok(msg)) => msg,
        };
        conn.touch();
        match msg {
            Message::Text(text) => {
                hub.counters().messages_in.inc();
                handle_text(hub, conn, &mut limits, text.as_str(), workflow).await;
            }
            Message::Binary(_) => {
                hub.counters().messages_in.inc();
                if admit(hub, conn, &mut limits, false, None, None) {
                    let mut err = ErrorMessage::new(ErrorCode::BadRequest, "binary frames are not supported: send JSON text frames");
                    err.original_message = Some(Value::String("<binary frame>".into()));
                    reply_error(hub, conn, err);
                }
            }
            Message::Close(_) => return conn.outbox.close(CloseReason::ClientGone),
            Message::Ping(_) | Message::Pong(_) => {}
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
        tracing::info!("closing after repeated rate limiting");
        conn.outbox.close(CloseReason::Policy("rate limit exceeded repeatedly"));
    }
    false
}

async fn handle_text(hub: &Hub, conn: &Arc<ConnectionInfo>, limits: &mut ConnectionLimits, text: &str, workflow: Option<&str>) {
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
    if let Err(err) = dispatch(hub, conn, &env, workflow).await {
        reply_error(hub, conn, err);
    }
}

async fn dispatch(hub: &Hub, conn: &Arc<ConnectionInfo>, env: &ClientEnvelope, workflow: Option<&str>) -> Result<(), ErrorMessage> {
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
        ClientMessage::Publish { topic, event, data } => {
            super::check_topic(topic).map_err(hub_err)?;
            if let Some(why) = super::publish_refusal(&conn.principal, topic) {
                return Err(forbid(why));
            }
            let raw = serde_json::value::to_raw_value(data)
                .map_err(|e| error_for(ErrorCode::BadRequest, e.to_string(), env))?;
            let seq = hub.publish_raw(topic, event, &raw).await.map_err(hub_err)?;
            if let Some(id) = id {
                let result = serde_json::json!({ "topic": topic, "seq": seq });
                reply(conn, ServerMessage::Ack(Ack { id, result: Some(result) }));
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
                None => conn.user_id.clone().unwrap_or_else(|| conn.client_id.clone()),
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
        ClientMessage::Close => conn.outbox.close(CloseReason::Normal),
    }
    Ok(())
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: OutboxReceiver,
    conn: Arc<ConnectionInfo>,
    hub: Hub,
) {
    // grown on first use: an idle connection should not carry a batch buffer
    let mut batch = Vec::new();
    let closing = conn.outbox.closing().clone();
    loop {
        tokio::select! {
            biased;
            _ = closing.cancelled() => break,
            _ = rx.recv_many(&mut batch, WRITE_BATCH) => {
                let written = tokio::select! {
                    _ = closing.cancelled() => break,
                    written = write_batch(&mut sink, &mut batch, &hub) => written,
                };
                if written.is_err() {
                    conn.outbox.close(CloseReason::ClientGone);
                    break;
                }
            }
        }
    }
    // boxed: reached once per connection, so its state need not live in every writer
    Box::pin(finish(sink, rx, &conn.outbox, &hub)).await;
}

/// Writes queued items without a flush each, then flushes once.
async fn write_batch(
    sink: &mut SplitSink<WebSocket, Message>,
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

/// Sends what is already queued when the server closes (the replies that explain it,
/// a slow consumer's gapless backlog), then the close frame the reason calls for, each
/// bounded in time; the reader meanwhile waits for the peer's close frame.
async fn finish(mut sink: SplitSink<WebSocket, Message>, rx: OutboxReceiver, outbox: &Outbox, hub: &Hub) {
    let reason = outbox.close_reason();
    if reason != CloseReason::ClientGone {
        let mut batch = Vec::new();
        rx.try_recv_many(&mut batch, usize::MAX);
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, write_batch(&mut sink, &mut batch, hub)).await;
    }
    if reason == CloseReason::ClientGone {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
        return;
    }
    hub.counters().closed(reason.code());
    let frame = CloseFrame { code: reason.code(), reason: Utf8Bytes::from_static(reason.text()) };
    if let Ok(Ok(())) = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
    }
    // else the socket is stuck or broken: drop it; a codeless close would only mislead
}
