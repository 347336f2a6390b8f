//! The wire protocol, version 1 (docs/protocol.md): the single definition of every
//! message, shared by the server and the browser. Plain serde, no Leptos.

mod agent;
mod client;
mod events;
mod http;
mod server;
mod topic;

pub use agent::*;
pub use client::*;
pub use events::*;
pub use http::*;
pub use server::*;
pub use topic::*;

/// The protocol version carried as `"v"` by every server message.
pub const PROTOCOL_VERSION: u8 = 1;

/// The optional correlation id of a client message: a string or a number, echoed back.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum MessageId {
    Number(serde_json::Number),
    Text(String),
}

impl From<&str> for MessageId {
    fn from(s: &str) -> Self {
        MessageId::Text(s.to_owned())
    }
}

impl From<u64> for MessageId {
    fn from(n: u64) -> Self {
        MessageId::Number(n.into())
    }
}

/// Milliseconds since the Unix epoch, the protocol's timestamp unit.
pub type TimestampMs = i64;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod doc_examples;

#[cfg(test)]
mod typescript;
