//! The log of non-durable topics: a seq counter, an epoch that is new each time the
//! topic is created (its history starts over when the process does), and a history
//! bounded by count and age per topic and, across topics, by the hub's byte budget.

use super::{Deliver, LogFuture, LogTopic, Range, TopicLog};
use crate::hub::budget::MemoryBudget;
use crate::hub::event::{Draft, StoredEvent};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How much history a topic keeps: whichever limit is reached first.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_events: usize,
    pub max_age: Duration,
}

pub fn new_epoch() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Opens memory topics: `retention` for each (`metrics` has its own), one byte budget
/// for all.
pub struct MemoryLog {
    retention: Retention,
    metrics_retention: Retention,
    budget: Option<Arc<MemoryBudget>>,
}

impl MemoryLog {
    pub fn new(retention: Retention, metrics_retention: Retention, budget: Option<Arc<MemoryBudget>>) -> MemoryLog {
        MemoryLog { retention, metrics_retention, budget }
    }
}

impl TopicLog for MemoryLog {
    fn open<'a>(&'a self, topic: &'a str) -> LogFuture<'a, Arc<dyn LogTopic>> {
        let retention = if topic == app::protocol::METRICS_TOPIC { self.metrics_retention } else { self.retention };
        let log: Arc<dyn LogTopic> = Arc::new(MemoryTopic::new(topic, new_epoch(), retention, self.budget.clone()));
        LogFuture::ready(Ok(log))
    }
}

struct State {
    last_seq: u64,
    history: VecDeque<Arc<StoredEvent>>,
    /// What `history` costs, in bytes (counted in the budget when there is one).
    bytes: usize,
}

pub struct MemoryTopic {
    name: Arc<str>,
    epoch: Arc<str>,
    retention: Retention,
    budget: Option<Arc<MemoryBudget>>,
    /// A std mutex: held for microseconds, never across an await, and contended only by
    /// publishers of the same topic, which must take turns anyway.
    state: Mutex<State>,
}

impl MemoryTopic {
    pub fn new(name: &str, epoch: String, retention: Retention, budget: Option<Arc<MemoryBudget>>) -> MemoryTopic {
        MemoryTopic {
            name: name.into(),
            epoch: epoch.into(),
            retention,
            budget,
            state: Mutex::new(State { last_seq: 0, history: VecDeque::new(), bytes: 0 }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // a panic while holding this lock would be a bug in this file; keep serving
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
        state.bytes -= freed;
        if let Some(b) = &self.budget {
            b.remove(freed);
        }
    }
}

impl LogTopic for MemoryTopic {
    fn epoch(&self) -> Arc<str> {
        self.epoch.clone()
    }

    fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    fn append<'a>(&'a self, draft: Draft<'a>, out: &'a dyn Deliver) -> LogFuture<'a, u64> {
        let prepared = draft.prepare(&self.name);
        let now = Instant::now();
        let mut state = self.lock();
        state.last_seq += 1;
        let seq = state.last_seq;
        let event = Arc::new(prepared.seal(seq, now));
        let cost = event.cost();
        state.bytes += cost;
        if let Some(b) = &self.budget {
            b.add(cost);
        }
        state.history.push_back(event.clone());
        self.prune(&mut state, now);
        // delivered under the lock: the fan-out sees this topic's events in seq order
        out.deliver(&event);
        LogFuture::ready(Ok(seq))
    }

    fn read(&self, since: u64, upto: u64, limit: usize) -> LogFuture<'_, Range> {
        let mut state = self.lock();
        self.prune(&mut state, Instant::now());
        let upto = upto.min(state.last_seq);
        let first = state.history.front().map_or(state.last_seq + 1, |e| e.seq);
        let complete = since >= upto || first <= since + 1;
        let skip = (since + 1).saturating_sub(first) as usize;
        let events = state.history.iter().skip(skip).take_while(|e| e.seq <= upto).take(limit).cloned().collect();
        LogFuture::ready(Ok(Range { events, complete }))
    }

    fn is_idle(&self) -> bool {
        let mut state = self.lock();
        self.prune(&mut state, Instant::now());
        state.history.is_empty()
    }

    fn in_memory(&self, _since: u64) -> bool {
        true
    }

    fn oldest(&self) -> Option<Instant> {
        self.lock().history.front().map(|e| e.at)
    }

    fn evict_oldest(&self) -> bool {
        let mut state = self.lock();
        let Some(e) = state.history.pop_front() else { return false };
        self.release(&mut state, e.cost());
        true
    }

    fn is_budgeted(&self) -> bool {
        self.budget.is_some()
    }
}

impl Drop for MemoryTopic {
    fn drop(&mut self) {
        // a dropped topic's history leaves the budget with it
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = &self.budget {
            b.remove(state.bytes);
        }
    }
}
