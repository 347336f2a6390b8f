//! One topic: its seq counter, epoch, history and subscribers, behind one short lock.
//! Assigning a seq, storing the event and queueing it to every subscriber happen in
//! the same critical section, and so does registering a subscriber with its replay:
//! that is what makes delivery gapless and duplicate-free (PROTOCOL.md section 3).

use super::outbox::{Outbound, Outbox, PushError};
use app::protocol::{MessageId, ServerMessage, Subscribed, TimestampMs};
use axum::extract::ws::Utf8Bytes;
use serde_json::value::RawValue;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How much history a topic keeps: whichever limit is reached first.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_events: usize,
    pub max_age: Duration,
}

/// A published event as stored: the exact frame every subscriber receives.
#[derive(Debug)]
pub struct StoredEvent {
    pub seq: u64,
    pub at: Instant,
    pub frame: Utf8Bytes,
}

struct Subscriber {
    conn_id: u64,
    outbox: Outbox,
}

struct State {
    last_seq: u64,
    history: VecDeque<Arc<StoredEvent>>,
    subscribers: Vec<Subscriber>,
}

/// Receives every event of a durable topic, in seq order, while its lock is held.
pub type EventSink = Arc<dyn Fn(&str, u64, &str) + Send + Sync>;

pub struct Topic {
    name: Arc<str>,
    epoch: Arc<str>,
    retention: Retention,
    sink: Option<EventSink>,
    /// A std mutex: held for microseconds, never across an await, and uncontended
    /// except by publishers of the same topic, which must serialise anyway.
    state: Mutex<State>,
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub seq: u64,
    pub delivered: usize,
    /// Subscribers closed with 1013 because their queue was full.
    pub overflowed: usize,
}

/// The answer to a subscribe, already queued to the subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOutcome {
    pub seq: u64,
    pub recovered: bool,
    pub replayed: usize,
}

impl Topic {
    pub fn new(name: &str, epoch: String, retention: Retention) -> Topic {
        Topic {
            name: name.into(),
            epoch: epoch.into(),
            retention,
            sink: None,
            state: Mutex::new(State { last_seq: 0, history: VecDeque::new(), subscribers: Vec::new() }),
        }
    }

    /// A durable topic: every event goes to `sink`, and `events` (seq, frame) are what
    /// an earlier process stored, so seq continues and the epoch stays.
    pub fn durable(name: &str, epoch: String, retention: Retention, sink: EventSink, events: Vec<(u64, String)>) -> Topic {
        let now = Instant::now();
        let last_seq = events.last().map_or(0, |(seq, _)| *seq);
        let history = events
            .into_iter()
            .map(|(seq, frame)| Arc::new(StoredEvent { seq, at: now, frame: Utf8Bytes::from(frame) }))
            .collect();
        Topic {
            name: name.into(),
            epoch: epoch.into(),
            retention,
            sink: Some(sink),
            state: Mutex::new(State { last_seq, history, subscribers: Vec::new() }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock would be a bug in this file; keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Assigns the next seq, stores the event and queues it to every subscriber.
    pub fn publish(&self, event: &str, data: &RawValue, ts: TimestampMs) -> Published {
        // Everything but the seq is serialized before taking the lock.
        let (prefix, suffix) = frame_parts(&self.name, event, data, ts);
        let now = Instant::now();
        let mut state = self.lock();
        state.last_seq += 1;
        let seq = state.last_seq;
        let mut text = String::with_capacity(prefix.len() + suffix.len() + 20);
        text.push_str(&prefix);
        text.push_str(itoa::Buffer::new().format(seq));
        text.push_str(&suffix);
        let frame = Utf8Bytes::from(text);
        if let Some(sink) = &self.sink {
            sink(&self.name, seq, frame.as_str());
        }
        state.history.push_back(Arc::new(StoredEvent { seq, at: now, frame: frame.clone() }));
        prune(&mut state.history, self.retention, now);
        let mut overflowed = 0;
        state.subscribers.retain(|s| {
            match s.outbox.push(Outbound::Event { frame: frame.clone(), published_at: now }) {
                Ok(()) => true,
                Err(PushError::Overflow) => {
                    overflowed += 1;
                    false
                }
                Err(PushError::Closed) => false,
            }
        });
        Published { seq, delivered: state.subscribers.len(), overflowed }
    }

    /// Registers a subscriber and queues `subscribed` and, with `since`, the replay.
    /// Subscribing again replaces the earlier subscription of the same connection.
    pub fn subscribe(
        &self,
        conn_id: u64,
        outbox: &Outbox,
        since: Option<u64>,
        epoch: Option<&str>,
        id: Option<MessageId>,
    ) -> Result<SubscribeOutcome, PushError> {
        let mut state = self.lock();
        prune(&mut state.history, self.retention, Instant::now());
        let (recovered, replay) = match since {
            None => (true, Vec::new()),
            Some(since) => match self.replay(&state, since, epoch) {
                Some(frames) => (true, frames),
                None => (false, Vec::new()),
            },
        };
        let subscribed = ServerMessage::Subscribed(Subscribed {
            topic: self.name.to_string(),
            seq: state.last_seq,
            epoch: self.epoch.to_string(),
            recovered,
            id,
        });
        let replayed = replay.len();
        let mut batch = Vec::with_capacity(replayed + 1);
        batch.push(Utf8Bytes::from(subscribed.to_json()));
        batch.extend(replay);
        state.subscribers.retain(|s| s.conn_id != conn_id);
        outbox.push(Outbound::Batch(batch.into_boxed_slice()))?;
        state.subscribers.push(Subscriber { conn_id, outbox: outbox.clone() });
        Ok(SubscribeOutcome { seq: state.last_seq, recovered, replayed })
    }

    /// The frames after `since`, or None when they cannot all be given.
    fn replay(&self, state: &State, since: u64, epoch: Option<&str>) -> Option<Vec<Utf8Bytes>> {
        if epoch.is_some_and(|e| e != &*self.epoch) || since > state.last_seq {
            return None;
        }
        if since == state.last_seq {
            return Some(Vec::new());
        }
        let first = state.history.front()?.seq;
        if first > since + 1 {
            return None;
        }
        let skip = (since + 1 - first) as usize;
        Some(state.history.iter().skip(skip).map(|e| e.frame.clone()).collect())
    }

    /// Returns whether the connection was subscribed.
    pub fn unsubscribe(&self, conn_id: u64) -> bool {
        let mut state = self.lock();
        let before = state.subscribers.len();
        state.subscribers.retain(|s| s.conn_id != conn_id);
        before != state.subscribers.len()
    }

    /// Up to `limit` retained events with seq > `since`, and the last seq.
    pub fn history(&self, since: u64, limit: usize) -> (Vec<Arc<StoredEvent>>, u64) {
        let mut state = self.lock();
        prune(&mut state.history, self.retention, Instant::now());
        let events = state.history.iter().filter(|e| e.seq > since).take(limit).cloned().collect();
        (events, state.last_seq)
    }

    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    pub fn subscriber_count(&self) -> usize {
        self.lock().subscribers.len()
    }

    /// Nothing to keep: no subscriber and no retained event (so nothing to resume).
    pub fn is_idle(&self) -> bool {
        let mut state = self.lock();
        prune(&mut state.history, self.retention, Instant::now());
        state.subscribers.is_empty() && state.history.is_empty()
    }
}

fn prune(history: &mut VecDeque<Arc<StoredEvent>>, retention: Retention, now: Instant) {
    while history.len() > retention.max_events {
        history.pop_front();
    }
    while history.front().is_some_and(|e| now.duration_since(e.at) > retention.max_age) {
        history.pop_front();
    }
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

#[cfg(test)]
mod tests;
