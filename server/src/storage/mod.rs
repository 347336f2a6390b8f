//! SQLite storage (sqlx, WAL): runs, their stages, and the durable event log of every
//! `workflow:*` topic. Writes go through one writer task that batches whatever is
//! queued into a transaction, so neither the hub nor the engine ever waits on disk;
//! reads happen once, at start-up, to restore what the last process left.

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const DB_FILE: &str = "switchboard.db";
/// The `meta` key that says whether the last process ended cleanly ("1") or not.
const CLEAN_SHUTDOWN: &str = "clean_shutdown";

async fn set_meta(pool: &SqlitePool, key: &str, value: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
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
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// One write, queued in order.
#[derive(Debug)]
pub enum Write {
    Workflow(WorkflowRow),
    Stage(StageRow),
    Event { topic: String, seq: u64, frame: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowRow {
    pub id: String,
    pub name: String,
    pub pipeline: String,
    pub state: String,
    pub error: Option<String>,
    pub epoch: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
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
}

/// A run as the last process left it, with its topic's event log.
#[derive(Debug)]
pub struct StoredRun {
    pub workflow: WorkflowRow,
    pub stages: Vec<StageRow>,
    pub events: Vec<(u64, String)>,
}

/// The queue to the writer task; cheap to clone, never blocks.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::UnboundedSender<Write>,
}

impl Store {
    pub fn write(&self, w: Write) {
        // the writer lives as long as the server; after it ends there is nothing to save
        let _ = self.tx.send(w);
    }
}

pub struct Database {
    pool: SqlitePool,
}

impl Database {
    /// Opens (creating on first run) `data_dir/switchboard.db` and migrates it.
    pub async fn open(data_dir: &Path) -> Result<Database, StorageError> {
        let path = data_dir.join(DB_FILE);
        let open_err = |source| StorageError::Open { path: path.display().to_string(), source };
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(open_err)?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a committed batch survives a process crash
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(2).connect_with(options).await.map_err(open_err)?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Database { pool })
    }

    /// Whether the process that used the database last shut down cleanly (its writer
    /// flushed everything), and marks this one as not yet: a crash leaves it so. A
    /// database that has never recorded either counts as clean only when it holds no run.
    pub async fn begin_session(&self) -> Result<bool, StorageError> {
        let marker: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(CLEAN_SHUTDOWN)
            .fetch_optional(&self.pool)
            .await?;
        let clean = match marker.as_deref() {
            Some(v) => v == "1",
            None => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM workflows").fetch_one(&self.pool).await? == 0,
        };
        set_meta(&self.pool, CLEAN_SHUTDOWN, "0").await?;
        Ok(clean)
    }

    /// Every stored run, oldest first, with its stages and events.
    pub async fn load(&self) -> Result<Vec<StoredRun>, StorageError> {
        let workflows = sqlx::query(
            "SELECT id, name, pipeline, state, error, epoch, created_at, started_at, finished_at FROM workflows ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut runs = Vec::with_capacity(workflows.len());
        for w in workflows {
            let workflow = WorkflowRow {
                id: w.try_get("id")?,
                name: w.try_get("name")?,
                pipeline: w.try_get("pipeline")?,
                state: w.try_get("state")?,
                error: w.try_get("error")?,
                epoch: w.try_get("epoch")?,
                created_at: w.try_get("created_at")?,
                started_at: w.try_get("started_at")?,
                finished_at: w.try_get("finished_at")?,
            };
            let stages = sqlx::query(
                "SELECT idx, id, status, progress, started_at, finished_at, exit_code, error FROM stages WHERE workflow_id = ? ORDER BY idx",
            )
            .bind(&workflow.id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|s| {
                Ok(StageRow {
                    workflow_id: workflow.id.clone(),
                    idx: s.try_get("idx")?,
                    id: s.try_get("id")?,
                    status: s.try_get("status")?,
                    progress: s.try_get("progress")?,
                    started_at: s.try_get("started_at")?,
                    finished_at: s.try_get("finished_at")?,
                    exit_code: s.try_get("exit_code")?,
                    error: s.try_get("error")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let events = sqlx::query("SELECT seq, frame FROM events WHERE topic = ? ORDER BY seq")
                .bind(format!("workflow:{}", workflow.id))
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|e| Ok((e.try_get::<i64, _>("seq")? as u64, e.try_get("frame")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            runs.push(StoredRun { workflow, stages, events });
        }
        Ok(runs)
    }

    /// Starts the writer task. It runs until `stop` is cancelled, then writes what is
    /// still queued and closes the database.
    pub fn start_writer(self, stop: CancellationToken) -> (Store, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_loop(self.pool, rx, stop));
        (Store { tx }, task)
    }
}

async fn write_loop(pool: SqlitePool, mut rx: mpsc::UnboundedReceiver<Write>, stop: CancellationToken) {
    let mut batch = Vec::new();
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, 512) => n,
            _ = stop.cancelled() => {
                while rx.try_recv().map(|w| batch.push(w)).is_ok() {}
                0
            }
        };
        if !batch.is_empty() {
            if let Err(e) = write_batch(&pool, &batch).await {
                tracing::error!(error = %e, writes = batch.len(), "cannot write to the database");
            }
            batch.clear();
        }
        if n == 0 {
            break;
        }
    }
    // everything queued is on disk: the next start may keep every topic's epoch
    if let Err(e) = set_meta(&pool, CLEAN_SHUTDOWN, "1").await {
        tracing::error!(error = %e, "cannot record the clean shutdown");
    }
    pool.close().await;
}

async fn write_batch(pool: &SqlitePool, batch: &[Write]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for w in batch {
        match w {
            Write::Workflow(r) => {
                sqlx::query(
                    "INSERT INTO workflows (id, name, pipeline, state, error, epoch, created_at, started_at, finished_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT(id) DO UPDATE SET state = excluded.state, error = excluded.error, epoch = excluded.epoch,
                       started_at = excluded.started_at, finished_at = excluded.finished_at",
                )
                .bind(&r.id)
                .bind(&r.name)
                .bind(&r.pipeline)
                .bind(&r.state)
                .bind(&r.error)
                .bind(&r.epoch)
                .bind(r.created_at)
                .bind(r.started_at)
                .bind(r.finished_at)
                .execute(&mut *tx)
                .await?;
            }
            Write::Stage(r) => {
                sqlx::query(
                    "INSERT INTO stages (workflow_id, idx, id, status, progress, started_at, finished_at, exit_code, error)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT(workflow_id, idx) DO UPDATE SET status = excluded.status, progress = excluded.progress,
                       started_at = excluded.started_at, finished_at = excluded.finished_at,
                       exit_code = excluded.exit_code, error = excluded.error",
                )
                .bind(&r.workflow_id)
                .bind(r.idx)
                .bind(&r.id)
                .bind(&r.status)
                .bind(r.progress)
                .bind(r.started_at)
                .bind(r.finished_at)
                .bind(r.exit_code)
                .bind(&r.error)
                .execute(&mut *tx)
                .await?;
            }
            Write::Event { topic, seq, frame } => {
                sqlx::query("INSERT OR IGNORE INTO events (topic, seq, frame) VALUES (?, ?, ?)")
                    .bind(topic)
                    .bind(*seq as i64)
                    .bind(frame)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    tx.commit().await
}
