//! Controls relayed between nodes on PostgreSQL. A node that gets a control for a run
//! another node owns stores it in `relayed_controls` (no size limit, unlike a NOTIFY
//! payload) and wakes that node with `NOTIFY switchboard_controls, '<node>'` in the same
//! transaction; the owner takes its rows (deleting them, so each is acted on once),
//! acts, and answers with `NOTIFY switchboard_replies, '<json>'`. Notifications missed
//! while a listener reconnects are made up for by polling (`take`) once a second; a
//! sender whose answer does not come gives up after a timeout.

use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

pub const CONTROLS: &str = "switchboard_controls";
pub const REPLIES: &str = "switchboard_replies";
/// Where each write batch tells how far its topics got (hub::follow).
pub const EVENTS: &str = "switchboard_events";
/// Not a channel: what the listener says once it listens (again), so that what was
/// announced meanwhile is read (hub::follow_all).
pub const LISTENING: &str = "";
/// Milliseconds since the epoch on the database's clock (nodes' clocks may differ).
const DB_NOW_MS: &str = super::nodes::DB_NOW_MS;
/// A relayed control older than this is dropped unread: its sender gave up long ago.
const STALE_MS: i64 = 60_000;
/// `pg_notify` returns `void`, a type the Any driver cannot read: select a constant.
const NOTIFY: &str = "SELECT 1 AS sent FROM (SELECT pg_notify($1, $2)) AS n";
/// The longest error message carried back (a NOTIFY payload is under 8,000 bytes).
const MAX_MESSAGE: usize = 2_000;

/// One control waiting for its node.
#[derive(Debug)]
pub struct Relayed {
    pub id: String,
    pub reply_to: String,
    pub run: String,
    pub op: String,
    pub created_at: i64,
}

/// An answer: None when the control was done, else its error code and message.
#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub to: String,
    pub id: String,
    pub error: Option<(app::protocol::ErrorCode, String)>,
}

#[derive(Clone)]
pub struct Relay {
    pool: AnyPool,
    pub node: String,
}

impl Relay {
    pub fn new(pool: AnyPool, node: String) -> Relay {
        Relay { pool, node }
    }

    /// Stores request `id`, `op` on `run`, for node `to` and wakes it.
    pub async fn send(&self, id: &str, to: &str, run: &str, op: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let sql = format!("INSERT INTO relayed_controls (id, node, reply_to, run, op, created_at) VALUES ($1, $2, $3, $4, $5, {DB_NOW_MS})");
        sqlx::query(&sql).bind(id).bind(to).bind(&self.node).bind(run).bind(op).execute(&mut *tx).await?;
        sqlx::query(NOTIFY).bind(CONTROLS).bind(to).execute(&mut *tx).await?;
        tx.commit().await
    }

    /// Takes this node's waiting controls, oldest first, and drops stale ones.
    pub async fn take(&self) -> Result<Vec<Relayed>, sqlx::Error> {
        use sqlx::Row;
        let sql = format!("DELETE FROM relayed_controls WHERE node = $1 RETURNING id, reply_to, run, op, created_at, created_at < {DB_NOW_MS} - $2 AS stale");
        let rows = sqlx::query(&sql).bind(&self.node).bind(STALE_MS).fetch_all(&self.pool).await?;
        let mut taken = Vec::new();
        for r in rows {
            let created_at: i64 = r.try_get("created_at")?;
            if r.try_get::<bool, _>("stale")? {
                continue;
            }
            taken.push(Relayed { id: r.try_get("id")?, reply_to: r.try_get("reply_to")?, run: r.try_get("run")?, op: r.try_get("op")?, created_at });
        }
        taken.sort_by_key(|r| r.created_at);
        // a node that died leaves its controls behind: whoever polls sweeps them
        let sql = format!("DELETE FROM relayed_controls WHERE created_at < {DB_NOW_MS} - $1");
        sqlx::query(&sql).bind(STALE_MS).execute(&self.pool).await?;
        Ok(taken)
    }

    /// Answers `to` about its request `id`.
    pub async fn reply(&self, to: &str, id: &str, error: Option<(app::protocol::ErrorCode, String)>) -> Result<(), sqlx::Error> {
        let error = error.map(|(code, mut message)| {
            if message.len() > MAX_MESSAGE {
                let mut end = MAX_MESSAGE;
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                message.truncate(end);
            }
            (code, message)
        });
        let reply = Reply { to: to.to_owned(), id: id.to_owned(), error };
        let payload = serde_json::to_string(&reply).unwrap_or_default();
        sqlx::query(NOTIFY).bind(REPLIES).bind(payload).execute(&self.pool).await.map(|_| ())
    }
}
