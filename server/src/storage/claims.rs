//! What several nodes on one PostgreSQL may race for, decided by the database at once
//! rather than through the writer's queue: a new run's id (a client retrying through a
//! balancer may send one id to two nodes), and a finished run's restart (two nodes may
//! be asked at once, and whichever restarts it owns it from then on).

use super::WorkflowRow;
use sqlx::AnyPool;

const FINISHED: &str = "('completed', 'failed', 'cancelled')";

#[derive(Clone)]
pub struct Claims {
    pool: AnyPool,
    node: String,
}

/// A finished run claimed for a restart.
#[derive(Debug, PartialEq, Eq)]
pub enum Restart {
    /// It is this node's now; `handed_over` when another node ran it before (its topic
    /// then has a new epoch: that node's last events may still be on their way).
    Claimed { handed_over: bool },
    /// It is not finished (any more): restarted elsewhere, or never stored.
    Refused,
}

impl Claims {
    pub fn new(pool: AnyPool, node: String) -> Claims {
        Claims { pool, node }
    }

    /// Stores a new run's row now, as this node's; false when its id is taken.
    pub async fn new_run(&self, r: &WorkflowRow) -> Result<bool, sqlx::Error> {
        const CLAIM: &str = concat!(super::writer::workflow_insert!(), " ON CONFLICT DO NOTHING");
        let done = super::writer::bind_workflow(sqlx::query(CLAIM), r, Some(&self.node)).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes finished run `id` to restart it here.
    pub async fn restart(&self, id: &str) -> Result<Restart, sqlx::Error> {
        use sqlx::Row;
        let mut tx = self.pool.begin().await?;
        let sql = format!("SELECT node FROM workflows WHERE id = $1 AND state IN {FINISHED} FOR UPDATE");
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await? else {
            return Ok(Restart::Refused);
        };
        let before: Option<String> = row.try_get("node")?;
        sqlx::query("UPDATE workflows SET state = 'pending', node = $1 WHERE id = $2").bind(&self.node).bind(id).execute(&mut *tx).await?;
        let handed_over = before.as_deref() != Some(self.node.as_str());
        if handed_over {
            sqlx::query("UPDATE topics SET epoch = $1 WHERE name = $2")
                .bind(crate::hub::log::memory::new_epoch())
                .bind(format!("workflow:{id}"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Restart::Claimed { handed_over })
    }
}
