//! The browser's live connection to the hub. Its state lives in signals that every
//! component reads; the socket loop (`socket`, browser only) writes them. The
//! reconnect arithmetic (`backoff`), the seq bookkeeping (`cursors`, `resync`) and the
//! outgoing queue (`outgoing`) are plain Rust, tested on the host.

pub mod backoff;
pub mod browser;
pub mod cursors;
pub mod http;
pub mod outgoing;
pub mod resync;
#[cfg(feature = "hydrate")]
mod socket;

use crate::protocol::{ClientMessage, ErrorMessage, EventMessage};
use leptos::prelude::*;
use outgoing::SendError;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// What the connection indicator shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// First attempt, before any `hello` (also what the server renders).
    Connecting,
    /// `hello` received; the socket is open.
    Connected,
    /// The socket dropped; the next attempt is scheduled or under way.
    Reconnecting,
    /// Closed with 1008 and no new access could be had: no retry.
    Unauthorized,
}

impl ConnectionState {
    pub fn label(self) -> &'static str {
        match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting => "reconnecting",
            ConnectionState::Unauthorized => "unauthorized",
        }
    }
}

/// Loads a topic's snapshot over HTTP, applies it to the page, and yields the seq it
/// reflects (None when it could not be loaded; it is tried again).
pub type Loader = Rc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<u64>>>>>;

/// The answer to a message sent with `send`: the `ack`'s result, or the `error`.
pub type Reply = Result<Option<serde_json::Value>, ErrorMessage>;

/// The connection's observable state, shared through context.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub state: RwSignal<ConnectionState>,
    /// Round-trip time of the last app-level ping, in milliseconds.
    pub rtt_ms: RwSignal<Option<f64>>,
    /// Messages sent while offline, waiting for the connection.
    pub queued: RwSignal<usize>,
    /// When the next attempt is due (`Date.now()` milliseconds), while reconnecting.
    pub retry_at: RwSignal<Option<f64>>,
    /// Why the server refused the connection (close 1008), when it did.
    pub refused: RwSignal<Option<String>>,
}

/// Creates the connection context; in the browser, also starts the socket loop.
pub fn provide_connection() -> Connection {
    let conn = Connection {
        state: RwSignal::new(ConnectionState::Connecting),
        rtt_ms: RwSignal::new(None),
        queued: RwSignal::new(0),
        retry_at: RwSignal::new(None),
        refused: RwSignal::new(None),
    };
    provide_context(conn);
    #[cfg(feature = "hydrate")]
    socket::start(conn);
    conn
}

impl Connection {
    /// Calls `on_event` with every new event of `topic`, in seq order and without
    /// duplicates, across reconnects, until the calling component is cleaned up.
    /// `since: Some(0)` first replays the topic's retained history (a sparkline's
    /// backfill); `None` starts live. On the server this does nothing.
    pub fn subscribe(&self, topic: &str, since: Option<u64>, on_event: impl Fn(&EventMessage) + 'static) {
        #[cfg(feature = "hydrate")]
        {
            let id = socket::subscribe(topic, since, None, Rc::new(on_event));
            on_cleanup(move || socket::unsubscribe(id));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (topic, since, on_event);
    }

    /// Snapshot + delta: once subscribed, `load` fetches the topic's state over HTTP
    /// and applies it; live events after its seq follow through `on_event`, in order.
    /// When the server cannot resume the topic (`recovered: false`, a new epoch),
    /// `load` runs again. On the server this does nothing.
    pub fn subscribe_synced(&self, topic: &str, load: Loader, on_event: impl Fn(&EventMessage) + 'static) {
        #[cfg(feature = "hydrate")]
        {
            let id = socket::subscribe(topic, None, Some(load), Rc::new(on_event));
            on_cleanup(move || socket::unsubscribe(id));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (topic, load, on_event);
    }

    /// Sends a message now, or when the connection is back (in order, with whatever
    /// else was sent while offline); `on_reply` hears the `ack` or the `error`.
    pub fn send(&self, msg: ClientMessage, on_reply: impl FnOnce(Reply) + 'static) -> Result<(), SendError> {
        #[cfg(feature = "hydrate")]
        return socket::send(msg, Box::new(on_reply));
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = (msg, on_reply);
            Ok(())
        }
    }

    /// Skips the rest of the backoff delay and tries to connect now.
    pub fn retry_now(&self) {
        #[cfg(feature = "hydrate")]
        socket::wake();
    }
}

pub fn use_connection() -> Connection {
    use_context::<Connection>().expect("provide_connection() runs in App before any page")
}
