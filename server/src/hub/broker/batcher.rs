//! This node's publishes to Redis, in the order they were made: one task takes what
//! every connection has queued and sends it as one pipeline of scripts, one pipeline
//! in flight at a time. Seqs then follow the order publishes were queued (the redis
//! crate does not keep concurrent requests in order on the wire), and a producer that
//! keeps many publishes in flight pays one round trip per batch, not per event. A
//! topic's publishes in one batch go as one script call and one pub/sub message:
//! under load Redis then runs one script per topic per batch, not one per event.

use super::{scripts, timed};
use crate::hub::log::LogError;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// Most publishes in one pipeline.
const MAX_BATCH: usize = 256;
/// Most frame bytes in one script call, so one pub/sub message stays far below
/// Redis's output-buffer limits for pub/sub clients (8 MiB soft, 32 MiB hard by
/// default); an event larger than this goes alone.
const MAX_CALL_BYTES: usize = 1 << 20;

/// One publish (see `scripts::PUBLISH`).
pub struct Publish {
    /// The topic's meta hash and stream.
    pub keys: [String; 2],
    pub channel: String,
    /// The frame around its seq.
    pub prefix: String,
    pub suffix: String,
    /// The epoch the topic gets if it has none.
    pub epoch: String,
    pub done: oneshot::Sender<Result<u64, LogError>>,
}

/// What every publish of this node shares: stream length, stream and meta TTLs.
pub struct Limits {
    pub max_events: String,
    pub stream_ttl_s: String,
    pub meta_ttl_s: String,
}

pub async fn run(mut conn: ConnectionManager, limits: Limits, mut queue: mpsc::UnboundedReceiver<Publish>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let groups = by_topic(std::mem::take(&mut batch));
        let mut pipe = redis::pipe();
        for group in &groups {
            let first = &group[0];
            // EVAL, not EVALSHA: after a NOSCRIPT (Redis restarted) nothing need be resent
            let call = pipe.cmd("EVAL").arg(scripts::PUBLISH).arg(2).arg(&first.keys[..]);
            call.arg(&first.channel).arg(&limits.max_events).arg(&first.epoch).arg(&limits.stream_ttl_s).arg(&limits.meta_ttl_s);
            for p in group {
                call.arg(&p.prefix).arg(&p.suffix);
            }
        }
        // each call answered on its own: a call that failed fails only its publishes
        pipe.ignore_errors();
        let results: Result<Vec<redis::RedisResult<(u64, String)>>, LogError> = timed(pipe.query_async(&mut conn)).await;
        match results {
            Ok(answers) if answers.len() == groups.len() => {
                for (group, answer) in groups.into_iter().zip(answers) {
                    match answer {
                        Ok((first, _epoch)) => {
                            for (i, p) in group.into_iter().enumerate() {
                                let _ = p.done.send(Ok(first + i as u64));
                            }
                        }
                        Err(e) => fail(vec![group], super::unavailable(e)),
                    }
                }
            }
            Ok(_) => fail(groups, LogError::Read("the broker answered a batch of publishes oddly".into())),
            Err(e) => fail(groups, e),
        }
        batch = Vec::with_capacity(MAX_BATCH);
    }
}

/// The batch split by topic, each topic's publishes in the order they were queued
/// (seqs are per topic: the order between topics is nobody's to see), a topic's run
/// cut where its frames pass `MAX_CALL_BYTES` (its calls then run one after another).
fn by_topic(batch: Vec<Publish>) -> Vec<Vec<Publish>> {
    let mut groups: Vec<Vec<Publish>> = Vec::new();
    // a topic's open group and its bytes so far
    let mut open: HashMap<String, (usize, usize)> = HashMap::new();
    for p in batch {
        let bytes = p.prefix.len() + p.suffix.len();
        match open.get_mut(&p.keys[0]) {
            Some((i, sum)) if *sum + bytes <= MAX_CALL_BYTES => {
                *sum += bytes;
                groups[*i].push(p);
            }
            _ => {
                open.insert(p.keys[0].clone(), (groups.len(), bytes));
                groups.push(vec![p]);
            }
        }
    }
    groups
}

fn fail(groups: Vec<Vec<Publish>>, e: LogError) {
    for p in groups.into_iter().flatten() {
        let _ = p.done.send(Err(e.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str, bytes: usize) -> Publish {
        Publish {
            keys: [format!("m:{{{topic}}}"), format!("s:{{{topic}}}")],
            channel: format!("c:{topic}"),
            prefix: "p".repeat(bytes),
            suffix: String::new(),
            epoch: "e".into(),
            done: oneshot::channel().0,
        }
    }

    fn shape(groups: &[Vec<Publish>]) -> Vec<(String, usize)> {
        groups.iter().map(|g| (g[0].channel.clone(), g.len())).collect()
    }

    #[test]
    fn a_batch_goes_by_topic_in_order_and_no_call_passes_the_byte_budget() {
        let big = MAX_CALL_BYTES / 2 + 1;
        let batch = vec![publish("x", 10), publish("y", 10), publish("x", 10), publish("x", big), publish("y", 10), publish("x", big), publish("x", MAX_CALL_BYTES * 2)];
        let groups = by_topic(batch);
        assert_eq!(
            shape(&groups),
            [("c:x".into(), 3), ("c:y".into(), 2), ("c:x".into(), 1), ("c:x".into(), 1)],
            "x's first call holds what fits, then one call per event that does not"
        );
        let sizes: Vec<usize> = groups[0].iter().map(|p| p.prefix.len()).collect();
        assert_eq!(sizes, [10, 10, big], "a topic's events stay in queued order");
    }
}
