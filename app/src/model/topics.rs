//! The topic pages' models: the list's event rates (from the seq each poll sees) and
//! one topic's feed of events (the latest from history, live ones after, older ones
//! loaded on demand, a pause that holds new ones back, a filter by event name), and the
//! `curl` that republishes an event. Plain Rust, tested on the host.

use crate::protocol::{is_server_owned, EventMessage, TopicInfo};
use std::collections::VecDeque;

/// Events a feed keeps; older ones leave the page (they stay in the topic's history).
pub const FEED_MAX: usize = 1_000;
/// Events loaded at first, and by each "load older".
pub const FEED_PAGE: u64 = 50;

/// Events per second of each topic, from where its seq stood at the previous poll.
/// Vectors in the list's order (by name) rather than maps: the page's bundle pays for
/// every collection type it uses.
#[derive(Debug, Default, Clone)]
pub struct TopicRates {
    /// (name, seq, epoch) at the last poll, by name.
    last: Vec<(String, u64, String)>,
    last_at: f64,
    /// (name, events per second), by name.
    rates: Vec<(String, f64)>,
}

impl TopicRates {
    /// A poll at `at_ms` saw `topics` (sorted by name, as the server lists them); rates
    /// are the seq advance since the last poll over the time between (none until a
    /// topic was seen twice in one epoch).
    pub fn observe(&mut self, topics: &[TopicInfo], at_ms: f64) {
        let dt = (at_ms - self.last_at) / 1_000.0;
        self.rates.clear();
        for t in topics {
            let Ok(i) = self.last.binary_search_by(|(name, ..)| name.as_str().cmp(&t.name)) else { continue };
            let (_, seq, epoch) = &self.last[i];
            if *epoch == t.epoch && t.seq >= *seq && dt > 0.0 {
                self.rates.push((t.name.clone(), (t.seq - seq) as f64 / dt));
            }
        }
        self.last = topics.iter().map(|t| (t.name.clone(), t.seq, t.epoch.clone())).collect();
        self.last_at = at_ms;
    }

    pub fn rate(&self, topic: &str) -> Option<f64> {
        self.rates.binary_search_by(|(name, _)| name.as_str().cmp(topic)).ok().map(|i| self.rates[i].1)
    }
}

/// One event as the feed shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    pub seq: u64,
    pub ts: i64,
    pub event: String,
    /// Its data, as the JSON text it was published as.
    pub data: String,
}

impl From<&EventMessage> for FeedEvent {
    fn from(e: &EventMessage) -> Self {
        FeedEvent { seq: e.seq, ts: e.ts, event: e.event.clone(), data: e.data.get().to_owned() }
    }
}

/// One topic's events on the page, oldest first, seq ascending within `epoch`.
#[derive(Debug, Default, Clone)]
pub struct TopicFeed {
    events: VecDeque<FeedEvent>,
    /// New events that arrived while paused, shown on `follow`.
    held: Vec<FeedEvent>,
    paused: bool,
    pub epoch: Option<String>,
    /// How often the topic's history started over while the page was open.
    pub restarts: u32,
    /// Whether the topic's history holds nothing older than the first event shown.
    pub at_start: bool,
}

impl TopicFeed {
    /// The topic's latest events, from history (the first load, or a reload after its
    /// history started over): they replace what the feed shows.
    pub fn reset(&mut self, epoch: &str, events: &[EventMessage]) {
        if self.epoch.as_deref().is_some_and(|e| e != epoch) {
            self.restarts += 1;
        }
        self.epoch = Some(epoch.to_owned());
        self.events = events.iter().map(FeedEvent::from).collect();
        self.held.clear();
        self.at_start = self.events.front().is_none_or(|e| e.seq <= 1);
        self.trim();
    }

    /// A live event (in seq order, no duplicates: the connection sees to that).
    pub fn push(&mut self, ev: &EventMessage) {
        let ev = FeedEvent::from(ev);
        if self.paused {
            self.held.push(ev);
        } else {
            self.events.push_back(ev);
            self.trim();
        }
    }

    /// Older events from history (`epoch`'s), put before those shown; `reached_start`
    /// when history has nothing before them.
    pub fn prepend_older(&mut self, epoch: &str, events: &[EventMessage], reached_start: bool) {
        if self.epoch.as_deref() != Some(epoch) {
            return;
        }
        let first = self.events.front().map_or(u64::MAX, |e| e.seq);
        for e in events.iter().rev().filter(|e| e.seq < first) {
            self.events.push_front(FeedEvent::from(e));
        }
        self.at_start = reached_start || self.events.front().is_some_and(|e| e.seq <= 1);
    }

    /// What "load older" asks the history for: (since, limit), or None at the start.
    pub fn older_request(&self) -> Option<(u64, u64)> {
        let first = self.events.front()?.seq;
        if self.at_start || first <= 1 {
            return None;
        }
        let since = first.saturating_sub(1 + FEED_PAGE);
        Some((since, first - 1 - since))
    }

    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Shows what arrived while paused, and follows again.
    pub fn follow(&mut self) {
        self.paused = false;
        self.events.extend(self.held.drain(..));
        self.trim();
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Events waiting for `follow`.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events whose name contains `filter` (all with an empty one), newest first.
    pub fn matching<'a>(&'a self, filter: &'a str) -> impl Iterator<Item = &'a FeedEvent> + 'a {
        self.events.iter().rev().filter(move |e| filter.is_empty() || e.event.contains(filter))
    }

    fn trim(&mut self) {
        while self.events.len() > FEED_MAX {
            self.events.pop_front();
            self.at_start = false;
        }
    }
}

/// The event's data indented two spaces a level, keys in the order it was published
/// with. Only whitespace outside strings changes: the text is the JSON the server
/// checked, so a small printer does, without parsing it into values (which costs the
/// page's bundle more than this whole feature).
pub fn pretty_json(raw: &str) -> String {
    fn newline(out: &mut String, depth: usize) {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    }
    let mut out = String::with_capacity(raw.len() * 2);
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.extend(chars.next()); // an empty one stays on its line
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// A shell command that publishes the same event again, with the caller's token from
/// `$SWITCHBOARD_TOKEN`; None for a server-owned topic, which no one may publish to.
pub fn republish_curl(origin: &str, topic: &str, event: &FeedEvent) -> Option<String> {
    if is_server_owned(topic) {
        return None;
    }
    let json = |s: &str| serde_json::to_string(s).unwrap_or_default(); // a str always serializes
    let body = format!(r#"{{"topic":{},"event":{},"data":{}}}"#, json(topic), json(&event.event), event.data);
    Some(format!(
        "curl -sS -X POST {} -H \"Authorization: Bearer $SWITCHBOARD_TOKEN\" -H 'Content-Type: application/json' --data-binary {}",
        shell_quote(&format!("{origin}/api/v1/publish")),
        shell_quote(&body)
    ))
}

/// `s` as one POSIX shell word, in single quotes.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    fn ev(seq: u64, event: &str, data: &str) -> EventMessage {
        EventMessage {
            topic: "session:a".into(),
            seq,
            ts: 1_000 + seq as i64,
            event: event.into(),
            data: RawValue::from_string(data.into()).unwrap(),
        }
    }

    fn info(name: &str, seq: u64, epoch: &str) -> TopicInfo {
        TopicInfo { name: name.into(), seq, epoch: epoch.into(), subscribers: 0, durable: false, last_event_ts: None }
    }

    #[test]
    fn rates_come_from_the_seq_advance_between_polls_in_one_epoch() {
        let mut r = TopicRates::default();
        r.observe(&[info("a", 10, "e"), info("b", 5, "e")], 0.0);
        assert_eq!(r.rate("a"), None, "one poll says nothing of a rate");
        r.observe(&[info("a", 30, "e"), info("b", 5, "f")], 2_000.0);
        assert_eq!(r.rate("a"), Some(10.0));
        assert_eq!(r.rate("b"), None, "a new epoch starts over");
        r.observe(&[info("b", 9, "f")], 4_000.0);
        assert_eq!(r.rate("b"), Some(2.0));
        assert_eq!(r.rate("a"), None, "a topic gone from the list has no rate");
    }

    #[test]
    fn a_feed_shows_history_then_live_events_newest_first_and_filters_by_name() {
        let mut f = TopicFeed::default();
        f.reset("e1", &[ev(3, "ai_start", "{}"), ev(4, "ai_progress", r#"{"p":0.5}"#)]);
        f.push(&ev(5, "ai_complete", r#"{"ok":true}"#));
        let seqs: Vec<u64> = f.matching("").map(|e| e.seq).collect();
        assert_eq!(seqs, [5, 4, 3]);
        let names: Vec<&str> = f.matching("progress").map(|e| e.event.as_str()).collect();
        assert_eq!(names, ["ai_progress"]);
        assert!(!f.at_start);
        assert_eq!(f.older_request(), Some((0, 2)));
    }

    #[test]
    fn pause_holds_new_events_until_follow() {
        let mut f = TopicFeed::default();
        f.reset("e1", &[ev(1, "a", "1")]);
        assert!(f.at_start);
        assert_eq!(f.older_request(), None);
        f.pause();
        f.push(&ev(2, "a", "2"));
        f.push(&ev(3, "a", "3"));
        assert_eq!((f.len(), f.held()), (1, 2));
        f.follow();
        assert_eq!((f.len(), f.held(), f.is_paused()), (3, 0, false));
    }

    #[test]
    fn older_events_go_in_front_once_and_only_for_the_same_epoch() {
        let mut f = TopicFeed::default();
        f.reset("e1", &[ev(60, "x", "0"), ev(61, "x", "0")]);
        assert_eq!(f.older_request(), Some((9, 50)));
        let older: Vec<EventMessage> = (9..=60).map(|s| ev(s, "x", "0")).collect();
        f.prepend_older("other", &older, false);
        assert_eq!(f.len(), 2, "another epoch's events are not this feed's");
        f.prepend_older("e1", &older, false);
        let seqs: Vec<u64> = f.matching("").map(|e| e.seq).collect();
        assert_eq!(seqs, (9..=61).rev().collect::<Vec<_>>(), "seq 60 not twice");
        f.prepend_older("e1", &[], true);
        assert_eq!(f.older_request(), None);
    }

    #[test]
    fn a_new_epoch_replaces_the_feed_and_is_counted() {
        let mut f = TopicFeed::default();
        f.reset("e1", &[ev(7, "x", "0")]);
        f.reset("e2", &[ev(1, "y", "0")]);
        assert_eq!((f.restarts, f.len(), f.epoch.as_deref()), (1, 1, Some("e2")));
    }

    #[test]
    fn the_feed_keeps_at_most_its_cap() {
        let mut f = TopicFeed::default();
        f.reset("e", &[]);
        for s in 1..=(FEED_MAX as u64 + 5) {
            f.push(&ev(s, "x", "0"));
        }
        assert_eq!(f.len(), FEED_MAX);
        assert_eq!(f.matching("").last().map(|e| e.seq), Some(6));
        assert_eq!(f.older_request(), Some((0, 5)));
    }

    #[test]
    fn data_is_indented_as_serde_json_would_but_in_its_own_key_order() {
        for raw in [r#"{"a":[1,2]}"#, r#"{"z":{"y":[],"x":{}},"a":"s, [t]: {\"u\"}\\","n":null,"f":-1.5e3}"#, "[]", "7", r#""x""#] {
            let value: serde_json::Value = serde_json::from_str(raw).unwrap();
            let printed = pretty_json(raw);
            assert_eq!(serde_json::from_str::<serde_json::Value>(&printed).unwrap(), value, "{printed}");
            if !raw.starts_with(r#"{"z""#) {
                assert_eq!(printed, serde_json::to_string_pretty(&value).unwrap());
            }
        }
        assert_eq!(pretty_json(" { \"b\" : 1 ,\n \"a\" : [ ] } "), "{\n  \"b\": 1,\n  \"a\": []\n}");
    }

    #[test]
    fn the_curl_quotes_everything_for_the_shell_and_skips_server_topics() {
        let e = FeedEvent { seq: 1, ts: 0, event: "it's".into(), data: r#"{"q":"a'b"}"#.into() };
        let cmd = republish_curl("http://127.0.0.1:3000", "session:x", &e).unwrap();
        assert_eq!(
            cmd,
            "curl -sS -X POST 'http://127.0.0.1:3000/api/v1/publish' -H \"Authorization: Bearer $SWITCHBOARD_TOKEN\" \
             -H 'Content-Type: application/json' --data-binary '{\"topic\":\"session:x\",\"event\":\"it'\\''s\",\"data\":{\"q\":\"a'\\''b\"}}'"
        );
        assert_eq!(republish_curl("http://h", "workflow:1", &e), None);
        assert_eq!(republish_curl("http://h", "metrics", &e), None);
    }
}
