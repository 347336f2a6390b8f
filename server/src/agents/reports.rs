//! Reports reach the stage they are about: each running remote stage has a slot that
//! takes its executor's reports in seq order, once each. A report already applied (a
//! retried batch) is skipped; one that would leave a gap is refused with the seq
//! expected; one from anyone but the stage's executor is refused; one for a stage that
//! is not running has no slot (the caller says whether it is unknown or finished).

use super::Registry;
use crate::hub::now_ms;
use app::protocol::{Report, ReportKind, StageKey};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, watch, Notify};

/// Reports a stage's task may hold unprocessed; past it the sender waits.
const SLOT_QUEUE: usize = 256;

pub struct Slot {
    pub key: StageKey,
    /// Who runs it: the only one whose reports it takes.
    pub agent: String,
    next_seq: tokio::sync::Mutex<u64>,
    tx: mpsc::Sender<(u64, ReportKind)>,
    /// Woken when its agent connects or leaves.
    pub wake: Notify,
    last_report: AtomicI64,
    /// The last seq applied and on disk: what `applied` tells its executor (a report is
    /// forgotten there only once a server crash cannot lose it).
    durable: watch::Sender<u64>,
    /// Its agent registered again without it (the `assign` was lost, or it restarted).
    missing: AtomicBool,
}

impl Slot {
    /// When its executor last reported (ms since the epoch).
    pub fn last_report(&self) -> i64 {
        self.last_report.load(Ordering::Relaxed)
    }

    /// The seq of the next report it takes.
    pub async fn next_seq(&self) -> u64 {
        *self.next_seq.lock().await
    }

    pub fn durable_seq(&self) -> u64 {
        *self.durable.borrow()
    }

    /// Reports up to `seq` are on disk.
    pub fn set_durable(&self, seq: u64) {
        self.durable.send_if_modified(|d| std::mem::replace(d, (*d).max(seq)) < seq);
    }

    /// Waits (up to `limit`) until reports up to `seq` are on disk; the seq on disk.
    pub async fn wait_durable(&self, seq: u64, limit: std::time::Duration) -> u64 {
        let mut rx = self.durable.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|d| *d >= seq)).await;
        self.durable_seq()
    }

    pub fn mark_missing(&self) {
        self.missing.store(true, Ordering::Relaxed);
        self.wake.notify_waiters();
    }

    /// Whether its agent came back without it (once).
    pub fn take_missing(&self) -> bool {
        self.missing.swap(false, Ordering::Relaxed)
    }
}

/// Why reports were not (all) applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// No stage of that key is running here.
    NotRunning(StageKey),
    /// The stage is run by someone else.
    NotYours { key: StageKey, agent: String },
    /// A report is missing before this one: send from `expected` on.
    Gap { key: StageKey, expected: u64 },
}

impl Registry {
    /// Opens the slot of a stage `agent` runs; its reports come out of the receiver.
    pub fn open_slot(&self, key: StageKey, agent: &str, next_seq: u64) -> (Arc<Slot>, mpsc::Receiver<(u64, ReportKind)>) {
        let (tx, rx) = mpsc::channel(SLOT_QUEUE);
        let slot = Arc::new(Slot {
            key: key.clone(),
            agent: agent.to_owned(),
            next_seq: tokio::sync::Mutex::new(next_seq.max(1)),
            tx,
            wake: Notify::new(),
            last_report: AtomicI64::new(now_ms()),
            durable: watch::Sender::new(next_seq.max(1) - 1),
            missing: AtomicBool::new(false),
        });
        self.slots().insert(key, slot.clone());
        (slot, rx)
    }

    /// Opens the slot of a stage `agent` still runs after a server restart, before any
    /// connection is served: its agent re-attaches to it on `register` (and is not told
    /// to stop it). The stage's task takes it up with `take_slot`.
    pub fn reattach(&self, key: StageKey, agent: &str, next_seq: u64) {
        let (_, rx) = self.open_slot(key.clone(), agent, next_seq);
        self.parked().insert(key, rx);
    }

    /// The slot `reattach` opened for `key`, or a new one.
    pub fn take_slot(&self, key: StageKey, agent: &str, next_seq: u64) -> (Arc<Slot>, mpsc::Receiver<(u64, ReportKind)>) {
        if let Some(rx) = self.parked().remove(&key) {
            if let Some(slot) = self.slot(&key) {
                return (slot, rx);
            }
        }
        self.open_slot(key, agent, next_seq)
    }

    pub fn close_slot(&self, key: &StageKey) {
        self.slots().remove(key);
        self.parked().remove(key);
    }

    /// The slot of a running stage, if any.
    pub fn slot(&self, key: &StageKey) -> Option<Arc<Slot>> {
        self.slots().get(key).cloned()
    }

    /// The slots of the stages `agent` runs.
    pub fn slots_of(&self, agent: &str) -> Vec<Arc<Slot>> {
        self.slots().values().filter(|s| s.agent == agent).cloned().collect()
    }

    /// Whether `agent` runs a stage of run `run` now.
    pub fn runs_part_of(&self, agent: &str, run: &str) -> bool {
        self.slots().values().any(|s| s.agent == agent && s.key.run == run)
    }

    /// Applies `reports` from `sender` (None: an admin, who may report for any stage),
    /// in order; returns, per stage, the seq applied through. Stops at the first
    /// refusal (what came before it is applied).
    pub async fn apply(&self, sender: Option<&str>, reports: Vec<Report>) -> Result<BTreeMap<StageKey, u64>, (Refusal, BTreeMap<StageKey, u64>)> {
        let mut applied: BTreeMap<StageKey, u64> = BTreeMap::new();
        for report in reports {
            let Some(slot) = self.slot(&report.key) else { return Err((Refusal::NotRunning(report.key), applied)) };
            if sender.is_some_and(|s| s != slot.agent) {
                return Err((Refusal::NotYours { key: report.key, agent: slot.agent.clone() }, applied));
            }
            let mut next = slot.next_seq.lock().await;
            slot.last_report.store(now_ms(), Ordering::Relaxed);
            if report.seq < *next {
                applied.insert(report.key.clone(), *next - 1);
                continue; // sent again: applied once already
            }
            if report.seq > *next {
                return Err((Refusal::Gap { key: report.key, expected: *next }, applied));
            }
            if slot.tx.send((report.seq, report.kind)).await.is_err() {
                // its stage just ended: nothing takes reports any more
                return Err((Refusal::NotRunning(report.key), applied));
            }
            *next += 1;
            applied.insert(report.key, report.seq);
        }
        Ok(applied)
    }
}
