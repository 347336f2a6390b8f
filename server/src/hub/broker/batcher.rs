//! This node's publishes to Redis, in the order they were made: one task takes what
//! every connection has queued and sends it as one pipeline of scripts, one pipeline
//! in flight at a time. Seqs then follow the order publishes were queued (the redis
//! crate does not keep concurrent requests in order on the wire), and a producer that
//! keeps many publishes in flight pays one round trip per batch, not per event.

use super::{scripts, timed};
use crate::hub::log::LogError;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

/// Most scripts in one pipeline.
const MAX_BATCH: usize = 256;

/// One publish: the script's keys and arguments (see `scripts::PUBLISH`).
pub struct Publish {
    pub keys: [String; 2],
    pub args: [String; 7],
    pub done: oneshot::Sender<Result<u64, LogError>>,
}

pub async fn run(mut conn: ConnectionManager, mut queue: mpsc::UnboundedReceiver<Publish>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for p in &batch {
            // EVAL, not EVALSHA: after a NOSCRIPT (Redis restarted) nothing need be resent
            pipe.cmd("EVAL").arg(scripts::PUBLISH).arg(2).arg(&p.keys[..]).arg(&p.args[..]);
        }
        let results: Result<Vec<(u64, String)>, LogError> = timed(pipe.query_async(&mut conn)).await;
        match results {
            Ok(seqs) if seqs.len() == batch.len() => {
                for (p, (seq, _epoch)) in batch.drain(..).zip(seqs) {
                    let _ = p.done.send(Ok(seq));
                }
            }
            Ok(_) => fail(&mut batch, LogError::Read("the broker answered a batch of publishes oddly".into())),
            Err(e) => fail(&mut batch, e),
        }
    }
}

fn fail(batch: &mut Vec<Publish>, e: LogError) {
    for p in batch.drain(..) {
        let _ = p.done.send(Err(e.clone()));
    }
}
