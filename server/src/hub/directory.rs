//! The topics the hub holds now, as `GET /api/v1/topics` lists them: for the dashboard's
//! topic pages and for producers checking where their streams stand.

use super::Hub;
use app::protocol::TopicInfo;
use std::sync::atomic::Ordering;

impl Hub {
    /// The topics held in memory whose names start with `prefix` and that `visible`
    /// lets through, by name: (the first `limit`, how many matched in all).
    pub fn list_topics(&self, prefix: &str, limit: usize, visible: impl Fn(&str) -> bool) -> (Vec<TopicInfo>, usize) {
        let mut handles: Vec<_> = {
            let topics = self.inner.topics.read().unwrap_or_else(|p| p.into_inner());
            topics.values().filter(|t| t.name.starts_with(prefix) && visible(&t.name)).cloned().collect()
        };
        let total = handles.len();
        handles.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        handles.truncate(limit);
        let list = handles
            .iter()
            .map(|t| {
                let last = t.last_event_ts.load(Ordering::Relaxed);
                TopicInfo {
                    name: t.name.to_string(),
                    seq: t.log.last_seq(),
                    epoch: t.log.epoch().to_string(),
                    subscribers: t.fanout.subscriber_count() as u64,
                    durable: t.durable,
                    last_event_ts: (last > 0).then_some(last),
                }
            })
            .collect();
        (list, total)
    }
}
