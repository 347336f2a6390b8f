//! Snapshot + delta for one topic (PROTOCOL.md section 3): while a snapshot loads over
//! HTTP, live events are held; when it arrives, the held events it already reflects
//! (seq up to its `seq`) are dropped and the rest are delivered, in order. Plain Rust,
//! tested on the host.

use crate::protocol::EventMessage;

#[derive(Debug, Default)]
pub struct Resync {
    generation: u64,
    /// Some while a snapshot is loading: the live events that arrived meanwhile.
    held: Option<Vec<EventMessage>>,
    synced: bool,
}

impl Resync {
    /// A snapshot starts loading; returns its generation (a newer one supersedes it).
    pub fn start(&mut self) -> u64 {
        self.generation += 1;
        self.held = Some(Vec::new());
        self.synced = false;
        self.generation
    }

    /// A live event: returned to be delivered now, or held until the snapshot is in.
    pub fn offer(&mut self, ev: EventMessage) -> Option<EventMessage> {
        match &mut self.held {
            Some(held) => {
                held.push(ev);
                None
            }
            None => Some(ev),
        }
    }

    /// The snapshot of `generation` reflects the topic up to `seq`: the held events
    /// after it, to deliver now. None when a newer snapshot superseded this one.
    pub fn finish(&mut self, generation: u64, seq: u64) -> Option<Vec<EventMessage>> {
        if generation != self.generation {
            return None;
        }
        let held = self.held.take().unwrap_or_default();
        self.synced = true;
        Some(held.into_iter().filter(|e| e.seq > seq).collect())
    }

    /// The snapshot of `generation` could not be loaded: events stay held (the next
    /// snapshot covers them); `needs_sync` says to try again.
    pub fn fail(&mut self, generation: u64) -> bool {
        generation == self.generation
    }

    /// Whether a snapshot is still owed (never loaded, or the last attempt failed).
    pub fn needs_sync(&self) -> bool {
        !self.synced
    }

    pub fn is_loading(&self) -> bool {
        self.held.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64) -> EventMessage {
        EventMessage { topic: "t".into(), seq, ts: 0, event: "e".into(), data: serde_json::value::to_raw_value(&()).unwrap() }
    }

    #[test]
    fn events_during_a_load_wait_and_those_in_the_snapshot_are_dropped() {
        let mut r = Resync::default();
        assert!(r.needs_sync());
        assert!(r.offer(ev(1)).is_some(), "nothing loading: delivered at once");
        let g = r.start();
        assert!(r.offer(ev(5)).is_none());
        assert!(r.offer(ev(6)).is_none());
        assert!(r.offer(ev(7)).is_none());
        let rest: Vec<u64> = r.finish(g, 6).unwrap().into_iter().map(|e| e.seq).collect();
        assert_eq!(rest, vec![7]);
        assert!(!r.needs_sync() && !r.is_loading());
        assert!(r.offer(ev(8)).is_some());
    }

    #[test]
    fn a_newer_load_supersedes_an_older_one() {
        let mut r = Resync::default();
        let old = r.start();
        r.offer(ev(3));
        let new = r.start();
        r.offer(ev(4));
        assert!(r.finish(old, 10).is_none(), "the old snapshot may miss what the new one has");
        assert!(r.is_loading());
        assert_eq!(r.finish(new, 3).unwrap().len(), 1);
    }

    #[test]
    fn a_failed_load_keeps_holding_and_asks_again() {
        let mut r = Resync::default();
        let g = r.start();
        r.offer(ev(2));
        assert!(r.fail(g));
        assert!(r.needs_sync() && r.is_loading());
        let g2 = r.start();
        r.offer(ev(3));
        assert_eq!(r.finish(g2, 2).unwrap().into_iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
    }
}
