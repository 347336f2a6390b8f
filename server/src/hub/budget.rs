//! The byte budget all non-durable topics' histories share (`--history-memory-bytes`):
//! each topic counts what it keeps; when the sum passes the budget, the hub evicts the
//! oldest events of any topic until it is back under nine tenths of it (so eviction
//! runs once per tenth of the budget published, not on every publish).

use std::sync::atomic::{AtomicUsize, Ordering};
use super::TopicHandle;
use std::sync::{Arc, Mutex};

pub struct MemoryBudget {
    used: AtomicUsize,
    limit: usize,
    /// One evictor at a time; the others go on publishing.
    pub(super) evicting: Mutex<()>,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget { used: AtomicUsize::new(0), limit, evicting: Mutex::new(()) }
    }

    pub fn add(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn remove(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn is_over(&self) -> bool {
        self.used() > self.limit
    }

    /// Where eviction stops.
    pub fn target(&self) -> usize {
        self.limit / 10 * 9
    }
}

impl super::Hub {
    /// Evicts the oldest events of the non-durable topics, oldest first whatever their
    /// topic, until their histories fit the budget again.
    pub(super) fn evict_history(&self) {
        use std::cmp::Reverse;
        let budget = &self.inner.budget;
        let Ok(_one_evictor) = budget.evicting.try_lock() else { return };
        let topics: Vec<Arc<TopicHandle>> =
            self.inner.topics.read().unwrap_or_else(|p| p.into_inner()).values().filter(|t| t.log.is_budgeted()).cloned().collect();
        let mut oldest: std::collections::BinaryHeap<Reverse<(std::time::Instant, usize)>> =
            topics.iter().enumerate().filter_map(|(i, t)| t.log.oldest().map(|at| Reverse((at, i)))).collect();
        let mut evicted = 0u64;
        while budget.used() > budget.target() {
            let Some(Reverse((_, i))) = oldest.pop() else { break };
            if topics[i].log.evict_oldest() {
                evicted += 1;
            }
            if let Some(at) = topics[i].log.oldest() {
                oldest.push(Reverse((at, i)));
            }
        }
        self.inner.counters.history_evictions.inc_by(evicted);
        tracing::debug!(evicted, used = budget.used(), limit = budget.limit(), "history over its memory budget: oldest events evicted");
    }

    /// Bytes the non-durable histories hold now.
    pub fn history_bytes(&self) -> usize {
        self.inner.budget.used()
    }
}
