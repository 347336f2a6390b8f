//! The byte budget all non-durable topics' histories share (`--history-memory-bytes`):
//! each topic counts what it keeps; when the sum passes the budget, the hub evicts the
//! oldest events of any topic until it is back under nine tenths of it (so eviction
//! runs once per tenth of the budget published, not on every publish).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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
