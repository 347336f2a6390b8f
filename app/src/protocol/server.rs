//! Server → client messages (PROTOCOL.md section 2). Each carries `"v": 1` and `"type"`.

use super::{MessageId, TimestampMs, PROTOCOL_VERSION};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// Every message the server sends.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Hello(Hello),
    Event(EventMessage),
    Subscribed(Subscribed),
    Unsubscribed(Unsubscribed),
    Pong(Pong),
    Ack(Ack),
    Error(ErrorMessage),
}

#[derive(Serialize)]
struct VersionedRef<'a> {
    v: u8,
    #[serde(flatten)]
    msg: &'a ServerMessage,
}

/// What every server frame starts with: read first, so the frame is then parsed once
/// more straight into its own type (no buffering of the whole frame, which an
/// internally tagged enum would need, and which `RawValue` data cannot go through).
#[derive(Deserialize)]
struct Head<'a> {
    v: u8,
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

/// Why a server frame could not be read (client side).
#[derive(Debug, thiserror::Error)]
pub enum ServerMessageError {
    #[error("not a protocol message: {0}")]
    Json(#[from] serde_json::Error),
    #[error("protocol version {0} is not supported (expected {PROTOCOL_VERSION})")]
    Version(u8),
    #[error("unknown message type {0:?}")]
    UnknownType(String),
}

impl ServerMessage {
    /// The JSON text of this message, with `"v": 1`.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings, numbers and JSON values into a String
        // cannot fail (no maps with non-string keys, no I/O).
        serde_json::to_string(&VersionedRef { v: PROTOCOL_VERSION, msg: self })
            .expect("server messages always serialize")
    }

    /// Reads one frame from the server.
    pub fn from_json(text: &str) -> Result<Self, ServerMessageError> {
        let head: Head = serde_json::from_str(text)?;
        if head.v != PROTOCOL_VERSION {
            return Err(ServerMessageError::Version(head.v));
        }
        Ok(match head.kind.as_ref() {
            "hello" => ServerMessage::Hello(serde_json::from_str(text)?),
            "event" => ServerMessage::Event(serde_json::from_str(text)?),
            "subscribed" => ServerMessage::Subscribed(serde_json::from_str(text)?),
            "unsubscribed" => ServerMessage::Unsubscribed(serde_json::from_str(text)?),
            "pong" => ServerMessage::Pong(serde_json::from_str(text)?),
            "ack" => ServerMessage::Ack(serde_json::from_str(text)?),
            "error" => ServerMessage::Error(serde_json::from_str(text)?),
            other => return Err(ServerMessageError::UnknownType(other.to_owned())),
        })
    }
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub max_subscriptions: usize,
    pub max_message_bytes: usize,
    pub rate_per_min: u32,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub client_id: String,
    pub server_ts: TimestampMs,
    pub heartbeat_ms: u64,
    pub limits: Limits,
}

/// One published event, as every subscriber receives it. Its `data` stays the JSON
/// text it arrived as, read into a type only by whoever needs it (`payload`).
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventMessage {
    pub topic: String,
    pub seq: u64,
    pub ts: TimestampMs,
    pub event: String,
    #[cfg_attr(test, ts(type = "unknown"))]
    pub data: Box<RawValue>,
}

impl PartialEq for EventMessage {
    fn eq(&self, other: &Self) -> bool {
        (self.seq, self.ts, &self.topic, &self.event, self.data.get())
            == (other.seq, other.ts, &other.topic, &other.event, other.data.get())
    }
}

impl EventMessage {
    /// The event's data as `T`.
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.data.get())
    }
}

/// The same frame as `ServerMessage::Event`, built from borrowed parts and already
/// serialized data, so the hub serializes each event exactly once.
#[derive(Serialize)]
pub struct EventFrame<'a> {
    pub v: u8,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub topic: &'a str,
    pub seq: u64,
    pub ts: TimestampMs,
    pub event: &'a str,
    pub data: &'a RawValue,
}

impl<'a> EventFrame<'a> {
    pub fn new(topic: &'a str, seq: u64, ts: TimestampMs, event: &'a str, data: &'a RawValue) -> Self {
        EventFrame { v: PROTOCOL_VERSION, kind: "event", topic, seq, ts, event, data }
    }

    pub fn to_json(&self) -> String {
        // Borrowed strings, integers and pre-validated raw JSON: cannot fail.
        serde_json::to_string(self).expect("event frames always serialize")
    }
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    pub topic: String,
    /// The topic's last seq at the moment of subscription.
    pub seq: u64,
    pub epoch: String,
    pub recovered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub id: Option<MessageId>,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unsubscribed {
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub id: Option<MessageId>,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    /// The client's `ts`, echoed; null when the ping had none.
    pub ts: Option<serde_json::Number>,
    pub server_ts: TimestampMs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub id: Option<MessageId>,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub id: MessageId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    #[cfg_attr(test, ts(type = "unknown"))]
    pub result: Option<Value>,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    BadRequest,
    UnknownType,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    TooManySubscriptions,
    Internal,
    /// The run's executor is not connected now (retry once it is).
    AgentOffline,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::BadJson,
        ErrorCode::BadRequest,
        ErrorCode::UnknownType,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::RateLimited,
        ErrorCode::TooManySubscriptions,
        ErrorCode::Internal,
        ErrorCode::AgentOffline,
    ];

    /// Whether the same message may succeed if sent again later.
    pub fn retryable(self) -> bool {
        matches!(self, ErrorCode::RateLimited | ErrorCode::Internal | ErrorCode::AgentOffline)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::Internal => "internal",
            ErrorCode::AgentOffline => "agent_offline",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorMessage {
    pub code: ErrorCode,
    pub message: String,
    pub retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub id: Option<MessageId>,
    /// The parsed client message when it parsed, else its raw text cut to 1,024 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    #[cfg_attr(test, ts(type = "unknown"))]
    pub original_message: Option<Value>,
}

impl ErrorMessage {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorMessage {
            code,
            message: message.into(),
            retryable: code.retryable(),
            id: None,
            original_message: None,
        }
    }
}
