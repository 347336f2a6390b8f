//! Several nodes on PostgreSQL: a run's topic is written by the node that owns the run,
//! and watched from any. The owner's writer announces each batch it commits
//! (`NOTIFY switchboard_events, '<topic> <epoch> <seq>'`, storage::writer); a node
//! that has the topic open here reads what it lacks from the database and delivers
//! it to its own subscribers, in seq order, each event once (log::durable). Topics not
//! open here are not touched. An announcement in another epoch (the run was taken over,
//! or its owner restarted after a crash) restarts the topic here: its subscribers get
//! 1012 and resume in the new epoch. Announcements missed while the listening
//! connection was down are made up by `follow_all` once it is back.

use super::Hub;

impl Hub {
    /// A durable topic that another node wrote until now (a run taken over from it):
    /// its subscribers here are closed with 1012 and resume in the new epoch, and its
    /// next use opens it anew from the database.
    pub fn restart_topic(&self, name: &str) {
        let removed = self.inner.topics.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        if let Some(topic) = removed {
            use super::log::Deliver;
            topic.fanout.drop_subscribers(super::outbox::CloseReason::HistoryRestarted);
        }
    }

    /// Catches every durable topic open here up with what the database holds.
    pub async fn follow_all(&self) {
        let open: Vec<_> = {
            let topics = self.inner.topics.read().unwrap_or_else(|p| p.into_inner());
            topics.iter().filter(|(name, _)| name.starts_with(super::DURABLE_PREFIX)).map(|(name, t)| (name.clone(), t.clone())).collect()
        };
        for (name, topic) in open {
            match topic.log.stored_position().await {
                Ok(Some((epoch, seq))) => self.follow(&format!("{name} {epoch} {seq}")).await,
                Ok(None) => {}
                Err(e) => tracing::warn!(topic = %name, error = %e, "cannot read where a watched topic is stored up to"),
            }
        }
    }

    /// Takes one announcement, `"<topic> <epoch> <seq>"`.
    pub async fn follow(&self, announced: &str) {
        let mut parts = announced.split(' ');
        let (Some(name), Some(epoch), Some(Ok(upto)), None) = (parts.next(), parts.next(), parts.next().map(str::parse::<u64>), parts.next()) else {
            tracing::warn!(announced, "an announcement of stored events that does not read");
            return;
        };
        let Some(topic) = self.existing(name) else { return };
        if *topic.log.epoch() != *epoch {
            tracing::info!(topic = name, here = %topic.log.epoch(), announced = epoch, "another node started this topic's new epoch: its subscribers here resume in it");
            self.restart_topic(name);
            return;
        }
        if let Err(e) = topic.log.follow(upto, &*topic.fanout).await {
            tracing::warn!(topic = name, error = %e, "cannot read another node's events of a topic watched here");
        }
    }
}
