//! Storage (sqlx; SQLite in WAL by default, or PostgreSQL: `connect`): runs, their
//! stages, the durable event log of every `workflow:*` topic and each topic's epoch. Writes go through one writer task
//! (`writer`) that batches what is queued into a transaction, retries a failed one
//! until it succeeds, and has a bounded queue: a producer faster than the disk waits.
//! Reads (`reads`) are on demand: at start-up only what unfinished runs need, then
//! snapshots, pages of runs and ranges of events as they are asked for.

pub mod claims;
pub mod connect;
pub mod handoff;
pub mod nodes;
pub mod presence;
pub mod prune;
pub mod relay;
pub mod slots;
pub mod reads;
pub mod writer;

pub use connect::{Backend, Location};
pub use reads::Reader;
pub use writer::{Health, Store, Write, WritePermit};

use serde::{Deserialize, Serialize};
use sqlx::AnyPool;
use tokio_util::sync::CancellationToken;

pub const DB_FILE: &str = "switchboard.db";
/// The `meta` key that says whether the last process ended cleanly ("1") or not.
const CLEAN_SHUTDOWN: &str = "clean_shutdown";
/// The newest schema this build knows; a database from a newer one is refused.
const SCHEMA_VERSION: i64 = 8;

async fn set_meta(pool: &AnyPool, key: &str, value: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        .bind(key)
        .bind(value)
        .execute(pool)
        .await
        .map(|_| ())
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot open the database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the database was written by a newer Switchboard (schema {found}, this one knows up to {SCHEMA_VERSION}): refusing to use it")]
    TooNew { found: i64 },
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowRow {
    pub id: String,
    pub name: String,
    pub pipeline: String,
    pub state: String,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub executor: Option<String>,
    /// The node that runs it, with several nodes on PostgreSQL (storage::nodes).
    pub node: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRow {
    pub workflow_id: String,
    pub idx: i64,
    pub id: String,
    pub status: String,
    pub progress: f64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub output_dropped_bytes: i64,
    pub agent: Option<String>,
    pub attempt: i64,
    pub applied_seq: i64,
}

/// A run as stored: its row and its stages' rows.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub workflow: WorkflowRow,
    pub stages: Vec<StageRow>,
}

/// How the writer queue and retention are set.
#[derive(Debug, Clone, Copy)]
pub struct StorageLimits {
    /// Writes waiting for the disk before producers wait.
    pub queue: usize,
}

pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// This node's id when several share the database (PostgreSQL); None on SQLite.
    node: Option<String>,
}

impl Database {
    /// Opens the database (creating the SQLite file on first run) and migrates it
    /// forward; a database of a newer schema is refused, never migrated backwards.
    /// `node`: this node's id, when it is one of several (PostgreSQL).
    pub async fn open(location: &Location, node: Option<String>) -> Result<Database, StorageError> {
        let (pool, backend) = connect::connect(location).await?;
        connect::migrate(&pool, backend).await?;
        Ok(Database { pool, backend, node })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// This node's lease (several nodes only), `len` long.
    pub fn lease(&self, len: std::time::Duration) -> Option<nodes::Lease> {
        self.node.clone().map(|node| nodes::Lease::new(self.pool.clone(), node, len))
    }

    /// What this node races other nodes for (several nodes only).
    pub fn claims(&self) -> Option<claims::Claims> {
        self.node.clone().map(|node| claims::Claims::new(self.pool.clone(), node))
    }

    /// The cluster-wide concurrency limit, `limit` runs (several nodes only).
    pub fn slots(&self, limit: u32) -> Option<slots::Slots> {
        self.node.clone().map(|node| slots::Slots::new(self.pool.clone(), node, limit))
    }

    /// Queued runs handed between nodes (several nodes only; `lease` as for `lease`).
    pub fn handoff(&self, lease: std::time::Duration) -> Option<handoff::Handoff> {
        self.node.clone().map(|node| handoff::Handoff::new(self.pool.clone(), node, lease))
    }

    /// What this node knows of agents, shared with the others (several nodes only).
    pub fn presence(&self, lease: std::time::Duration) -> Option<presence::Presence> {
        self.node.clone().map(|node| presence::Presence::new(self.pool.clone(), node, lease))
    }

    /// Controls relayed to and from this node (several nodes only).
    pub fn relay(&self) -> Option<relay::Relay> {
        self.node.clone().map(|node| relay::Relay::new(self.pool.clone(), node))
    }

    /// The `meta` key of this node's clean-shutdown marker.
    fn clean_key(node: Option<&str>) -> String {
        match node {
            Some(node) => format!("{CLEAN_SHUTDOWN}:{node}"),
            None => CLEAN_SHUTDOWN.to_owned(),
        }
    }

    /// Whether the process that used the database last shut down cleanly (its writer
    /// stored everything), and marks this one as not yet: a crash leaves it so. After
    /// a crash every durable topic gets a new epoch: the last events its clients saw
    /// may never have reached the disk, so the seqs after the stored ones would name
    /// other events. A database that never recorded either counts as clean only when
    /// it holds no run. With several nodes, all this is per node: its own marker, its
    /// own runs' topics; and its lease is taken first (storage::nodes).
    pub async fn begin_session(&self) -> Result<bool, StorageError> {
        if let Some(lease) = self.lease(std::time::Duration::ZERO) {
            lease.register().await?;
        }
        let key = Database::clean_key(self.node());
        let marker: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1").bind(&key).fetch_optional(&self.pool).await?;
        let clean = match (marker.as_deref(), self.node()) {
            (Some(v), _) => v == "1",
            (None, None) => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM workflows").fetch_one(&self.pool).await? == 0,
            (None, Some(node)) => {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM workflows WHERE node = $1").bind(node).fetch_one(&self.pool).await? == 0
            }
        };
        if !clean {
            // one new epoch for all: what matters is that each differs from its last
            let epoch = crate::hub::log::memory::new_epoch();
            match self.node() {
                None => sqlx::query("UPDATE topics SET epoch = $1").bind(epoch).execute(&self.pool).await?,
                Some(node) => {
                    sqlx::query("UPDATE topics SET epoch = $1 WHERE name IN (SELECT 'workflow:' || id FROM workflows WHERE node = $2)")
                        .bind(epoch)
                        .bind(node)
                        .execute(&self.pool)
                        .await?
                }
            };
        }
        set_meta(&self.pool, &key, "0").await?;
        Ok(clean)
    }

    pub fn reader(&self) -> Reader {
        Reader::new(self.pool.clone())
    }

    /// Starts the writer task; it runs until `stop` is cancelled, then writes what is
    /// still queued, and records a clean shutdown only if every write of this process
    /// reached the disk.
    pub fn start_writer(&self, limits: StorageLimits, stop: CancellationToken) -> (Store, tokio::task::JoinHandle<()>) {
        writer::start(self.pool.clone(), self.backend, self.node.clone(), limits, stop)
    }
}
