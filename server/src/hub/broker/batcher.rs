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
        let results: Result<Vec<(u64, String)>, LogError> = timed(pipe.query_async(&mut conn)).await;
        match results {
            Ok(firsts) if firsts.len() == groups.len() => {
                for (group, (first, _epoch)) in groups.into_iter().zip(firsts) {
                    for (i, p) in group.into_iter().enumerate() {
                        let _ = p.done.send(Ok(first + i as u64));
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
/// (seqs are per topic: the order between topics is nobody's to see).
fn by_topic(batch: Vec<Publish>) -> Vec<Vec<Publish>> {
    let mut groups: Vec<Vec<Publish>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for p in batch {
        match index.get(&p.keys[0]) {
            Some(&i) => groups[i].push(p),
            None => {
                index.insert(p.keys[0].clone(), groups.len());
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
