//! Per-topic seq bookkeeping of the browser client: what to ask for on (re)subscribe,
//! and which events to drop as already seen. Plain Rust, tested on the host.

use crate::protocol::{ClientMessage, Subscribed};
use std::collections::BTreeMap;

/// Where a subscription stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The last seq delivered to the app, with the epoch it belongs to.
    pub last_seq: Option<u64>,
    pub epoch: Option<String>,
    /// What the first subscribe asks for (`Some(0)`: the whole retained history).
    pub initial_since: Option<u64>,
}

/// What a `subscribed` reply means for the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resumed {
    /// Everything missed will follow: carry on.
    Gapless,
    /// Events were lost (history too short, or a new epoch): the app must reload its
    /// state; live events follow from `seq + 1`.
    Reload { seq: u64 },
}

#[derive(Debug, Clone, Default)]
pub struct Cursors {
    topics: BTreeMap<String, Cursor>,
}

impl Cursors {
    /// Starts tracking a topic; returns false when it already was.
    pub fn want(&mut self, topic: &str, initial_since: Option<u64>) -> bool {
        if self.topics.contains_key(topic) {
            return false;
        }
        self.topics.insert(topic.to_owned(), Cursor { initial_since, ..Cursor::default() });
        true
    }

    pub fn forget(&mut self, topic: &str) {
        self.topics.remove(topic);
    }

    pub fn get(&self, topic: &str) -> Option<&Cursor> {
        self.topics.get(topic)
    }

    /// The subscribe message for a topic: resuming from the last seq seen when there
    /// is one, else as first asked.
    pub fn subscribe_message(&self, topic: &str) -> Option<ClientMessage> {
        let c = self.topics.get(topic)?;
        let (since, epoch) = match c.last_seq {
            Some(seq) => (Some(seq), c.epoch.clone()),
            None => (c.initial_since, None),
        };
        Some(ClientMessage::Subscribe { topic: topic.to_owned(), since, epoch })
    }

    /// Every tracked topic's subscribe message, for a new connection.
    pub fn resubscribe_all(&self) -> Vec<ClientMessage> {
        self.topics.keys().filter_map(|t| self.subscribe_message(t)).collect()
    }

    /// Applies a `subscribed` reply.
    pub fn on_subscribed(&mut self, s: &Subscribed) -> Option<Resumed> {
        let c = self.topics.get_mut(&s.topic)?;
        let same_epoch = c.epoch.as_deref().is_none_or(|e| e == s.epoch);
        c.epoch = Some(s.epoch.clone());
        if s.recovered && same_epoch {
            if c.last_seq.is_none() && c.initial_since.is_none() {
                // live only: everything up to seq is "seen"
                c.last_seq = Some(s.seq);
            }
            return Some(Resumed::Gapless);
        }
        c.last_seq = Some(s.seq);
        Some(Resumed::Reload { seq: s.seq })
    }

    /// A snapshot reflects the topic up to `seq`: events up to it are no longer new.
    pub fn advance(&mut self, topic: &str, seq: u64) {
        if let Some(c) = self.topics.get_mut(topic) {
            c.last_seq = Some(c.last_seq.map_or(seq, |last| last.max(seq)));
        }
    }

    /// Whether an event is new (and records it); duplicates and old events are false.
    pub fn accept(&mut self, topic: &str, seq: u64) -> bool {
        let Some(c) = self.topics.get_mut(topic) else { return false };
        if c.last_seq.is_some_and(|last| seq <= last) {
            return false;
        }
        c.last_seq = Some(seq);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribed(topic: &str, seq: u64, epoch: &str, recovered: bool) -> Subscribed {
        Subscribed { topic: topic.into(), seq, epoch: epoch.into(), recovered, id: None }
    }

    #[test]
    fn first_subscribe_uses_the_initial_since_then_resumes_from_the_last_seq() {
        let mut c = Cursors::default();
        assert!(c.want("metrics", Some(0)));
        assert!(!c.want("metrics", Some(0)));
        assert_eq!(
            c.subscribe_message("metrics"),
            Some(ClientMessage::Subscribe { topic: "metrics".into(), since: Some(0), epoch: None })
        );
        assert_eq!(c.on_subscribed(&subscribed("metrics", 5, "e1", true)), Some(Resumed::Gapless));
        for seq in 1..=7 {
            assert!(c.accept("metrics", seq));
        }
        assert_eq!(
            c.resubscribe_all(),
            vec![ClientMessage::Subscribe { topic: "metrics".into(), since: Some(7), epoch: Some("e1".into()) }]
        );
    }

    #[test]
    fn duplicates_and_old_events_are_dropped() {
        let mut c = Cursors::default();
        c.want("t", Some(0));
        assert!(c.accept("t", 1));
        assert!(c.accept("t", 2));
        assert!(!c.accept("t", 2));
        assert!(!c.accept("t", 1));
        assert!(c.accept("t", 3));
        assert!(!c.accept("other", 1), "untracked topics are ignored");
    }

    #[test]
    fn live_only_subscriptions_skip_what_came_before() {
        let mut c = Cursors::default();
        c.want("t", None);
        c.on_subscribed(&subscribed("t", 40, "e", true));
        assert!(!c.accept("t", 40));
        assert!(c.accept("t", 41));
    }

    #[test]
    fn a_snapshot_moves_the_cursor_forward_only() {
        let mut c = Cursors::default();
        c.want("t", None);
        c.on_subscribed(&subscribed("t", 2, "e", true));
        c.advance("t", 9);
        assert!(!c.accept("t", 9));
        c.advance("t", 4);
        assert!(c.accept("t", 10));
    }

    #[test]
    fn not_recovered_or_a_new_epoch_means_reload() {
        let mut c = Cursors::default();
        c.want("t", Some(0));
        c.on_subscribed(&subscribed("t", 0, "e1", true));
        assert!(c.accept("t", 1));
        assert_eq!(c.on_subscribed(&subscribed("t", 90, "e1", false)), Some(Resumed::Reload { seq: 90 }));
        assert!(!c.accept("t", 90));
        assert!(c.accept("t", 91));
        // the server restarted: a new epoch, even if it says recovered
        assert_eq!(c.on_subscribed(&subscribed("t", 3, "e2", true)), Some(Resumed::Reload { seq: 3 }));
        assert!(c.accept("t", 4));
    }
}
