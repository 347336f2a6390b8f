//! The agent's reports until the server says it applied them: per stage, numbered
//! 1, 2, 3, ..., kept (bounded in bytes: a stage that outruns the connection waits)
//! and sent again after a reconnect from the seq the server asks for. So a line is
//! neither lost when the connection drops nor applied twice when it is sent again.

use app::protocol::{Report, ReportKind, StageKey};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// Reports sent at once, at most.
const BATCH_REPORTS: usize = 256;
/// Bytes sent at once, about (the server's message limit is larger).
const BATCH_BYTES: usize = 512 * 1024;

#[derive(Default)]
struct Stage {
    next_seq: u64,
    /// Not yet applied, oldest first.
    kept: VecDeque<(Report, usize)>,
    /// The last seq sent on this connection.
    sent_up_to: u64,
    /// Its `finished` report is kept: once applied, the stage is forgotten.
    done: bool,
}

pub struct Outbox {
    stages: Mutex<BTreeMap<StageKey, Stage>>,
    bytes: Mutex<usize>,
    limit: usize,
    /// Woken when there is something to send.
    pub ready: Notify,
    /// Woken when reports are applied (room again).
    room: Notify,
}

fn size(r: &Report) -> usize {
    64 + match &r.kind {
        ReportKind::Output { lines, .. } => lines.iter().map(|l| l.len() + 4).sum(),
        _ => 0,
    }
}

impl Outbox {
    pub fn new(limit: usize) -> Outbox {
        Outbox { stages: Mutex::new(BTreeMap::new()), bytes: Mutex::new(0), limit, ready: Notify::new(), room: Notify::new() }
    }

    fn stages(&self) -> MutexGuard<'_, BTreeMap<StageKey, Stage>> {
        self.stages.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bytes(&self) -> MutexGuard<'_, usize> {
        self.bytes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a report of stage `key` (waiting while the buffer is full).
    pub async fn push(&self, key: &StageKey, kind: ReportKind) {
        loop {
            let room = self.room.notified();
            if *self.bytes() < self.limit {
                break;
            }
            room.await;
        }
        self.push_now(key, kind);
    }

    /// Keeps a report now, room or not (a small one: `started`).
    pub fn push_now(&self, key: &StageKey, kind: ReportKind) {
        let mut stages = self.stages();
        let stage = stages.entry(key.clone()).or_insert_with(|| Stage { next_seq: 1, ..Stage::default() });
        stage.done |= matches!(kind, ReportKind::Finished { .. });
        let report = Report { key: key.clone(), seq: stage.next_seq, kind };
        stage.next_seq += 1;
        let n = size(&report);
        stage.kept.push_back((report, n));
        drop(stages);
        *self.bytes() += n;
        self.ready.notify_one();
    }

    /// The server applied everything of `key` up to `seq`.
    pub fn applied(&self, key: &StageKey, seq: u64) {
        let mut freed = 0;
        let mut stages = self.stages();
        if let Some(stage) = stages.get_mut(key) {
            while stage.kept.front().is_some_and(|(r, _)| r.seq <= seq) {
                if let Some((_, n)) = stage.kept.pop_front() {
                    freed += n;
                }
            }
            if stage.done && stage.kept.is_empty() {
                stages.remove(key);
            }
        }
        drop(stages);
        *self.bytes() -= freed;
        self.room.notify_waiters();
    }

    /// The server takes `key`'s reports from `next` on: the rest is sent again. What it
    /// has is kept until it says `applied` (on disk: a crash of the server before then
    /// would ask for them again).
    pub fn resume_from(&self, key: &StageKey, next: u64) {
        if let Some(stage) = self.stages().get_mut(key) {
            stage.sent_up_to = next.saturating_sub(1);
        }
        self.ready.notify_one();
    }

    /// Forgets a stage the server does not want reports of.
    pub fn forget(&self, key: &StageKey) {
        if let Some(stage) = self.stages().remove(key) {
            *self.bytes() -= stage.kept.iter().map(|(_, n)| n).sum::<usize>();
        }
        self.room.notify_waiters();
    }

    /// A new connection: everything kept is to be sent again (after `welcome` says
    /// from where).
    pub fn reconnected(&self) {
        for stage in self.stages().values_mut() {
            stage.sent_up_to = stage.kept.front().map_or(stage.next_seq - 1, |(r, _)| r.seq - 1);
        }
    }

    /// The next reports to send, and marks them sent.
    pub fn take_batch(&self) -> Vec<Report> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for stage in self.stages().values_mut() {
            for (r, n) in &stage.kept {
                if r.seq <= stage.sent_up_to {
                    continue;
                }
                if out.len() >= BATCH_REPORTS || bytes + n > BATCH_BYTES && !out.is_empty() {
                    return out;
                }
                bytes += n;
                stage.sent_up_to = r.seq;
                out.push(r.clone());
            }
        }
        out
    }

    /// Stages with reports not applied yet (one that ended here is still running for
    /// the server until its `finished` is applied).
    pub fn unapplied(&self) -> Vec<StageKey> {
        self.stages().iter().filter(|(_, s)| !s.kept.is_empty()).map(|(k, _)| k.clone()).collect()
    }

    /// Whether every report kept was applied.
    pub fn is_empty(&self) -> bool {
        self.stages().values().all(|s| s.kept.is_empty())
    }

    /// Stages it keeps anything of (a finished stage is forgotten once applied).
    #[cfg(test)]
    pub fn stages_kept(&self) -> usize {
        self.stages().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StageKey {
        StageKey { run: "r".into(), stage: "s".into(), attempt: 1 }
    }

    fn out(lines: &[&str]) -> ReportKind {
        ReportKind::Output { stream: app::protocol::OutputStream::Stdout, lines: lines.iter().map(|l| l.to_string()).collect() }
    }

    #[tokio::test]
    async fn reports_are_kept_until_applied_and_sent_again_from_where_asked() {
        let o = Outbox::new(1 << 20);
        for i in 0..5 {
            o.push(&key(), out(&[&format!("line {i}")])).await;
        }
        let first: Vec<u64> = o.take_batch().iter().map(|r| r.seq).collect();
        assert_eq!(first, [1, 2, 3, 4, 5]);
        assert!(o.take_batch().is_empty(), "each is sent once per connection");
        o.applied(&key(), 2);
        // the connection dropped; the server had applied up to 3 after all (not on disk)
        o.reconnected();
        o.resume_from(&key(), 4);
        let again: Vec<u64> = o.take_batch().iter().map(|r| r.seq).collect();
        assert_eq!(again, [4, 5]);
        // the server crashed before 3 was on disk: it asks for 3 again, and it is there
        o.reconnected();
        o.resume_from(&key(), 3);
        let again: Vec<u64> = o.take_batch().iter().map(|r| r.seq).collect();
        assert_eq!(again, [3, 4, 5]);
        o.applied(&key(), 5);
        assert!(o.is_empty());
        assert_eq!(o.stages_kept(), 1, "not finished: kept");
        o.push(&key(), ReportKind::Finished { exit_code: Some(0), error: None, cancelled: false }).await;
        o.applied(&key(), 6);
        assert_eq!(o.stages_kept(), 0, "finished and applied: forgotten");
    }

    #[tokio::test]
    async fn a_full_buffer_makes_the_stage_wait() {
        let o = std::sync::Arc::new(Outbox::new(200));
        o.push(&key(), out(&["x".repeat(300).as_str()])).await;
        let o2 = o.clone();
        let waiting = tokio::spawn(async move { o2.push(&key(), out(&["y"])).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "waits for room");
        o.applied(&key(), 1);
        waiting.await.unwrap();
    }
}
