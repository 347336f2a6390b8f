use super::*;
use app::protocol::{EventFrame, ServerMessage};
use crate::hub::outbox::OutboxReceiver;
use tokio_util::sync::CancellationToken;

fn open() -> crate::auth::Principal {
    crate::auth::Principal::open()
}

fn topic(max_events: usize) -> Topic {
    Topic::new("t:1", "ep".into(), Retention { max_events, max_age: Duration::from_secs(600) })
}

fn raw(v: serde_json::Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(&v).unwrap()
}

fn drain(rx: &mut OutboxReceiver) -> Vec<ServerMessage> {
    let mut out = Vec::new();
    let mut items = Vec::new();
    rx.try_recv_many(&mut items, usize::MAX);
    for item in items {
        let frames = match item {
            Outbound::Frame(f) | Outbound::Event { frame: f, .. } => vec![f],
            Outbound::Batch(b) => b.into_vec(),
            Outbound::Ping => continue,
        };
        out.extend(frames.iter().map(|f| ServerMessage::from_json(f.as_str()).unwrap()));
    }
    out
}

fn seqs(msgs: &[ServerMessage]) -> Vec<u64> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMessage::Event(e) => Some(e.seq),
            _ => None,
        })
        .collect()
}

fn subscribed(msg: &ServerMessage) -> &app::protocol::Subscribed {
    match msg {
        ServerMessage::Subscribed(s) => s,
        other => panic!("expected subscribed, got {other:?}"),
    }
}

#[test]
fn frame_is_the_protocols_event_message() {
    let data = raw(serde_json::json!({"a":[1,"\"x\""]}));
    let (p, s) = frame_parts("we\"ird", "ev\n", &data, 42);
    let ours = format!("{p}7{s}");
    let theirs = EventFrame::new("we\"ird", 7, 42, "ev\n", &data).to_json();
    assert_eq!(ours, theirs);
}

#[test]
fn seq_starts_at_one_without_gaps_and_live_events_follow() {
    let t = topic(100);
    let root = CancellationToken::new();
    let (outbox, mut rx) = Outbox::new(64, &root);
    let out = t.subscribe(1, &outbox, &open(), None, None, None).unwrap();
    assert_eq!(out, SubscribeOutcome { seq: 0, recovered: true, replayed: 0 });
    for i in 1..=5 {
        assert_eq!(t.publish("e", &raw(i.into()), 0).seq, i);
    }
    let msgs = drain(&mut rx);
    assert_eq!(subscribed(&msgs[0]).epoch, "ep");
    assert_eq!(seqs(&msgs), [1, 2, 3, 4, 5]);
}

#[test]
fn since_replays_then_goes_live() {
    let t = topic(100);
    for i in 0..10 {
        t.publish("e", &raw(i.into()), 0);
    }
    let root = CancellationToken::new();
    let (outbox, mut rx) = Outbox::new(4, &root);
    let out = t.subscribe(1, &outbox, &open(), Some(6), Some("ep"), Some(3.into())).unwrap();
    assert_eq!(out, SubscribeOutcome { seq: 10, recovered: true, replayed: 4 });
    t.publish("e", &raw(0.into()), 0);
    let msgs = drain(&mut rx);
    let s = subscribed(&msgs[0]);
    assert_eq!((s.seq, s.recovered, s.id.clone()), (10, true, Some(3.into())));
    assert_eq!(seqs(&msgs), [7, 8, 9, 10, 11]);
}

#[test]
fn since_at_the_last_seq_replays_nothing_and_is_recovered() {
    let t = topic(100);
    t.publish("e", &raw(1.into()), 0);
    let root = CancellationToken::new();
    let (outbox, _rx) = Outbox::new(4, &root);
    let out = t.subscribe(1, &outbox, &open(), Some(1), None, None).unwrap();
    assert_eq!(out, SubscribeOutcome { seq: 1, recovered: true, replayed: 0 });
}

#[test]
fn unrecoverable_since_is_not_recovered_and_replays_nothing() {
    let t = topic(3);
    for i in 0..10 {
        t.publish("e", &raw(i.into()), 0);
    }
    let root = CancellationToken::new();
    let (outbox, _rx) = Outbox::new(16, &root);
    // history holds 8..=10: seq 5 is gone
    assert!(!t.subscribe(1, &outbox, &open(), Some(5), None, None).unwrap().recovered);
    // 7 -> needs 8.. which is there
    assert_eq!(t.subscribe(1, &outbox, &open(), Some(7), None, None).unwrap().replayed, 3);
    // beyond the last seq
    assert!(!t.subscribe(1, &outbox, &open(), Some(11), None, None).unwrap().recovered);
    // another epoch
    assert!(!t.subscribe(1, &outbox, &open(), Some(9), Some("old"), None).unwrap().recovered);
}

#[test]
fn history_respects_count_and_since_and_limit() {
    let t = topic(5);
    for i in 0..8 {
        t.publish("e", &raw(i.into()), 0);
    }
    let (events, last) = t.history(0, 100);
    assert_eq!(last, 8);
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5, 6, 7, 8]);
    let (events, _) = t.history(5, 2);
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [6, 7]);
}

#[test]
fn history_expires_by_age() {
    let t = Topic::new("t", "e".into(), Retention { max_events: 10, max_age: Duration::from_millis(20) });
    t.publish("e", &raw(1.into()), 0);
    std::thread::sleep(Duration::from_millis(40));
    assert!(t.history(0, 10).0.is_empty());
    assert!(t.is_idle());
    assert_eq!(t.last_seq(), 1, "seq never goes back");
}

#[test]
fn overflowing_subscriber_is_dropped_and_others_keep_receiving() {
    let t = topic(100);
    let root = CancellationToken::new();
    let (slow, _slow_rx) = Outbox::new(2, &root);
    let (fast, mut fast_rx) = Outbox::new(64, &root);
    t.subscribe(1, &slow, &open(), None, None, None).unwrap();
    t.subscribe(2, &fast, &open(), None, None, None).unwrap();
    let results: Vec<Published> = (0..3).map(|i| t.publish("e", &raw(i.into()), 0)).collect();
    assert_eq!(results[1].overflowed, 1);
    assert!(slow.is_closing());
    assert_eq!(slow.close_reason().code(), 1013);
    assert_eq!(t.subscriber_count(), 1);
    assert_eq!(seqs(&drain(&mut fast_rx)), [1, 2, 3]);
}

#[test]
fn resubscribing_replaces_and_unsubscribe_removes() {
    let t = topic(100);
    let root = CancellationToken::new();
    let (outbox, mut rx) = Outbox::new(64, &root);
    t.subscribe(1, &outbox, &open(), None, None, None).unwrap();
    t.subscribe(1, &outbox, &open(), None, None, None).unwrap();
    assert_eq!(t.subscriber_count(), 1);
    t.publish("e", &raw(1.into()), 0);
    assert_eq!(seqs(&drain(&mut rx)), [1], "one copy, not two");
    assert!(t.unsubscribe(1));
    assert!(!t.unsubscribe(1));
}

#[test]
fn a_subscriber_that_may_not_see_the_scope_gets_the_redacted_frame_at_the_same_seq() {
    let t = topic(100);
    let root = CancellationToken::new();
    let (full, mut full_rx) = Outbox::new(64, &root);
    let (narrow, mut narrow_rx) = Outbox::new(64, &root);
    let claims = crate::auth::Claims {
        sub: "n".into(),
        exp: u64::MAX / 2,
        iat: None,
        nbf: None,
        typ: None,
        sub_topics: vec!["t:*".into()],
        pub_topics: vec![],
        rights: Default::default(),
    };
    let viewer = crate::auth::Principal::from_claims(claims);
    t.subscribe(1, &full, &open(), None, None, None).unwrap();
    t.subscribe(2, &narrow, &viewer, None, None, None).unwrap();
    let redacted = raw(serde_json::json!({"run": null}));
    let redaction = Redaction { scope: "workflow:secret", data: &redacted };
    t.publish_redacted("e", &raw(serde_json::json!({"run": "secret"})), 0, Some(redaction));
    let data = |msgs: Vec<ServerMessage>| match &msgs[1] {
        ServerMessage::Event(e) => (e.seq, e.data.get().to_owned()),
        other => panic!("{other:?}"),
    };
    assert_eq!(data(drain(&mut full_rx)), (1, r#"{"run":"secret"}"#.to_owned()));
    assert_eq!(data(drain(&mut narrow_rx)), (1, r#"{"run":null}"#.to_owned()));
    let (events, _) = t.history(0, 10);
    assert_eq!(events[0].frame_for(&viewer).contains("secret"), false);
}

#[test]
fn budgeted_history_is_counted_and_evicted_oldest_first() {
    let budget = Arc::new(MemoryBudget::new(10_000));
    let t = Topic::budgeted("t:b", "ep".into(), Retention { max_events: 1_000, max_age: Duration::from_secs(600) }, budget.clone());
    for i in 0..10 {
        t.publish("e", &raw(serde_json::json!({"i": i, "pad": "x".repeat(500)})), 0);
    }
    let used = budget.used();
    assert!(used > 5_000 && used < 10_000, "{used}");
    assert!(t.evict_oldest());
    assert_eq!(t.history(0, 100).0[0].seq, 2);
    assert!(budget.used() < used);
    drop(t);
    assert_eq!(budget.used(), 0, "a dropped topic gives its bytes back");
}
