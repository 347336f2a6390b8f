//! Retention: runs finished longer ago than the setting are deleted, with their events
//! and their artifact folders, by a background sweep (and by `switchboard prune`).

use super::{lock, Engine};
use crate::hub::now_ms;
use crate::storage::Reader;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Deletes the runs finished before `older_than` ago and their folders under
/// `runs_dir`; returns how many.
pub async fn prune(reader: &Reader, runs_dir: &Path, older_than: Duration) -> Result<Vec<String>, sqlx::Error> {
    let now = now_ms();
    let ids = reader.prune(now - older_than.as_millis() as i64, now).await?;
    for id in &ids {
        let dir = runs_dir.join(id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %dir.display(), error = %e, "cannot remove a pruned run's folder");
            }
        }
    }
    Ok(ids)
}

impl Engine {
    /// Sweeps every `every` until shutdown (nothing when `older_than` is None).
    pub async fn run_retention(self, older_than: Option<Duration>, every: Duration) {
        let Some(older_than) = older_than else { return };
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match prune(&self.inner.reader, &self.inner.config.runs_dir, older_than).await {
                Ok(ids) if !ids.is_empty() => {
                    let mut runs = lock(&self.inner.runs);
                    for id in &ids {
                        runs.remove(id);
                    }
                    drop(runs);
                    for id in &ids {
                        self.inner.hub.forget_topic(&super::topic_of(id));
                    }
                    self.inner.total_runs.fetch_sub(ids.len() as u64, Ordering::Relaxed);
                    tracing::info!(pruned = ids.len(), "runs past the retention period deleted");
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot prune old runs"),
            }
        }
    }
}
