//! The socket loop (browser only): connect, read, ping, subscribe, and reconnect with
//! backoff, resubscribing every topic with `since` so no event is lost; snapshots
//! reloaded over HTTP when the server cannot resume a topic; messages sent while
//! offline flushed in order on reconnect.

use super::backoff::Backoff;
use super::cursors::{Cursors, Resumed};
use super::outgoing::{OfflineQueue, Requests, SendError};
use super::resync::Resync;
use super::{browser, Connection, ConnectionState, Loader, Reply};
use crate::protocol::{ClientEnvelope, ClientMessage, EventMessage, ServerMessage, Subscribed};
use futures::channel::mpsc;
use futures::future::{select, Either};
use futures::{SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message, WebSocketError};
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// App-level ping period: detects half-open connections and measures round trips.
const PING_EVERY_MS: f64 = 10_000.0;
/// A pong later than this after its ping means the connection is dead.
const PONG_TIMEOUT_MS: f64 = 5_000.0;
/// A snapshot that failed to load is tried again after this long.
const RELOAD_RETRY_MS: u32 = 2_000;
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_POLICY: u16 = 1008;

type Handler = Rc<dyn Fn(&EventMessage)>;
type Waiter = Box<dyn FnOnce(Reply)>;

/// Topics wanted by the page, their handlers, and the way to the open socket. The
/// browser runs one thread, so a thread-local is the whole synchronisation.
#[derive(Default)]
struct Registry {
    cursors: Cursors,
    handlers: Vec<(u64, String, Handler)>,
    synced: HashMap<String, (Loader, Resync)>,
    next_id: u64,
    /// Set while a connection is open (after `hello`).
    outbox: Option<mpsc::UnboundedSender<ClientEnvelope>>,
    offline: OfflineQueue,
    requests: Requests<Waiter>,
    /// Wakes the backoff wait early (retry now, back online, tab visible).
    wake: Option<mpsc::UnboundedSender<()>>,
    conn: Option<Connection>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    REGISTRY.with_borrow_mut(f)
}

pub(super) fn subscribe(topic: &str, since: Option<u64>, loader: Option<Loader>, handler: Handler) -> u64 {
    let (id, load_now) = with(|r| {
        r.next_id += 1;
        let id = r.next_id;
        r.handlers.push((id, topic.to_owned(), handler));
        let new = r.cursors.want(topic, since);
        if new {
            if let (Some(tx), Some(msg)) = (&r.outbox, r.cursors.subscribe_message(topic)) {
                let _ = tx.unbounded_send(ClientEnvelope::new(msg));
            }
        }
        // the newest loader wins (it belongs to the component now on screen); on a
        // topic already subscribed, it loads at once rather than at the next `subscribed`
        let load_now = loader.is_some() && !new && r.outbox.is_some();
        if let Some(loader) = loader {
            r.synced.insert(topic.to_owned(), (loader, Resync::default()));
        }
        (id, load_now)
    });
    if load_now {
        start_load(topic.to_owned());
    }
    id
}

pub(super) fn unsubscribe(id: u64) {
    with(|r| {
        let Some(pos) = r.handlers.iter().position(|(h, _, _)| *h == id) else { return };
        let (_, topic, _) = r.handlers.remove(pos);
        if r.handlers.iter().all(|(_, t, _)| *t != topic) {
            r.cursors.forget(&topic);
            r.synced.remove(&topic);
            if let Some(tx) = &r.outbox {
                let _ = tx.unbounded_send(ClientEnvelope::new(ClientMessage::Unsubscribe { topic }));
            }
        }
    })
}

pub(super) fn send(msg: ClientMessage, on_reply: Waiter) -> Result<(), SendError> {
    let result = with(|r| {
        let online = r.outbox.is_some();
        let env = r.requests.register(msg, on_reply, online);
        match &r.outbox {
            Some(tx) => {
                let _ = tx.unbounded_send(env);
                Ok(())
            }
            None => r.offline.push(env.clone()).inspect_err(|_| {
                r.requests.forget(&env);
            }),
        }
    });
    update_queued();
    result
}

pub(super) fn wake() {
    with(|r| {
        if let Some(w) = &r.wake {
            let _ = w.unbounded_send(());
        }
    });
}

fn update_queued() {
    let (conn, n) = with(|r| (r.conn, r.offline.len()));
    if let Some(c) = conn {
        c.queued.set(n);
    }
}

fn handlers_of(r: &Registry, topic: &str) -> Vec<Handler> {
    r.handlers.iter().filter(|(_, t, _)| t == topic).map(|(_, _, h)| h.clone()).collect()
}

/// Hands a new event to the topic's handlers, unless it was already seen or its
/// snapshot is still loading.
fn dispatch(ev: EventMessage) {
    let deliver = with(|r| {
        if !r.cursors.accept(&ev.topic, ev.seq) {
            return None;
        }
        let ev = match r.synced.get_mut(&ev.topic) {
            Some((_, resync)) => resync.offer(ev)?,
            None => ev,
        };
        let handlers = handlers_of(r, &ev.topic);
        Some((ev, handlers))
    });
    // called outside the borrow: a handler may subscribe or unsubscribe
    if let Some((ev, handlers)) = deliver {
        for h in handlers {
            h(&ev);
        }
    }
}

fn on_subscribed(s: &Subscribed) {
    let load = with(|r| {
        let resumed = r.cursors.on_subscribed(s)?;
        let (_, resync) = r.synced.get(&s.topic)?;
        (resumed != Resumed::Gapless || resync.needs_sync()).then_some(())
    });
    if load.is_some() {
        start_load(s.topic.clone());
    }
}

/// Runs the topic's loader; the live events that arrive meanwhile wait for it.
fn start_load(topic: String) {
    let Some((loader, generation)) = with(|r| {
        let (loader, resync) = r.synced.get_mut(&topic)?;
        Some((loader.clone(), resync.start()))
    }) else {
        return;
    };
    leptos::task::spawn_local(async move {
        let result = loader().await;
        let deliver = with(|r| {
            let (_, resync) = r.synced.get_mut(&topic)?;
            match result {
                Some(seq) => {
                    let held = resync.finish(generation, seq)?;
                    r.cursors.advance(&topic, seq);
                    Some(Ok((held, handlers_of(r, &topic))))
                }
                None => resync.fail(generation).then_some(Err(())),
            }
        });
        match deliver {
            Some(Ok((held, handlers))) => {
                for ev in &held {
                    for h in &handlers {
                        h(ev);
                    }
                }
            }
            Some(Err(())) => {
                TimeoutFuture::new(RELOAD_RETRY_MS).await;
                let again = with(|r| r.outbox.is_some() && r.synced.get(&topic).is_some_and(|(_, s)| s.needs_sync()));
                if again {
                    start_load(topic);
                }
            }
            None => {}
        }
    });
}

/// How one connection ended, and so what to do next.
enum End {
    /// Reconnect after a backoff delay.
    Retry,
    /// Closed with 1000: the server or the user ended it on purpose.
    Normal,
    /// Closed with 1008: not authorised (the reason the server gave).
    Refused(String),
}

pub(super) fn start(conn: Connection) {
    let (wake_tx, wake_rx) = mpsc::unbounded();
    with(|r| {
        r.wake = Some(wake_tx);
        r.conn = Some(conn);
    });
    // back online or back in view: no reason to wait out the backoff
    browser::on_online_or_visible(wake);
    leptos::task::spawn_local(run(conn, wake_rx));
}

async fn run(conn: Connection, mut wake_rx: mpsc::UnboundedReceiver<()>) {
    let mut backoff = Backoff::default();
    let mut fresh_access_tried = false;
    loop {
        let (end, greeted) = session(conn, &mut backoff).await;
        let lost = with(|r| {
            r.outbox = None;
            r.requests.connection_lost()
        });
        for (waiter, err) in lost {
            waiter(Err(err));
        }
        match end {
            End::Normal => return,
            End::Refused(reason) => {
                // an access token that expired: ask for a new one once, not in a loop
                let renew = greeted || !fresh_access_tried;
                fresh_access_tried = true;
                if renew && super::http::renew_access().await {
                    continue;
                }
                conn.refused.set(Some(reason));
                conn.state.set(ConnectionState::Unauthorized);
                return;
            }
            End::Retry => {}
        }
        if greeted {
            fresh_access_tried = false;
        }
        conn.state.set(ConnectionState::Reconnecting);
        let delay = backoff.next_delay(js_sys::Math::random());
        let delay_ms = delay.as_millis().min(u32::MAX as u128) as u32;
        conn.retry_at.set(Some(js_sys::Date::now() + delay_ms as f64));
        while wake_rx.try_recv().is_ok() {}
        let _ = select(TimeoutFuture::new(delay_ms), wake_rx.next()).await;
        conn.retry_at.set(None);
    }
}

fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or_else(js_sys::Date::now)
}

fn text(env: ClientEnvelope) -> Message {
    Message::Text(env.to_json())
}

/// What woke the session loop.
enum Wake {
    Frame(Option<Result<Message, WebSocketError>>),
    Outgoing(Option<ClientEnvelope>),
    Timer,
}

/// On `hello`: the socket becomes the outbox, every topic is resubscribed from its
/// last seq, then what was sent while offline goes out, in order.
fn greeted(out_tx: &mpsc::UnboundedSender<ClientEnvelope>) -> Vec<ClientEnvelope> {
    let msgs = with(|r| {
        r.outbox = Some(out_tx.clone());
        let mut msgs: Vec<ClientEnvelope> = r.cursors.resubscribe_all().into_iter().map(ClientEnvelope::new).collect();
        for env in r.offline.drain() {
            r.requests.mark_sent(&env);
            msgs.push(env);
        }
        msgs
    });
    update_queued();
    msgs
}

fn on_reply(id: &crate::protocol::MessageId, reply: Reply) {
    if let Some(waiter) = with(|r| r.requests.take(id)) {
        waiter(reply);
    }
}

/// One connection, until it ends; also says whether it got as far as `hello`.
async fn session(conn: Connection, backoff: &mut Backoff) -> (End, bool) {
    let url = match super::http::ws_url().await {
        Ok(url) => url,
        Err(super::http::Access::Denied(why)) => return (End::Refused(why), false),
        Err(super::http::Access::Unreachable) => return (End::Retry, false),
    };
    let Ok(ws) = WebSocket::open(&url) else { return (End::Retry, false) };
    let (mut tx, mut rx) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded::<ClientEnvelope>();
    // before `hello` the same timer is the deadline for it
    let mut next_ping = now_ms() + PONG_TIMEOUT_MS;
    let mut pong_deadline: Option<f64> = None;
    let mut said_hello = false;
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
                    said_hello = true;
                    backoff.reset();
                    conn.state.set(ConnectionState::Connected);
                    conn.refused.set(None);
                    next_ping = now_ms(); // a first round trip at once, for the indicator
                    for env in greeted(&out_tx) {
                        if tx.send(text(env)).await.is_err() {
                            return (End::Retry, true);
                        }
                    }
                }
                Ok(ServerMessage::Event(ev)) => dispatch(ev),
                Ok(ServerMessage::Subscribed(s)) => on_subscribed(&s),
                Ok(ServerMessage::Pong(pong)) => {
                    if let Some(sent) = pong.ts.and_then(|ts| ts.as_f64()) {
                        conn.rtt_ms.set(Some(now_ms() - sent));
                    }
                    pong_deadline = None;
                }
                Ok(ServerMessage::Ack(a)) => on_reply(&a.id, Ok(a.result)),
                Ok(ServerMessage::Error(e)) => match e.id.clone() {
                    Some(id) => on_reply(&id, Err(e)),
                    None => leptos::logging::warn!("server error {}: {}", e.code, e.message),
                },
                Ok(ServerMessage::Unsubscribed(_)) => {}
                Err(e) => leptos::logging::warn!("ignoring a frame that is not protocol: {e}"),
            },
            Wake::Frame(Some(Ok(Message::Bytes(_)))) => {}
            Wake::Frame(Some(Err(WebSocketError::ConnectionClose(ev)))) => {
                let end = match ev.code {
                    CLOSE_NORMAL => End::Normal,
                    CLOSE_POLICY => End::Refused(ev.reason),
                    _ => End::Retry,
                };
                return (end, said_hello);
            }
            Wake::Frame(Some(Err(_)) | None) => return (End::Retry, said_hello),
            Wake::Outgoing(Some(env)) => {
                if tx.send(text(env)).await.is_err() {
                    return (End::Retry, said_hello);
                }
            }
            Wake::Outgoing(None) => {}
            Wake::Timer => {
                let now = now_ms();
                if pong_deadline.is_some_and(|d| now >= d) {
                    return (End::Retry, said_hello);
                }
                if now >= next_ping && said_hello {
                    let ping = ClientMessage::Ping { ts: serde_json::Number::from_f64(now) };
                    if tx.send(text(ClientEnvelope::new(ping))).await.is_err() {
                        return (End::Retry, said_hello);
                    }
                    next_ping = now + PING_EVERY_MS;
                    pong_deadline = Some(now + PONG_TIMEOUT_MS);
                } else if now >= next_ping {
                    return (End::Retry, false); // no `hello` in time
                }
            }
        }
    }
}
