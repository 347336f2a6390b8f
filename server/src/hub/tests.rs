//! The hub's halves together, without a server: the memory log and the fan-out, seq
//! and epoch, replay with `since`, recovery answers, slow consumers, redaction, the
//! memory budget, and a catch-up that runs while events are published.

use super::*;
use crate::hub::outbox::{Outbound, Outbox, OutboxReceiver};
use app::protocol::{EventFrame, ServerMessage};

fn config(max_events: usize) -> HubConfig {
    let mut c = HubConfig::from(&crate::config::Config::for_tests("unused".into()));
    c.retention = Retention { max_events, max_age: Duration::from_secs(600) };
    c
}

fn hub(max_events: usize) -> Hub {
    Hub::new(config(max_events), None, CancellationToken::new())
}

fn raw(v: serde_json::Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(&v).unwrap()
}

fn open() -> crate::auth::Principal {
    crate::auth::Principal::open()
}

fn client(h: &Hub, queue: usize, viewer: crate::auth::Principal) -> (Arc<ConnectionInfo>, OutboxReceiver) {
    let (outbox, rx) = Outbox::new(queue);
    (h.connect(outbox, viewer, None, None), rx)
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
    msgs.iter().filter_map(|m| if let ServerMessage::Event(e) = m { Some(e.seq) } else { None }).collect()
}

fn subscribed(msg: &ServerMessage) -> &app::protocol::Subscribed {
    match msg {
        ServerMessage::Subscribed(s) => s,
        other => panic!("expected subscribed, got {other:?}"),
    }
}

async fn publish(h: &Hub, topic: &str, n: u64) -> u64 {
    h.publish_raw(topic, "e", &raw(n.into())).await.unwrap()
}

#[test]
fn frame_is_the_protocols_event_message() {
    let data = raw(serde_json::json!({"a":[1,"\"x\""]}));
    let (p, s) = event::frame_parts("we\"ird", "ev\n", &data, 42);
    let ours = format!("{p}7{s}");
    let theirs = EventFrame::new("we\"ird", 7, 42, "ev\n", &data).to_json();
    assert_eq!(ours, theirs);
}

#[tokio::test]
async fn seq_starts_at_one_without_gaps_and_live_events_follow() {
    let h = hub(100);
    let (c, mut rx) = client(&h, 64, open());
    h.subscribe(&c, "t:1", None, None, None).await.unwrap();
    for i in 1..=5 {
        assert_eq!(publish(&h, "t:1", i).await, i);
    }
    let msgs = drain(&mut rx);
    let s = subscribed(&msgs[0]);
    assert_eq!((s.seq, s.recovered), (0, true));
    assert_eq!(seqs(&msgs), [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn since_replays_then_goes_live_and_recovery_is_told() {
    let h = hub(3);
    for i in 0..10 {
        publish(&h, "t:1", i).await;
    }
    let epoch = h.position("t:1").await.unwrap().1;
    let (c, mut rx) = client(&h, 64, open());
    h.subscribe(&c, "t:1", Some(7), Some(&epoch), Some(3.into())).await.unwrap();
    publish(&h, "t:1", 0).await;
    let msgs = drain(&mut rx);
    let s = subscribed(&msgs[0]);
    assert_eq!((s.seq, s.recovered, s.id.clone()), (10, true, Some(3.into())));
    assert_eq!(seqs(&msgs), [8, 9, 10, 11]);
    for (since, epoch, recovered) in [(5, None, false), (11, None, true), (12, None, false), (9, Some("old"), false)] {
        h.subscribe(&c, "t:1", Some(since), epoch, None).await.unwrap();
        let msgs = drain(&mut rx);
        assert_eq!(subscribed(&msgs[0]).recovered, recovered, "since {since} epoch {epoch:?}");
        if !recovered {
            assert!(seqs(&msgs).is_empty(), "nothing partial is replayed");
        }
    }
}

#[tokio::test]
async fn history_respects_count_since_limit_and_age() {
    let h = hub(5);
    for i in 0..8 {
        publish(&h, "t:1", i).await;
    }
    let page = h.history("t:1", 0, 100).await.unwrap();
    assert_eq!(page.seq, 8);
    assert_eq!(page.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5, 6, 7, 8]);
    let page = h.history("t:1", 5, 2).await.unwrap();
    assert_eq!(page.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [6, 7]);
    let t = log::memory::MemoryTopic::new("t", "e".into(), Retention { max_events: 10, max_age: Duration::from_millis(20) }, None);
    let sink = FanoutTopic::new(0, 8);
    t.append(Draft { event: "e", data: &raw(1.into()), ts: 0, redaction: None }, &sink).await.unwrap();
    std::thread::sleep(Duration::from_millis(40));
    assert!(t.is_idle() && t.last_seq() == 1, "expired, and the seq never goes back");
}

#[tokio::test]
async fn an_overflowing_subscriber_is_closed_and_the_others_keep_receiving() {
    let h = hub(100);
    let (slow, _slow_rx) = client(&h, 2, open());
    let (fast, mut fast_rx) = client(&h, 64, open());
    h.subscribe(&slow, "t:1", None, None, None).await.unwrap();
    h.subscribe(&fast, "t:1", None, None, None).await.unwrap();
    for i in 0..3 {
        publish(&h, "t:1", i).await;
    }
    assert!(slow.outbox.is_closing());
    assert_eq!(slow.outbox.close_reason().code(), 1013);
    assert_eq!(h.topic("t:1").await.unwrap().fanout.subscriber_count(), 1);
    assert_eq!(seqs(&drain(&mut fast_rx)), [1, 2, 3]);
    assert_eq!(h.counters().slow_consumer_closes.get(), 1);
}

#[tokio::test]
async fn a_slow_consumer_of_many_topics_is_counted_once() {
    let h = hub(100);
    // room for the three `subscribed` replies and one event
    let (slow, _slow_rx) = client(&h, 4, open());
    for t in ["t:1", "t:2", "t:3"] {
        h.subscribe(&slow, t, None, None, None).await.unwrap();
    }
    for i in 0..3 {
        for t in ["t:1", "t:2", "t:3"] {
            publish(&h, t, i).await;
        }
    }
    assert_eq!(slow.outbox.close_reason().code(), 1013);
    for t in ["t:1", "t:2", "t:3"] {
        assert_eq!(h.topic(t).await.unwrap().fanout.subscriber_count(), 0, "gone from {t}");
    }
    assert_eq!(h.counters().slow_consumer_closes.get(), 1);
}

#[tokio::test]
async fn resubscribing_replaces_and_unsubscribe_removes() {
    let h = hub(100);
    let (c, mut rx) = client(&h, 64, open());
    h.subscribe(&c, "t:1", None, None, None).await.unwrap();
    h.subscribe(&c, "t:1", None, None, None).await.unwrap();
    publish(&h, "t:1", 1).await;
    assert_eq!(seqs(&drain(&mut rx)), [1], "one copy, not two");
    h.unsubscribe(&c, "t:1");
    publish(&h, "t:1", 2).await;
    assert!(seqs(&drain(&mut rx)).is_empty());
}

#[tokio::test]
async fn a_subscriber_that_may_not_see_the_scope_gets_the_redacted_frame_at_the_same_seq() {
    let h = hub(100);
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
    let (full, mut full_rx) = client(&h, 64, open());
    let (narrow, mut narrow_rx) = client(&h, 64, viewer.clone());
    h.subscribe(&full, "t:1", None, None, None).await.unwrap();
    h.subscribe(&narrow, "t:1", None, None, None).await.unwrap();
    let secret = serde_json::json!({"run": "secret"});
    h.publish_scoped("t:1", "e", &secret, "workflow:secret", &serde_json::json!({"run": null})).await.unwrap();
    let data = |msgs: Vec<ServerMessage>| match &msgs[1] {
        ServerMessage::Event(e) => (e.seq, e.data.get().to_owned()),
        other => panic!("{other:?}"),
    };
    assert_eq!(data(drain(&mut full_rx)), (1, r#"{"run":"secret"}"#.to_owned()));
    assert_eq!(data(drain(&mut narrow_rx)), (1, r#"{"run":null}"#.to_owned()));
    let page = h.history("t:1", 0, 10).await.unwrap();
    assert!(!page.events[0].frame_for(&viewer).contains("secret"));
}

#[tokio::test]
async fn the_memory_budget_evicts_the_oldest_events_of_any_topic() {
    let mut c = config(1_000);
    c.history_memory_bytes = 30_000;
    let h = Hub::new(c, None, CancellationToken::new());
    let pad = "x".repeat(1_000);
    for i in 0..10 {
        h.publish("old:1", "e", &serde_json::json!({"i": i, "pad": pad})).await.unwrap();
    }
    for i in 0..20 {
        h.publish("new:1", "e", &serde_json::json!({"i": i, "pad": pad})).await.unwrap();
    }
    assert!(h.history_bytes() <= 30_000, "{}", h.history_bytes());
    let old = h.history("old:1", 0, 100).await.unwrap().events;
    assert!(old.len() < 10 && old.first().is_none_or(|e| e.seq > 1), "the oldest events went first: {} left", old.len());
    assert_eq!(h.history("new:1", 0, 100).await.unwrap().events[0].seq, 1, "the newest is whole");
    assert!(h.counters().history_evictions.get() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_racing_publishers_sees_every_seq_once() {
    let h = hub(100_000);
    for i in 0..500 {
        publish(&h, "t:race", i).await;
    }
    let publisher = {
        let h = h.clone();
        tokio::spawn(async move {
            for i in 0..2_000 {
                publish(&h, "t:race", i).await;
                if i % 100 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut seen = Vec::new();
    let (c, mut rx) = client(&h, 1_000_000, open());
    h.subscribe(&c, "t:race", Some(100), None, None).await.unwrap();
    publisher.await.unwrap();
    seen.extend(seqs(&drain(&mut rx)));
    assert_eq!(seen, (101..=2_500).collect::<Vec<u64>>());
}
