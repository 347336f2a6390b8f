//! Nodes of a cluster on PostgreSQL, and their leases. Each node has a row in `nodes`
//! whose heartbeat it renews; the row is its lease and its fencing token at once:
//! every write batch first takes a share lock on it (`writer`), and a node whose
//! heartbeat is older than the lease is taken over by a live one, which deletes the
//! row under `FOR UPDATE SKIP LOCKED` in the same transaction that moves the dead
//! node's unfinished runs to itself. So a batch either commits before the takeover
//! or finds its row gone and writes nothing: a node that was only slow (a long pause)
//! can never write over runs another node has taken up. Times are PostgreSQL's own
//! clock, so nodes' clocks need not agree.

use sqlx::AnyPool;
use std::path::Path;

/// Milliseconds since the epoch on the database's clock.
pub(super) const DB_NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";
/// The file in the data folder that keeps a node's id across restarts.
const NODE_ID_FILE: &str = "node-id";
const UNFINISHED: &str = "('pending', 'running', 'paused', 'waiting_confirmation')";

/// This node's id: read from the data folder, or made and kept there on first start.
pub fn node_id(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if valid(text.trim()) => Ok(text.trim().to_owned()),
        Ok(_) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} does not hold a node id (1-64 of a-z, 0-9, -)", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let host = hostname().unwrap_or_else(|| "node".into());
            let id = format!("{host}-{:08x}", rand::random::<u32>());
            std::fs::write(&path, format!("{id}\n"))?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

fn valid(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/etc/hostname").ok()?;
    let clean: String = name.trim().to_ascii_lowercase().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(40).collect();
    (!clean.is_empty()).then_some(clean)
}

/// This node's lease in the `nodes` table.
#[derive(Clone)]
pub struct Lease {
    pool: AnyPool,
    pub node: String,
    lease_ms: i64,
}

/// Runs taken over from a dead node.
#[derive(Debug)]
pub struct Takeover {
    pub dead: String,
    pub runs: Vec<String>,
}

impl Lease {
    pub fn new(pool: AnyPool, node: String, lease: std::time::Duration) -> Lease {
        Lease { pool, node, lease_ms: lease.as_millis() as i64 }
    }

    /// Takes (or takes again, after a restart) this node's lease. Blocks while another
    /// node is taking this one over, and then starts a new lease with no runs.
    pub async fn register(&self) -> Result<(), sqlx::Error> {
        let sql = format!(
            "INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, {DB_NOW_MS}, {DB_NOW_MS})
             ON CONFLICT(id) DO UPDATE SET started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at"
        );
        sqlx::query(&sql).bind(&self.node).execute(&self.pool).await.map(|_| ())
    }

    /// Renews the lease; false when it is gone (another node took this one over).
    pub async fn renew(&self) -> Result<bool, sqlx::Error> {
        let sql = format!("UPDATE nodes SET heartbeat_at = {DB_NOW_MS} WHERE id = $1");
        Ok(sqlx::query(&sql).bind(&self.node).execute(&self.pool).await?.rows_affected() == 1)
    }

    /// This node's unfinished runs, as stored.
    pub async fn own_unfinished(&self) -> Result<Vec<String>, sqlx::Error> {
        let sql = format!("SELECT id FROM workflows WHERE node = $1 AND state IN {UNFINISHED}");
        sqlx::query_scalar(&sql).bind(&self.node).fetch_all(&self.pool).await
    }

    /// Takes over the unfinished runs of every node whose lease expired: each run's
    /// `node` becomes this one and its topic gets a new epoch (the dead node's last
    /// events may never have reached the database), and the dead node's row is deleted
    /// (so it can write nothing more). A node another live node is taking over, or that
    /// is writing right now, is skipped this time.
    pub async fn take_over_expired(&self) -> Result<Vec<Takeover>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let sql = format!("SELECT id FROM nodes WHERE id <> $1 AND heartbeat_at < {DB_NOW_MS} - $2 ORDER BY id FOR UPDATE SKIP LOCKED");
        let dead: Vec<String> = sqlx::query_scalar(&sql).bind(&self.node).bind(self.lease_ms).fetch_all(&mut *tx).await?;
        let mut taken = Vec::new();
        for id in dead {
            let sql = format!("UPDATE workflows SET node = $1 WHERE node = $2 AND state IN {UNFINISHED} RETURNING id");
            let runs: Vec<String> = sqlx::query_scalar(&sql).bind(&self.node).bind(&id).fetch_all(&mut *tx).await?;
            let epoch = crate::hub::log::memory::new_epoch();
            for run in &runs {
                sqlx::query("UPDATE topics SET epoch = $1 WHERE name = $2").bind(&epoch).bind(format!("workflow:{run}")).execute(&mut *tx).await?;
            }
            // its runs claim slots again on their new node
            sqlx::query("DELETE FROM cluster_slots WHERE node = $1").bind(&id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM nodes WHERE id = $1").bind(&id).execute(&mut *tx).await?;
            taken.push(Takeover { dead: id, runs });
        }
        tx.commit().await?;
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_node_id_is_kept_and_a_bad_one_refused() {
        let dir = std::env::temp_dir().join(format!("sb-node-id-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("dir");
        let first = super::node_id(&dir).expect("made");
        assert_eq!(super::node_id(&dir).expect("read"), first);
        std::fs::write(dir.join("node-id"), "Not Valid!\n").expect("write");
        assert!(super::node_id(&dir).expect_err("refused").to_string().contains("node id"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
