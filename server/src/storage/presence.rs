//! What each node knows of the agents it has seen (several nodes on PostgreSQL): one
//! row per agent and node, its `agent_status` as that node sees it and whether it is
//! connected there. Agents connect to whichever node their load balancer picks; a
//! stage that needs one connected elsewhere moves its run to that node
//! (engine::agent_moves), and every node lists every agent. Rows of a node whose lease
//! expired are ignored, and deleted when a node starts.

use super::nodes::DB_NOW_MS;
use app::protocol::AgentStatus;
use sqlx::AnyPool;

/// An agent as another node sees it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub node: String,
    pub connected: bool,
    pub status: AgentStatus,
}

#[derive(Clone)]
pub struct Presence {
    pool: AnyPool,
    pub node: String,
    lease_ms: i64,
}

impl Presence {
    pub fn new(pool: AnyPool, node: String, lease: std::time::Duration) -> Presence {
        Presence { pool, node, lease_ms: lease.as_millis() as i64 }
    }

    /// Forgets what this node said before it started again, and what nodes no
    /// longer in the cluster said.
    pub async fn clear(&self) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM agent_presence WHERE node = $1 OR node NOT IN (SELECT id FROM nodes)").bind(&self.node).execute(&self.pool).await.map(|_| ())
    }

    /// Stores how this node sees an agent now.
    pub async fn put(&self, status: &AgentStatus, connected: bool) -> Result<(), sqlx::Error> {
        let json = serde_json::to_string(status).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(
            "INSERT INTO agent_presence (name, node, connected, status, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT(name, node) DO UPDATE SET connected = excluded.connected, status = excluded.status, updated_at = excluded.updated_at",
        )
        .bind(&status.agent_name)
        .bind(&self.node)
        .bind(i64::from(connected))
        .bind(json)
        .bind(crate::hub::now_ms())
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Every agent as the other live nodes see it.
    pub async fn elsewhere(&self) -> Result<Vec<Seen>, sqlx::Error> {
        use sqlx::Row;
        let sql = format!(
            "SELECT p.node, p.connected, p.status FROM agent_presence p JOIN nodes n ON n.id = p.node
             WHERE p.node <> $1 AND n.heartbeat_at >= {DB_NOW_MS} - $2 ORDER BY p.name, p.node"
        );
        let rows = sqlx::query(&sql).bind(&self.node).bind(self.lease_ms).fetch_all(&self.pool).await?;
        let mut seen = Vec::with_capacity(rows.len());
        for r in rows {
            let status: String = r.try_get("status")?;
            // written by a node of another version, say: skipped, not fatal
            let Ok(status) = serde_json::from_str::<AgentStatus>(&status) else { continue };
            seen.push(Seen { node: r.try_get("node")?, connected: r.try_get::<i64, _>("connected")? != 0, status });
        }
        Ok(seen)
    }
}
