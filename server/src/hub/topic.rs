//! One topic: its seq counter, epoch, history and subscribers, behind one short lock.
//! Assigning a seq, storing the event and queueing it to every subscriber happen in
//! the same critical section, and so does registering a subscriber with its replay:
//! that is what makes delivery gapless and duplicate-free (PROTOCOL.md section 3).
//!
//! An event may be restricted: the aggregate topics (`coordinator`, `agents`,
//! `metrics`) mention runs, and a subscriber that may not see the run gets the same
//! event, at the same seq, with what would tell it of that run left out.

use super::budget::MemoryBudget;
use super::outbox::{Outbound, Outbox, PushError};
use crate::auth::Principal;
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

/// A published event as stored: the exact frame every subscriber receives (or, for
/// one that may not see `restricted.scope`, the redacted frame).
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
pub struct Redaction<'a> {
    pub scope: &'a str,
    pub data: &'a RawValue,
}

impl StoredEvent {
    /// The frame `viewer` may receive.
    pub fn frame_for(&self, viewer: &Principal) -> &str {
        self.pick(viewer).as_str()
    }

    fn pick(&self, viewer: &Principal) -> &Utf8Bytes {
        match &self.restricted {
            Some(r) if !viewer.may_subscribe(&r.scope) => &r.frame,
            _ => &self.frame,
        }
    }

    /// What it costs to keep: its frames and its bookkeeping.
    fn cost(&self) -> usize {
        const OVERHEAD: usize = 64;
        OVERHEAD + self.frame.len() + self.restricted.as_ref().map_or(0, |r| r.frame.len() + r.scope.len())
    }
}

struct Subscriber {
    conn_id: u64,
    outbox: Outbox,
    viewer: Principal,
}

struct State {
    last_seq: u64,
    history: VecDeque<Arc<StoredEvent>>,
    /// What `history` costs, in bytes (counted in the hub's budget when there is one).
    history_bytes: usize,
    subscribers: Vec<Subscriber>,
}

/// Receives every event of a durable topic, in seq order, while its lock is held.
pub type EventSink = Arc<dyn Fn(&str, u64, &str) + Send + Sync>;

pub struct Topic {
    name: Arc<str>,
    epoch: Arc<str>,
    retention: Retention,
    sink: Option<EventSink>,
    /// The byte budget shared by every non-durable topic (None: durable, or unbounded).
    budget: Option<Arc<MemoryBudget>>,
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
        Topic::with_budget(name, epoch, retention, None)
    }

    /// A non-durable topic whose history counts against `budget`.
    pub fn budgeted(name: &str, epoch: String, retention: Retention, budget: Arc<MemoryBudget>) -> Topic {
        Topic::with_budget(name, epoch, retention, Some(budget))
    }

    fn with_budget(name: &str, epoch: String, retention: Retention, budget: Option<Arc<MemoryBudget>>) -> Topic {
        Topic {
            name: name.into(),
            epoch: epoch.into(),
            retention,
            sink: None,
            budget,
            state: Mutex::new(State { last_seq: 0, history: VecDeque::new(), history_bytes: 0, subscribers: Vec::new() }),
        }
    }

    /// A durable topic: every event goes to `sink`, and `events` (seq, frame) are what
    /// an earlier process stored, so seq continues and the epoch stays.
    pub fn durable(name: &str, epoch: String, retention: Retention, sink: EventSink, events: Vec<(u64, String)>) -> Topic {
        let now = Instant::now();
        let last_seq = events.last().map_or(0, |(seq, _)| *seq);
        let history: VecDeque<Arc<StoredEvent>> = events
            .into_iter()
            .map(|(seq, frame)| Arc::new(StoredEvent { seq, at: now, frame: Utf8Bytes::from(frame), restricted: None }))
            .collect();
        let history_bytes = history.iter().map(|e| e.cost()).sum();
        Topic {
            name: name.into(),
            epoch: epoch.into(),
            retention,
            sink: Some(sink),
            budget: None,
            state: Mutex::new(State { last_seq, history, history_bytes, subscribers: Vec::new() }),
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
        self.publish_redacted(event, data, ts, None)
    }

    /// The same, with a redacted form for subscribers that may not see its scope.
    pub fn publish_redacted(&self, event: &str, data: &RawValue, ts: TimestampMs, redaction: Option<Redaction<'_>>) -> Published {
        // Everything but the seq is serialized before taking the lock.
        let (prefix, suffix) = frame_parts(&self.name, event, data, ts);
        let redacted = redaction.map(|r| (r.scope.to_owned(), frame_parts(&self.name, event, r.data, ts)));
        let now = Instant::now();
        let mut state = self.lock();
        state.last_seq += 1;
        let seq = state.last_seq;
        let frame = Utf8Bytes::from(with_seq(&prefix, seq, &suffix));
        if let Some(sink) = &self.sink {
            sink(&self.name, seq, frame.as_str());
        }
        let restricted = redacted.map(|(scope, (p, s))| Box::new(Restricted { scope, frame: Utf8Bytes::from(with_seq(&p, seq, &s)) }));
        let stored = Arc::new(StoredEvent { seq, at: now, frame, restricted });
        self.remember(&mut state, stored.clone(), now);
        let mut overflowed = 0;
        state.subscribers.retain(|s| {
            match s.outbox.push(Outbound::Event { frame: stored.pick(&s.viewer).clone(), published_at: now }) {
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

    /// Keeps an event in the history, within the topic's retention, and counts it.
    fn remember(&self, state: &mut State, event: Arc<StoredEvent>, now: Instant) {
        let cost = event.cost();
        state.history_bytes += cost;
        state.history.push_back(event);
        if let Some(b) = &self.budget {
            b.add(cost);
        }
        self.prune(state, now);
    }

    fn prune(&self, state: &mut State, now: Instant) {
        let mut freed = 0;
        while state.history.len() > self.retention.max_events
            || state.history.front().is_some_and(|e| now.duration_since(e.at) > self.retention.max_age)
        {
            if let Some(e) = state.history.pop_front() {
                freed += e.cost();
            }
        }
        self.release(state, freed);
    }

    fn release(&self, state: &mut State, freed: usize) {
        state.history_bytes -= freed;
        if let Some(b) = &self.budget {
            b.remove(freed);
        }
    }

    /// When the oldest retained event was published (for the hub's eviction order).
    pub fn oldest(&self) -> Option<Instant> {
        self.lock().history.front().map(|e| e.at)
    }

    /// Drops the oldest retained event (the hub's memory budget is spent); a resume
    /// from before what is left answers `recovered: false`.
    pub fn evict_oldest(&self) -> bool {
        let mut state = self.lock();
        let Some(e) = state.history.pop_front() else { return false };
        self.release(&mut state, e.cost());
        true
    }

    /// Registers a subscriber and queues `subscribed` and, with `since`, the replay.
    /// Subscribing again replaces the earlier subscription of the same connection.
    pub fn subscribe(
        &self,
        conn_id: u64,
        outbox: &Outbox,
        viewer: &Principal,
        since: Option<u64>,
        epoch: Option<&str>,
        id: Option<MessageId>,
    ) -> Result<SubscribeOutcome, PushError> {
        let mut state = self.lock();
        self.prune(&mut state, Instant::now());
        let (recovered, replay) = match since {
            None => (true, Vec::new()),
            Some(since) => match self.replay(&state, viewer, since, epoch) {
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
        state.subscribers.push(Subscriber { conn_id, outbox: outbox.clone(), viewer: viewer.clone() });
        Ok(SubscribeOutcome { seq: state.last_seq, recovered, replayed })
    }

    /// The frames after `since`, or None when they cannot all be given.
    fn replay(&self, state: &State, viewer: &Principal, since: u64, epoch: Option<&str>) -> Option<Vec<Utf8Bytes>> {
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
        Some(state.history.iter().skip(skip).map(|e| e.pick(viewer).clone()).collect())
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
        self.prune(&mut state, Instant::now());
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
        self.prune(&mut state, Instant::now());
        state.subscribers.is_empty() && state.history.is_empty()
    }

    pub fn is_budgeted(&self) -> bool {
        self.budget.is_some()
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        // a dropped topic's history leaves the budget with it
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = &self.budget {
            b.remove(state.history_bytes);
        }
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

#[cfg(test)]
mod tests;
