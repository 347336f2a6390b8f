//! A published event as the hub keeps and sends it: the exact `event` frame every
//! subscriber receives, serialized once. An event may be restricted: the aggregate
//! topics (`coordinator`, `agents`, `metrics`) mention runs, and a subscriber that may
//! not see the run gets the same event, at the same seq, with that part left out.

use crate::auth::Principal;
use app::protocol::TimestampMs;
use axum::extract::ws::Utf8Bytes;
use serde_json::value::RawValue;
use std::time::Instant;

#[derive(Debug)]
pub struct StoredEvent {
    pub seq: u64,
    pub at: Instant,
    pub frame: Utf8Bytes,
    pub restricted: Option<Box<Restricted>>,
}

/// The part of an event only some subscribers may see.
#[derive(Debug)]
pub struct Restricted {
    /// The topic a viewer must be allowed to subscribe to (a run's) to get the full frame.
    pub scope: String,
    /// What the others get: the same event with that part left out.
    pub frame: Utf8Bytes,
}

/// The redacted form of an event, as a publisher gives it.
#[derive(Clone, Copy)]
pub struct Redaction<'a> {
    pub scope: &'a str,
    pub data: &'a RawValue,
}

impl StoredEvent {
    /// An event read back from storage (never restricted: only run topics are stored).
    pub fn stored(seq: u64, frame: String) -> StoredEvent {
        StoredEvent { seq, at: Instant::now(), frame: Utf8Bytes::from(frame), restricted: None }
    }

    /// The frame `viewer` may receive.
    pub fn frame_for(&self, viewer: &Principal) -> &str {
        self.pick(viewer).as_str()
    }

    pub fn pick(&self, viewer: &Principal) -> &Utf8Bytes {
        match &self.restricted {
            Some(r) if !viewer.may_subscribe(&r.scope) => &r.frame,
            _ => &self.frame,
        }
    }

    /// What it costs to keep in memory: its frames and its bookkeeping.
    pub fn cost(&self) -> usize {
        const OVERHEAD: usize = 64;
        OVERHEAD + self.frame.len() + self.restricted.as_ref().map_or(0, |r| r.frame.len() + r.scope.len())
    }
}

/// An event to publish, before it has a seq.
#[derive(Clone, Copy)]
pub struct Draft<'a> {
    pub event: &'a str,
    pub data: &'a RawValue,
    pub ts: TimestampMs,
    pub redaction: Option<Redaction<'a>>,
}

/// A draft serialized around its seq, ready to be sealed the instant it gets one: every
/// byte but the seq's is written before the log takes its lock.
pub struct Prepared {
    prefix: String,
    suffix: String,
    redacted: Option<(String, String, String)>,
}

impl Draft<'_> {
    pub fn prepare(&self, topic: &str) -> Prepared {
        let (prefix, suffix) = frame_parts(topic, self.event, self.data, self.ts);
        let redacted = self.redaction.map(|r| {
            let (p, s) = frame_parts(topic, self.event, r.data, self.ts);
            (r.scope.to_owned(), p, s)
        });
        Prepared { prefix, suffix, redacted }
    }
}

impl Prepared {
    pub fn seal(self, seq: u64, at: Instant) -> StoredEvent {
        let frame = Utf8Bytes::from(with_seq(&self.prefix, seq, &self.suffix));
        let restricted =
            self.redacted.map(|(scope, p, s)| Box::new(Restricted { scope, frame: Utf8Bytes::from(with_seq(&p, seq, &s)) }));
        StoredEvent { seq, at, frame, restricted }
    }
}

fn with_seq(prefix: &str, seq: u64, suffix: &str) -> String {
    let mut text = String::with_capacity(prefix.len() + suffix.len() + 20);
    text.push_str(prefix);
    text.push_str(itoa::Buffer::new().format(seq));
    text.push_str(suffix);
    text
}

/// The event frame split around its seq: `{"v":1,"type":"event","topic":…,"seq":` and
/// `,"ts":…,"event":…,"data":…}`. Field for field the protocol's `event` message.
pub fn frame_parts(topic: &str, event: &str, data: &RawValue, ts: TimestampMs) -> (String, String) {
    let mut prefix = String::with_capacity(40 + topic.len());
    prefix.push_str(r#"{"v":1,"type":"event","topic":"#);
    push_json_str(&mut prefix, topic);
    prefix.push_str(r#","seq":"#);
    let mut suffix = String::with_capacity(40 + event.len() + data.get().len());
    suffix.push_str(r#","ts":"#);
    suffix.push_str(itoa::Buffer::new().format(ts));
    suffix.push_str(r#","event":"#);
    push_json_str(&mut suffix, event);
    suffix.push_str(r#","data":"#);
    suffix.push_str(data.get());
    suffix.push('}');
    (prefix, suffix)
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json escapes exactly as JSON requires; writing to a String cannot fail
    out.push_str(&serde_json::to_string(s).expect("strings always serialize"));
}
