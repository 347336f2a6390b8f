//! Client → server messages (PROTOCOL.md section 4), and the one parser that turns a
//! text frame into a message or into the exact protocol error for it.

use super::{ErrorCode, ErrorMessage, MessageId, PROTOCOL_VERSION};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything a client may send.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Subscribe {
        topic: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        since: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        epoch: Option<String>,
    },
    Unsubscribe {
        topic: String,
    },
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        ts: Option<serde_json::Number>,
    },
    Publish {
        topic: String,
        event: String,
        #[cfg_attr(test, ts(type = "unknown"))]
        data: Value,
    },
    Control {
        action: ControlAction,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        workflow_id: Option<String>,
    },
    Confirm {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        workflow_id: Option<String>,
    },
    Command {
        command: CommandName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        #[cfg_attr(test, ts(type = "unknown"))]
        args: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        workflow_id: Option<String>,
    },
    Chat {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        workflow_id: Option<String>,
        text: String,
    },
    Close,
}

/// The `type` names the server understands, to tell `unknown_type` from `bad_request`.
pub const CLIENT_MESSAGE_TYPES: [&str; 9] = [
    "subscribe", "unsubscribe", "ping", "publish", "control", "confirm", "command", "chat", "close",
];

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    Pause,
    Resume,
    Cancel,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandName {
    RestartStage,
    CancelRun,
}

/// A client message with its optional correlation `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientEnvelope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<MessageId>,
    #[serde(flatten)]
    pub msg: ClientMessage,
}

impl ClientEnvelope {
    pub fn new(msg: ClientMessage) -> Self {
        ClientEnvelope { id: None, msg }
    }

    pub fn with_id(msg: ClientMessage, id: impl Into<MessageId>) -> Self {
        ClientEnvelope { id: Some(id.into()), msg }
    }

    /// The JSON text of this message, with `"v": 1`.
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).expect("client messages always serialize");
        if let Value::Object(map) = &mut value {
            map.insert("v".into(), PROTOCOL_VERSION.into());
        }
        value.to_string()
    }
}

/// Longest raw text echoed back in `original_message` when a frame is not JSON.
pub const ORIGINAL_MESSAGE_MAX_BYTES: usize = 1024;

/// Parses one text frame. On failure the `ErrorMessage` is the exact reply to send:
/// its code, the echoed `id` when one could be read, and `original_message`.
pub fn parse_client_message(text: &str) -> Result<ClientEnvelope, Box<ErrorMessage>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let mut err = ErrorMessage::new(ErrorCode::BadJson, format!("message is not valid JSON: {e}"));
        err.original_message = Some(Value::String(truncate_at_char(text, ORIGINAL_MESSAGE_MAX_BYTES).to_owned()));
        Box::new(err)
    })?;
    let fail = |code: ErrorCode, message: String, id: Option<MessageId>, value: Value| {
        let mut err = ErrorMessage::new(code, message);
        err.id = id;
        err.original_message = Some(value);
        Box::new(err)
    };
    let Value::Object(map) = &value else {
        return Err(fail(ErrorCode::BadRequest, "message must be a JSON object".into(), None, value));
    };
    let id = match map.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => match serde_json::from_value::<MessageId>(v.clone()) {
            Ok(id) => Some(id),
            Err(_) => return Err(fail(ErrorCode::BadRequest, "`id` must be a string or a number".into(), None, value)),
        },
    };
    let kind = match map.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(fail(ErrorCode::BadRequest, "`type` must be a string".into(), id, value)),
        None => return Err(fail(ErrorCode::BadRequest, "message has no `type`".into(), id, value)),
    };
    if !CLIENT_MESSAGE_TYPES.contains(&kind) {
        let message = format!("unknown message type {kind:?}; expected one of {}", CLIENT_MESSAGE_TYPES.join(", "));
        return Err(fail(ErrorCode::UnknownType, message, id, value));
    }
    match ClientMessage::deserialize(&value) {
        Ok(msg) => Ok(ClientEnvelope { id, msg }),
        Err(e) => Err(fail(ErrorCode::BadRequest, format!("invalid {kind} message: {e}"), id, value)),
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
