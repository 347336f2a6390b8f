//! The browser's live connection to the hub. The state lives in signals that every
//! component reads; the socket loop (`socket`, browser only) writes them. The
//! reconnect arithmetic (`backoff`) is plain Rust, tested on the host.

pub mod backoff;
pub mod cursors;
#[cfg(feature = "hydrate")]
mod socket;

use crate::protocol::EventMessage;
use leptos::prelude::*;

/// What the connection indicator shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// First attempt, before any `hello` (also what the server renders).
    Connecting,
    /// `hello` received; the socket is open.
    Connected,
    /// The socket dropped; the next attempt is scheduled or under way.
    Reconnecting,
    /// Closed with 1008: the session is not authorised; no retry.
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

/// The connection's observable state, shared through context.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub state: RwSignal<ConnectionState>,
    /// Round-trip time of the last app-level ping, in milliseconds.
    pub rtt_ms: RwSignal<Option<f64>>,
}

/// Creates the connection context; in the browser, also starts the socket loop.
pub fn provide_connection() -> Connection {
    let conn = Connection {
        state: RwSignal::new(ConnectionState::Connecting),
        rtt_ms: RwSignal::new(None),
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
            let id = socket::subscribe(topic, since, std::rc::Rc::new(on_event));
            on_cleanup(move || socket::unsubscribe(id));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (topic, since, on_event);
    }
}

pub fn use_connection() -> Connection {
    use_context::<Connection>().expect("provide_connection() runs in App before any page")
}
