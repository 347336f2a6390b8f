//! The log of durable topics (`workflow:*`): every event is written to the database
//! (through the bounded writer queue: an append waits while it is full, so a producer
//! faster than the disk is slowed, never dropped), and only a recent window stays in
//! memory, bounded by count and bytes. The window always holds every event not yet
//! committed, so a read of anything older than the window is a database read, and one
//! that reaches into the window takes the rest from memory. A topic's epoch is stored
//! too: it survives restarts, and changes after a crash (storage::Database).

use super::memory::new_epoch;
use super::{Deliver, LogError, LogFuture, LogTopic, Range, TopicLog};
use crate::hub::event::{Draft, StoredEvent};
use crate::storage::{Reader, Store, Write, WritePermit};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// How much of a durable topic stays in memory.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub max_events: usize,
    pub max_bytes: usize,
}

/// Events read at once when following another node's writes.
const FOLLOW_PAGE: usize = 1_000;

pub struct DurableLog {
    store: Store,
    reader: Reader,
    window: Window,
    /// Several nodes share the database: a new topic's epoch is stored at once, and
    /// read back, so that every node that opens it has the same (hub::follow).
    shared: bool,
}

impl DurableLog {
    pub fn new(store: Store, reader: Reader, window: Window) -> DurableLog {
        DurableLog { store, reader, window, shared: false }
    }

    pub fn shared(self, shared: bool) -> DurableLog {
        DurableLog { shared, ..self }
    }
}

impl TopicLog for DurableLog {
    fn open<'a>(&'a self, topic: &'a str) -> LogFuture<'a, Arc<dyn LogTopic>> {
        LogFuture::Pending(Box::pin(async move {
            let position = self.reader.topic_position(topic).await.map_err(|e| LogError::Read(e.to_string()))?;
            let (epoch, last_seq) = match position {
                Some(p) => p,
                None if self.shared => self.reader.topic_position_or_create(topic, &new_epoch()).await.map_err(|e| LogError::Read(e.to_string()))?,
                None => {
                    let epoch = new_epoch();
                    self.store.write(Write::Topic { name: topic.to_owned(), epoch: epoch.clone() }).await;
                    (epoch, 0)
                }
            };
            let log: Arc<dyn LogTopic> = Arc::new(DurableTopic {
                name: topic.into(),
                epoch: epoch.into(),
                window: self.window,
                store: self.store.clone(),
                reader: self.reader.clone(),
                committed: Arc::new(AtomicU64::new(last_seq)),
                state: Mutex::new(State { last_seq, recent: VecDeque::new(), bytes: 0 }),
            });
            Ok(log)
        }))
    }
}

struct State {
    last_seq: u64,
    /// The recent window: contiguous seqs, ending at `last_seq`.
    recent: VecDeque<Arc<StoredEvent>>,
    bytes: usize,
}

pub struct DurableTopic {
    name: Arc<str>,
    epoch: Arc<str>,
    window: Window,
    store: Store,
    reader: Reader,
    /// The highest seq the database holds (the writer raises it after each commit).
    committed: Arc<AtomicU64>,
    state: Mutex<State>,
}

impl DurableTopic {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends with a place in the writer's queue already held.
    fn append_with(&self, permit: WritePermit, draft: Draft<'_>, out: &dyn Deliver) -> u64 {
        let prepared = draft.prepare(&self.name);
        let now = Instant::now();
        let mut state = self.lock();
        state.last_seq += 1;
        let seq = state.last_seq;
        let event = Arc::new(prepared.seal(seq, now));
        // queued under the lock: the writer stores this topic's events in seq order
        self.store.write_with(
            permit,
            Write::Event { topic: self.name.to_string(), seq, frame: event.frame.to_string(), committed: self.committed.clone() },
        );
        state.bytes += event.cost();
        state.recent.push_back(event.clone());
        self.trim(&mut state);
        out.deliver(&event);
        seq
    }

    /// Keeps the window within its bounds, but never drops what is not yet committed.
    fn trim(&self, state: &mut State) {
        let committed = self.committed.load(Ordering::Acquire);
        while (state.recent.len() > self.window.max_events || state.bytes > self.window.max_bytes)
            && state.recent.front().is_some_and(|e| e.seq <= committed)
        {
            if let Some(e) = state.recent.pop_front() {
                state.bytes -= e.cost();
            }
        }
    }
}

impl LogTopic for DurableTopic {
    fn epoch(&self) -> Arc<str> {
        self.epoch.clone()
    }

    fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    fn append<'a>(&'a self, draft: Draft<'a>, out: &'a dyn Deliver) -> LogFuture<'a, u64> {
        match self.store.try_reserve() {
            Some(permit) => LogFuture::ready(Ok(self.append_with(permit, draft, out))),
            // the writer is behind: wait for room, then append (no lock is held meanwhile)
            None => LogFuture::Pending(Box::pin(async move {
                let permit = self.store.reserve().await.ok_or(LogError::Closed)?;
                Ok(self.append_with(permit, draft, out))
            })),
        }
    }

    fn read(&self, since: u64, upto: u64, limit: usize) -> LogFuture<'_, Range> {
        let (first, upto) = {
            let mut state = self.lock();
            self.trim(&mut state);
            let upto = upto.min(state.last_seq);
            let first = state.recent.front().map_or(state.last_seq + 1, |e| e.seq);
            if first <= since + 1 || since >= upto {
                let events = state.recent.iter().filter(|e| e.seq > since && e.seq <= upto).take(limit).cloned().collect();
                return LogFuture::ready(Ok(Range { complete: true, events }));
            }
            (first, upto)
        };
        LogFuture::Pending(Box::pin(async move {
            // everything before the window is committed: the database has it
            let stored_upto = upto.min(first.saturating_sub(1));
            let rows = self.reader.events(&self.name, since, stored_upto, limit).await.map_err(|e| LogError::Read(e.to_string()))?;
            let mut events: Vec<Arc<StoredEvent>> = rows.into_iter().map(|(seq, frame)| Arc::new(StoredEvent::stored(seq, frame))).collect();
            let complete = events.first().is_some_and(|e| e.seq == since + 1);
            if events.len() < limit && events.last().map_or(since, |e| e.seq) >= stored_upto {
                // the rest from the window as it is now, if it still follows on (it may
                // have moved on meanwhile: then the caller reads again from here)
                let after = events.last().map_or(since, |e| e.seq);
                let state = self.lock();
                if state.recent.front().is_some_and(|e| e.seq <= after + 1) {
                    let more = state.recent.iter().filter(|e| e.seq > after && e.seq <= upto).take(limit - events.len()).cloned();
                    events.extend(more);
                }
            }
            Ok(Range { events, complete })
        }))
    }

    fn stored_position(&self) -> LogFuture<'_, Option<(String, u64)>> {
        LogFuture::Pending(Box::pin(async move { self.reader.topic_position(&self.name).await.map_err(|e| LogError::Read(e.to_string())) }))
    }

    fn follow<'a>(&'a self, upto: u64, out: &'a dyn Deliver) -> LogFuture<'a, ()> {
        if upto <= self.lock().last_seq {
            // this node wrote them, or has them already
            return LogFuture::ready(Ok(()));
        }
        LogFuture::Pending(Box::pin(async move {
            loop {
                let since = self.lock().last_seq;
                if since >= upto {
                    return Ok(());
                }
                let rows = self.reader.events(&self.name, since, upto, FOLLOW_PAGE).await.map_err(|e| LogError::Read(e.to_string()))?;
                if rows.is_empty() {
                    return Ok(());
                }
                let mut state = self.lock();
                let before = state.last_seq;
                for (seq, frame) in rows {
                    // another follow may have delivered some meanwhile: each seq once
                    if seq != state.last_seq + 1 {
                        continue;
                    }
                    let event = Arc::new(StoredEvent::stored(seq, frame));
                    state.last_seq = seq;
                    self.committed.fetch_max(seq, Ordering::AcqRel);
                    state.bytes += event.cost();
                    state.recent.push_back(event.clone());
                    out.deliver(&event);
                }
                self.trim(&mut state);
                if state.last_seq == before {
                    // a gap in what is stored (a batch its writer gave up): nothing follows
                    return Err(LogError::Read(format!("the stored events of {} stop at seq {before}", self.name)));
                }
            }
        }))
    }

    fn is_idle(&self) -> bool {
        let state = self.lock();
        // dropped only when the database holds everything: reopening finds it all
        self.committed.load(Ordering::Acquire) >= state.last_seq
    }

    fn in_memory(&self, since: u64) -> bool {
        let state = self.lock();
        let first = state.recent.front().map_or(state.last_seq + 1, |e| e.seq);
        first <= since + 1 || since >= state.last_seq
    }
}
