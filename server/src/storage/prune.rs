//! Retention: runs finished before a cut-off are deleted with their stages, their
//! events and their topic, and remembered as pruned (so asking for one says so rather
//! than answering an empty run). The caller removes their artifact folders.

use super::Reader;
use sqlx::{AnyPool, Row};

impl Reader {
    /// Deletes the runs finished before `before_ms`; returns their ids.
    pub async fn prune(&self, before_ms: i64, now_ms: i64) -> Result<Vec<String>, sqlx::Error> {
        prune(&self.pool, before_ms, now_ms).await
    }
}

/// Deletes the runs finished before `before_ms`; returns their ids.
async fn prune(pool: &AnyPool, before_ms: i64, now_ms: i64) -> Result<Vec<String>, sqlx::Error> {
    let ids: Vec<String> = sqlx::query("SELECT id FROM workflows WHERE finished_at IS NOT NULL AND finished_at < $1")
        .bind(before_ms)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    // in slices: a long prune never holds the database for long
    for slice in ids.chunks(100) {
        let mut tx = pool.begin().await?;
        for id in slice {
            let topic = format!("workflow:{id}");
            sqlx::query("DELETE FROM events WHERE topic = $1").bind(&topic).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM topics WHERE name = $1").bind(&topic).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM stages WHERE workflow_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM workflows WHERE id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO pruned (id, pruned_at) VALUES ($1, $2) ON CONFLICT(id) DO UPDATE SET pruned_at = excluded.pruned_at").bind(id).bind(now_ms).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    Ok(ids)
}
