//! The socket loop (browser only): connect, read, ping, subscribe, and reconnect with
//! backoff, resubscribing every topic with `since` so no event is lost.

use super::backoff::Backoff;
use super::cursors::Cursors;
use super::{Connection, ConnectionState};
use crate::protocol::{ClientEnvelope, ClientMessage, EventMessage, ServerMessage};
use futures::channel::mpsc;
use futures::future::{select, Either};
use futures::{SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message, WebSocketError};
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

/// App-level ping period: detects half-open connections and measures round trips.
const PING_EVERY_MS: f64 = 10_000.0;
/// A pong later than this after its ping means the connection is dead.
const PONG_TIMEOUT_MS: f64 = 5_000.0;
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_POLICY: u16 = 1008;

type Handler = Rc<dyn Fn(&EventMessage)>;

/// Topics wanted by the page, their handlers, and the way to the open socket. The
/// browser runs one thread, so a thread-local is the whole synchronisation.
#[derive(Default)]
struct Registry {
    cursors: Cursors,
    handlers: Vec<(u64, String, Handler)>,
    next_id: u64,
    /// Set while a connection is open (after `hello`).
    outbox: Option<mpsc::UnboundedSender<ClientMessage>>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

pub(super) fn subscribe(topic: &str, since: Option<u64>, handler: Handler) -> u64 {
    REGISTRY.with_borrow_mut(|r| {
        r.next_id += 1;
        let id = r.next_id;
        r.handlers.push((id, topic.to_owned(), handler));
        if r.cursors.want(topic, since) {
            if let (Some(tx), Some(msg)) = (&r.outbox, r.cursors.subscribe_message(topic)) {
                let _ = tx.unbounded_send(msg);
            }
        }
        id
    })
}

pub(super) fn unsubscribe(id: u64) {
    REGISTRY.with_borrow_mut(|r| {
        let Some(pos) = r.handlers.iter().position(|(h, _, _)| *h == id) else { return };
        let (_, topic, _) = r.handlers.remove(pos);
        if r.handlers.iter().all(|(_, t, _)| *t != topic) {
            r.cursors.forget(&topic);
            if let Some(tx) = &r.outbox {
                let _ = tx.unbounded_send(ClientMessage::Unsubscribe { topic });
            }
        }
    })
}

/// Hands a new event to the topic's handlers, unless it was already seen.
fn dispatch(ev: &EventMessage) {
    let handlers: Vec<Handler> = REGISTRY.with_borrow_mut(|r| {
        if !r.cursors.accept(&ev.topic, ev.seq) {
            return Vec::new();
        }
        r.handlers.iter().filter(|(_, t, _)| *t == ev.topic).map(|(_, _, h)| h.clone()).collect()
    });
    // called outside the borrow: a handler may subscribe or unsubscribe
    for h in handlers {
        h(ev);
    }
}

/// How one connection ended, and so what to do next.
enum End {
    /// Reconnect after a backoff delay.
    Retry,
    /// Closed with 1000: the server or the user ended it on purpose.
    Normal,
    /// Closed with 1008: not authorised; retrying would loop.
    Unauthorized,
}

pub(super) fn start(conn: Connection) {
    leptos::task::spawn_local(run(conn));
}

async fn run(conn: Connection) {
    let mut backoff = Backoff::default();
    loop {
        let end = session(conn, &mut backoff).await;
        REGISTRY.with_borrow_mut(|r| r.outbox = None);
        match end {
            End::Unauthorized => {
                conn.state.set(ConnectionState::Unauthorized);
                return;
            }
            End::Normal => return,
            End::Retry => {}
        }
        conn.state.set(ConnectionState::Reconnecting);
        let delay = backoff.next_delay(js_sys::Math::random());
        TimeoutFuture::new(delay.as_millis().min(u32::MAX as u128) as u32).await;
    }
}

fn ws_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" { "wss" } else { "ws" };
    Some(format!("{scheme}://{}/ws", location.host().ok()?))
}

fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or_else(js_sys::Date::now)
}

fn text(msg: ClientMessage) -> Message {
    Message::Text(ClientEnvelope::new(msg).to_json())
}

/// What woke the session loop.
enum Wake {
    Frame(Option<Result<Message, WebSocketError>>),
    Outgoing(Option<ClientMessage>),
    Timer,
}

async fn session(conn: Connection, backoff: &mut Backoff) -> End {
    let Some(url) = ws_url() else { return End::Retry };
    let Ok(ws) = WebSocket::open(&url) else { return End::Retry };
    let (mut tx, mut rx) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded::<ClientMessage>();
    let mut next_ping = now_ms() + PING_EVERY_MS;
    let mut pong_deadline: Option<f64> = None;
    loop {
        let deadline = pong_deadline.map_or(next_ping, |d| d.min(next_ping));
        let wait = (deadline - now_ms()).max(0.0) as u32;
        let io = select(rx.next(), out_rx.next());
        let wake = match select(io, TimeoutFuture::new(wait)).await {
            Either::Left((Either::Left((frame, _)), _)) => Wake::Frame(frame),
            Either::Left((Either::Right((out, _)), _)) => Wake::Outgoing(out),
            Either::Right(((), _)) => Wake::Timer,
        };
        match wake {
            Wake::Frame(Some(Ok(Message::Text(frame)))) => match ServerMessage::from_json(&frame) {
                Ok(ServerMessage::Hello(_)) => {
                    backoff.reset();
                    conn.state.set(ConnectionState::Connected);
                    next_ping = now_ms(); // a first round trip at once, for the indicator
                    let resubscribe = REGISTRY.with_borrow_mut(|r| {
                        r.outbox = Some(out_tx.clone());
                        r.cursors.resubscribe_all()
                    });
                    for msg in resubscribe {
                        if tx.send(text(msg)).await.is_err() {
                            return End::Retry;
                        }
                    }
                }
                Ok(ServerMessage::Event(ev)) => dispatch(&ev),
                Ok(ServerMessage::Subscribed(s)) => {
                    REGISTRY.with_borrow_mut(|r| r.cursors.on_subscribed(&s));
                }
                Ok(ServerMessage::Pong(pong)) => {
                    if let Some(sent) = pong.ts.and_then(|ts| ts.as_f64()) {
                        conn.rtt_ms.set(Some(now_ms() - sent));
                    }
                    pong_deadline = None;
                }
                Ok(ServerMessage::Error(e)) => leptos::logging::warn!("server error {}: {}", e.code, e.message),
                Ok(_) => {}
                Err(e) => leptos::logging::warn!("ignoring a frame that is not protocol: {e}"),
            },
            Wake::Frame(Some(Ok(Message::Bytes(_)))) => {}
            Wake::Frame(Some(Err(WebSocketError::ConnectionClose(ev)))) => {
                return match ev.code {
                    CLOSE_NORMAL => End::Normal,
                    CLOSE_POLICY => End::Unauthorized,
                    _ => End::Retry,
                };
            }
            Wake::Frame(Some(Err(_)) | None) => return End::Retry,
            Wake::Outgoing(Some(msg)) => {
                if tx.send(text(msg)).await.is_err() {
                    return End::Retry;
                }
            }
            Wake::Outgoing(None) => {}
            Wake::Timer => {
                let now = now_ms();
                if pong_deadline.is_some_and(|d| now >= d) {
                    return End::Retry;
                }
                if now >= next_ping {
                    let ping = ClientMessage::Ping { ts: serde_json::Number::from_f64(now) };
                    if tx.send(text(ping)).await.is_err() {
                        return End::Retry;
                    }
                    next_ping = now + PING_EVERY_MS;
                    pong_deadline = Some(now + PONG_TIMEOUT_MS);
                }
            }
        }
    }
}
