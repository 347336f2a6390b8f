//! The cluster-wide concurrency limit (several nodes on PostgreSQL,
//! `--cluster-concurrency`): a run holds one of `limit` slots, a row in
//! `cluster_slots`, from its first stage to its end, on top of its own node's
//! `--concurrency`. Claims are serialized by a transaction-level advisory lock, and
//! only a node that still holds its lease may claim (its row is share-locked in the
//! same transaction, like every write batch): a takeover deletes the dead node's
//! slots with its lease row, so none is ever left behind.

use sqlx::AnyPool;

/// The advisory lock key of slot claims ("sbslots").
const CLAIM_LOCK: i64 = 0x0073_6273_6c6f_7473;

#[derive(Clone)]
pub struct Slots {
    pool: AnyPool,
    node: String,
    limit: u32,
}

impl Slots {
    pub fn new(pool: AnyPool, node: String, limit: u32) -> Slots {
        Slots { pool, node, limit }
    }

    /// Takes a slot for `run` if one is free (or it holds one already): whether it has.
    pub async fn claim(&self, run: &str) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock($1)) AS l").bind(CLAIM_LOCK).execute(&mut *tx).await?;
        let leased: Option<String> = sqlx::query_scalar("SELECT id FROM nodes WHERE id = $1 FOR SHARE").bind(&self.node).fetch_optional(&mut *tx).await?;
        if leased.is_none() {
            return Err(sqlx::Error::Protocol(format!("node {:?} no longer holds its lease", self.node)));
        }
        // a slot whose release was lost (its run ended) is free
        sqlx::query("DELETE FROM cluster_slots WHERE run IN (SELECT id FROM workflows WHERE state IN ('completed', 'failed', 'cancelled'))")
            .execute(&mut *tx)
            .await?;
        let holder: Option<String> = sqlx::query_scalar("SELECT node FROM cluster_slots WHERE run = $1").bind(run).fetch_optional(&mut *tx).await?;
        if let Some(holder) = holder {
            // a run is claimed only by the node that owns it: one given by another
            // node brings its slot (storage::handoff), here made this node's
            if holder != self.node {
                sqlx::query("UPDATE cluster_slots SET node = $1 WHERE run = $2").bind(&self.node).bind(run).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            return Ok(true);
        }
        let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cluster_slots").fetch_one(&mut *tx).await?;
        if taken >= i64::from(self.limit) {
            return Ok(false);
        }
        sqlx::query("INSERT INTO cluster_slots (run, node, taken_at) VALUES ($1, $2, $3)")
            .bind(run)
            .bind(&self.node)
            .bind(crate::hub::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Gives `run`'s slot back.
    pub async fn release(&self, run: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM cluster_slots WHERE run = $1 AND node = $2").bind(run).bind(&self.node).execute(&self.pool).await.map(|_| ())
    }

    /// Gives back every slot this node held (at start: its runs queue again).
    pub async fn release_all(&self) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM cluster_slots WHERE node = $1").bind(&self.node).execute(&self.pool).await.map(|_| ())
    }
}
