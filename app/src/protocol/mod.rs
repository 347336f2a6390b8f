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
/// (Read by hand rather than as an untagged enum, whose buffering deserializer would
/// cost the page's bundle more than the rest of this module.)
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(untagged)]
pub enum MessageId {
    Number(serde_json::Number),
    Text(String),
}

impl<'de> serde::Deserialize<'de> for MessageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Id;
        impl serde::de::Visitor<'_> for Id {
            type Value = MessageId;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_u64<E>(self, n: u64) -> Result<MessageId, E> {
                Ok(MessageId::Number(n.into()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<MessageId, E> {
                Ok(MessageId::Number(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<MessageId, E> {
                serde_json::Number::from_f64(n).map(MessageId::Number).ok_or_else(|| E::custom("not a finite number"))
            }
            fn visit_str<E>(self, s: &str) -> Result<MessageId, E> {
                Ok(MessageId::Text(s.to_owned()))
            }
        }
        d.deserialize_any(Id)
    }
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
