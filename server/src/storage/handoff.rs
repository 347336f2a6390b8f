//! Queued runs handed from a busy node to one with room (several nodes on PostgreSQL).
//! A node with a free slot and nothing waiting looks for the oldest runs queued on
//! other live nodes (`queued_elsewhere`) and asks their owner for one; the owner, with
//! the run's events all stored, gives it away in one statement (`give`) that holds
//! only if the run is still its own and still queued, and the taker still alive. The
//! row is taken with `FOR UPDATE SKIP LOCKED`: a run another transaction is deciding
//! (a restart, a takeover) is not waited for but left alone this time.

use super::nodes::DB_NOW_MS;
use sqlx::AnyPool;

/// A run queued on another node.
#[derive(Debug)]
pub struct Queued {
    pub id: String,
    pub owner: String,
    /// Its pipeline, as stored (JSON): whether it needs an agent is read from it.
    pub pipeline: String,
}

#[derive(Clone)]
pub struct Handoff {
    pool: AnyPool,
    pub node: String,
    lease_ms: i64,
}

impl Handoff {
    pub fn new(pool: AnyPool, node: String, lease: std::time::Duration) -> Handoff {
        Handoff { pool, node, lease_ms: lease.as_millis() as i64 }
    }

    /// The oldest `limit` runs queued on other nodes whose lease holds (a dead node's
    /// runs are taken over instead: storage::nodes).
    pub async fn queued_elsewhere(&self, limit: i64) -> Result<Vec<Queued>, sqlx::Error> {
        use sqlx::Row;
        let sql = format!(
            "SELECT w.id, w.node, w.pipeline FROM workflows w JOIN nodes n ON n.id = w.node
             WHERE w.state = 'pending' AND w.node <> $1 AND n.heartbeat_at >= {DB_NOW_MS} - $2
             ORDER BY w.created_at, w.id LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(&self.node).bind(self.lease_ms).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(Queued { id: r.try_get("id")?, owner: r.try_get("node")?, pipeline: r.try_get("pipeline")? })).collect()
    }

    /// Gives this node's queued run `id` to node `to`; false when it is not this
    /// node's queued run any more, is being decided elsewhere, or `to`'s lease is out.
    pub async fn give(&self, id: &str, to: &str) -> Result<bool, sqlx::Error> {
        let sql = format!(
            "UPDATE workflows SET node = $1
             WHERE id = (SELECT id FROM workflows WHERE id = $2 AND node = $3 AND state = 'pending' FOR UPDATE SKIP LOCKED)
               AND EXISTS (SELECT 1 FROM nodes WHERE id = $1 AND heartbeat_at >= {DB_NOW_MS} - $4)"
        );
        let done = sqlx::query(&sql).bind(to).bind(id).bind(&self.node).bind(self.lease_ms).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives this node's running run `id` to node `to`, between two of its stages (the
    /// next one's agent is connected there: engine::agent_moves), with its cluster
    /// slot; false when it is not this node's running run any more, this node's lease
    /// is gone, or `to`'s is out.
    pub async fn give_running(&self, id: &str, to: &str) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // fenced like every write batch: a node taken over gives nothing
        let leased: Option<String> = sqlx::query_scalar("SELECT id FROM nodes WHERE id = $1 FOR SHARE").bind(&self.node).fetch_optional(&mut *tx).await?;
        if leased.is_none() {
            return Ok(false);
        }
        let sql = format!(
            "UPDATE workflows SET node = $1 WHERE id = $2 AND node = $3 AND state IN ('running', 'paused')
               AND EXISTS (SELECT 1 FROM nodes WHERE id = $1 AND heartbeat_at >= {DB_NOW_MS} - $4)"
        );
        let given = sqlx::query(&sql).bind(to).bind(id).bind(&self.node).bind(self.lease_ms).execute(&mut *tx).await?;
        if given.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE cluster_slots SET node = $1 WHERE run = $2 AND node = $3").bind(to).bind(id).bind(&self.node).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }
}
