//! The socket loop (browser only): connect, read, ping, and reconnect with backoff.

use super::backoff::Backoff;
use super::{Connection, ConnectionState};
use crate::protocol::{ClientEnvelope, ClientMessage, ServerMessage};
use futures::future::{select, Either};
use futures::{SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message, WebSocketError};
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;

/// App-level ping period: detects half-open connections and measures round trips.
const PING_EVERY_MS: f64 = 10_000.0;
/// A pong later than this after its ping means the connection is dead.
const PONG_TIMEOUT_MS: f64 = 5_000.0;
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_POLICY: u16 = 1008;

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
        match session(conn, &mut backoff).await {
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

async fn session(conn: Connection, backoff: &mut Backoff) -> End {
    let Some(url) = ws_url() else { return End::Retry };
    let Ok(ws) = WebSocket::open(&url) else { return End::Retry };
    let (mut tx, mut rx) = ws.split();
    let mut next_ping = now_ms() + PING_EVERY_MS;
    let mut pong_deadline: Option<f64> = None;
    loop {
        let deadline = pong_deadline.map_or(next_ping, |d| d.min(next_ping));
        let wait = (deadline - now_ms()).max(0.0) as u32;
        match select(rx.next(), TimeoutFuture::new(wait)).await {
            Either::Left((Some(Ok(Message::Text(text))), _)) => match ServerMessage::from_json(&text) {
                Ok(ServerMessage::Hello(_)) => {
                    backoff.reset();
                    conn.state.set(ConnectionState::Connected);
                    next_ping = now_ms(); // a first round trip at once, for the indicator
                }
                Ok(ServerMessage::Pong(pong)) => {
                    if let Some(sent) = pong.ts.and_then(|ts| ts.as_f64()) {
                        conn.rtt_ms.set(Some(now_ms() - sent));
                    }
                    pong_deadline = None;
                }
                Ok(_) => {}
                Err(e) => leptos::logging::warn!("ignoring a frame that is not protocol: {e}"),
            },
            Either::Left((Some(Ok(Message::Bytes(_))), _)) => {}
            Either::Left((Some(Err(WebSocketError::ConnectionClose(ev))), _)) => {
                return match ev.code {
                    CLOSE_NORMAL => End::Normal,
                    CLOSE_POLICY => End::Unauthorized,
                    _ => End::Retry,
                };
            }
            Either::Left((Some(Err(_)), _)) | Either::Left((None, _)) => return End::Retry,
            Either::Right(((), _)) => {
                let now = now_ms();
                if pong_deadline.is_some_and(|d| now >= d) {
                    return End::Retry;
                }
                if now >= next_ping {
                    let ping = ClientMessage::Ping { ts: serde_json::Number::from_f64(now) };
                    if tx.send(Message::Text(ClientEnvelope::new(ping).to_json())).await.is_err() {
                        return End::Retry;
                    }
                    next_ping = now + PING_EVERY_MS;
                    pong_deadline = Some(now + PONG_TIMEOUT_MS);
                }
            }
        }
    }
}
