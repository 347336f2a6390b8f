//! The one writer: whatever is queued goes to the database in one transaction. Its
//! queue is bounded by permits: a producer takes one before queueing (waiting while
//! the queue is full: the disk is slower than the producers), and the writer gives it
//! back once the write is committed. A failed transaction is retried, with backoff,
//! until it succeeds: nothing queued is dropped. Failures are counted, the server's
//! health says `degraded` while they last, and a process that had any never records a
//! clean shutdown, so the next start renews every durable topic's epoch.

use super::{set_meta, Backend, StageRow, StorageLimits, WorkflowRow};
use sqlx::AnyPool;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Writes queued at once, at most, into one transaction.
const BATCH: usize = 512;
/// Backoff between retries of a failed transaction: from the first to the longest.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Attempts still made at shutdown before giving up (nothing is marked clean then).
const SHUTDOWN_ATTEMPTS: u32 = 5;

/// One write.
#[derive(Debug)]
pub enum Write {
    Workflow(WorkflowRow),
    Stage(StageRow),
    /// A durable topic's event; `committed` is raised to `seq` once it is on disk.
    Event { topic: String, seq: u64, frame: String, committed: Arc<AtomicU64> },
    /// A durable topic's epoch, the first time the topic is used.
    Topic { name: String, epoch: String },
    /// The last report of its agent a stage applied.
    AppliedSeq { workflow_id: String, stage: String, attempt: i64, seq: i64 },
}

/// A place in the writer's queue.
pub struct WritePermit(#[allow(dead_code)] OwnedSemaphorePermit);

struct Queued {
    write: Write,
    _permit: WritePermit,
}

/// What the writer has been through, for `/healthz` and `/metrics`.
#[derive(Default)]
pub struct Health {
    failures: AtomicU64,
    committed: AtomicU64,
    degraded: AtomicBool,
    ever_failed: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Woken after each transaction: whoever waits for a write to be on disk looks again.
    commits: tokio::sync::Notify,
}

impl Health {
    /// Failed transactions since start (each retried).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Writes committed since start.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// Resolves after the next transaction (create it before looking at `committed`).
    pub fn next_commit(&self) -> tokio::sync::futures::Notified<'_> {
        self.commits.notified()
    }

    /// The error of the failing write, while writes fail.
    pub fn degraded(&self) -> Option<String> {
        if !self.degraded.load(Ordering::Relaxed) {
            return None;
        }
        Some(self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default())
    }

    fn failed(&self, error: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.ever_failed.store(true, Ordering::Relaxed);
        self.degraded.store(true, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }
}

/// The queue to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::UnboundedSender<Queued>,
    permits: Arc<Semaphore>,
    health: Arc<Health>,
    /// Writes queued since start: a caller that remembers the number its write got can
    /// tell when it is committed (`health.committed()` reaches it).
    queued: Arc<AtomicU64>,
}

impl Store {
    /// A place in the queue now, if there is one.
    pub fn try_reserve(&self) -> Option<WritePermit> {
        self.permits.clone().try_acquire_owned().ok().map(WritePermit)
    }

    /// A place in the queue, waiting for one; None once the writer has stopped.
    pub async fn reserve(&self) -> Option<WritePermit> {
        self.permits.clone().acquire_owned().await.ok().map(WritePermit)
    }

    /// Queues a write in a place already held; returns its number.
    pub fn write_with(&self, permit: WritePermit, write: Write) -> u64 {
        let n = self.queued.fetch_add(1, Ordering::AcqRel) + 1;
        // the writer lives as long as the server; after it ends there is nothing to save
        let _ = self.tx.send(Queued { write, _permit: permit });
        n
    }

    /// Queues a write, waiting while the queue is full; returns its number.
    pub async fn write(&self, write: Write) -> u64 {
        match self.reserve().await {
            Some(permit) => self.write_with(permit, write),
            None => 0,
        }
    }

    /// Waits, at most `within`, until every write queued so far is committed; false
    /// when they are not by then.
    pub async fn settled(&self, within: std::time::Duration) -> bool {
        let n = self.queued.load(Ordering::Acquire);
        let all_in = async {
            loop {
                // created before the look, so a commit in between is not missed
                let next = self.health.next_commit();
                if self.health.committed() >= n {
                    return;
                }
                next.await;
            }
        };
        tokio::time::timeout(within, all_in).await.is_ok()
    }

    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Whether every write queued up to number `n` is on disk.
    pub fn is_committed(&self, n: u64) -> bool {
        self.health.committed() >= n
    }
}

/// Where the writer writes, and as which node (several nodes: storage::nodes).
struct Target {
    pool: AnyPool,
    backend: Backend,
    node: Option<String>,
}

pub fn start(pool: AnyPool, backend: Backend, node: Option<String>, limits: StorageLimits, stop: CancellationToken) -> (Store, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let health = Arc::new(Health::default());
    let store = Store { tx, permits: Arc::new(Semaphore::new(limits.queue.max(1))), health: health.clone(), queued: Arc::default() };
    let permits = store.permits.clone();
    let task = tokio::spawn(async move {
        write_loop(Target { pool, backend, node }, rx, stop, health).await;
        permits.close();
    });
    (store, task)
}

async fn write_loop(target: Target, mut rx: mpsc::UnboundedReceiver<Queued>, stop: CancellationToken, health: Arc<Health>) {
    let mut batch = Vec::new();
    let mut all_written = true;
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            _ = stop.cancelled() => {
                while let Ok(q) = rx.try_recv() {
                    batch.push(q);
                }
                0
            }
        };
        if !batch.is_empty() {
            all_written &= commit(&target, &batch, &health, &stop).await;
            health.committed.fetch_add(batch.len() as u64, Ordering::AcqRel);
            health.commits.notify_waiters();
            // dropping the batch gives the producers their places back
            batch.clear();
        }
        if n == 0 {
            break;
        }
    }
    if all_written && !health.ever_failed.load(Ordering::Relaxed) {
        // everything queued is on disk: the next start may keep every topic's epoch
        if let Err(e) = set_meta(&target.pool, &super::Database::clean_key(target.node.as_deref()), "1").await {
            tracing::error!(error = %e, "cannot record the clean shutdown");
        }
    } else {
        tracing::warn!("some writes failed during this run: the next start renews every run's epoch");
    }
    target.pool.close().await;
}

/// Writes the batch, retrying until it succeeds (or, once stopping, a few times more).
async fn commit(target: &Target, batch: &[Queued], health: &Health, stop: &CancellationToken) -> bool {
    let mut wait = RETRY_FIRST;
    let mut attempts_after_stop = 0;
    loop {
        match write_batch(target, batch).await {
            Ok(()) => {
                for q in batch {
                    if let Write::Event { seq, committed, .. } = &q.write {
                        committed.fetch_max(*seq, Ordering::AcqRel);
                    }
                }
                if health.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!(failures = health.failures(), "the database takes writes again");
                }
                return true;
            }
            Err(e) => {
                tracing::error!(error = %e, writes = batch.len(), retry_in_ms = wait.as_millis() as u64, "cannot write to the database; retrying");
                health.failed(e.to_string());
            }
        }
        if stop.is_cancelled() {
            attempts_after_stop += 1;
            if attempts_after_stop >= SHUTDOWN_ATTEMPTS {
                tracing::error!(writes = batch.len(), "shutting down with writes that never reached the database");
                return false;
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// One transaction on a connection of its own, rolled back explicitly when anything in
/// it fails (a full disk fails a statement or the commit itself): a failed transaction
/// left open would hold the database's write lock and lock out the retry. With several
/// nodes, the batch first share-locks this node's lease row: gone (another node took
/// this one's runs over), the batch writes nothing (the fencing of storage::nodes).
async fn write_batch(target: &Target, batch: &[Queued]) -> Result<(), sqlx::Error> {
    let mut conn = target.pool.acquire().await?;
    // SQLite: take the write lock now, not at the first write (no deadlock on upgrade)
    let begin = if target.backend == Backend::Sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
    sqlx::query(begin).execute(&mut *conn).await?;
    let done = match fence(&mut conn, target.node.as_deref()).await {
        Ok(()) => apply(&mut conn, batch, target.node.as_deref()).await,
        Err(e) => Err(e),
    };
    let done = match done {
        Ok(()) if target.node.is_some() => announce(&mut conn, batch).await,
        other => other,
    };
    let done = match done {
        Ok(()) => sqlx::query("COMMIT").execute(&mut *conn).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if done.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    done
}

async fn fence(tx: &mut sqlx::pool::PoolConnection<sqlx::Any>, node: Option<&str>) -> Result<(), sqlx::Error> {
    let Some(node) = node else { return Ok(()) };
    let held: Option<String> = sqlx::query_scalar("SELECT id FROM nodes WHERE id = $1 FOR SHARE").bind(node).fetch_optional(&mut **tx).await?;
    match held {
        Some(_) => Ok(()),
        None => Err(sqlx::Error::Protocol(format!("node {node:?} no longer holds its lease: another node took its runs over"))),
    }
}

/// Several nodes: tells every node, at commit, how far each topic of the batch got
/// (hub::follow), `"<topic> <epoch> <seq>"` on `switchboard_events`.
async fn announce(tx: &mut sqlx::pool::PoolConnection<sqlx::Any>, batch: &[Queued]) -> Result<(), sqlx::Error> {
    let mut last: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for q in batch {
        if let Write::Event { topic, seq, .. } = &q.write {
            let at = last.entry(topic.as_str()).or_default();
            *at = (*at).max(*seq);
        }
    }
    for (topic, seq) in last {
        sqlx::query("SELECT 1 AS sent FROM (SELECT pg_notify($1, name || ' ' || epoch || ' ' || $2) FROM topics WHERE name = $3) AS n")
            .bind(super::relay::EVENTS)
            .bind(seq.to_string())
            .bind(topic)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A run's row as stored, `$1` to `$10` (`ON CONFLICT` to follow).
macro_rules! workflow_insert {
    () => {
        "INSERT INTO workflows (id, name, pipeline, state, error, epoch, created_at, started_at, finished_at, executor, node)
         VALUES ($1, $2, $3, $4, $5, '', $6, $7, $8, $9, $10)"
    };
}
pub(super) use workflow_insert;

/// Binds `r` (and the node that runs it) to a `workflow_insert!` statement.
pub(super) fn bind_workflow<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    r: &'q WorkflowRow,
    node: Option<&'q str>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.pipeline)
        .bind(&r.state)
        .bind(&r.error)
        .bind(r.created_at)
        .bind(r.started_at)
        .bind(r.finished_at)
        .bind(&r.executor)
        .bind(node)
}

async fn apply(tx: &mut sqlx::pool::PoolConnection<sqlx::Any>, batch: &[Queued], node: Option<&str>) -> Result<(), sqlx::Error> {
    for q in batch {
        match &q.write {
            Write::Workflow(r) => {
                const UPSERT: &str = concat!(
                    workflow_insert!(),
                    " ON CONFLICT(id) DO UPDATE SET state = excluded.state, error = excluded.error,
                       started_at = excluded.started_at, finished_at = excluded.finished_at, node = excluded.node"
                );
                bind_workflow(sqlx::query(UPSERT), r, node).execute(&mut **tx).await?;
            }
            Write::Stage(r) => {
                sqlx::query(
                    "INSERT INTO stages (workflow_id, idx, id, status, progress, started_at, finished_at, exit_code, error, output_dropped_bytes, agent, attempt, applied_seq)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                     ON CONFLICT(workflow_id, idx) DO UPDATE SET status = excluded.status, progress = excluded.progress,
                       started_at = excluded.started_at, finished_at = excluded.finished_at,
                       exit_code = excluded.exit_code, error = excluded.error,
                       output_dropped_bytes = excluded.output_dropped_bytes, agent = excluded.agent,
                       attempt = excluded.attempt,
                       applied_seq = CASE WHEN stages.attempt = excluded.attempt AND stages.applied_seq > excluded.applied_seq
                         THEN stages.applied_seq ELSE excluded.applied_seq END",
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
                .bind(r.output_dropped_bytes)
                .bind(&r.agent)
                .bind(r.attempt)
                .bind(r.applied_seq)
                .execute(&mut **tx)
                .await?;
            }
            Write::Event { topic, seq, frame, .. } => {
                sqlx::query("INSERT INTO events (topic, seq, frame) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(topic)
                    .bind(*seq as i64)
                    .bind(frame)
                    .execute(&mut **tx)
                    .await?;
            }
            Write::AppliedSeq { workflow_id, stage, attempt, seq } => {
                sqlx::query("UPDATE stages SET applied_seq = $1 WHERE workflow_id = $2 AND id = $3 AND attempt = $4 AND applied_seq < $1")
                    .bind(seq)
                    .bind(workflow_id)
                    .bind(stage)
                    .bind(attempt)
                    .execute(&mut **tx)
                    .await?;
            }
            Write::Topic { name, epoch } => {
                sqlx::query("INSERT INTO topics (name, epoch) VALUES ($1, $2) ON CONFLICT DO NOTHING").bind(name).bind(epoch).execute(&mut **tx).await?;
            }
        }
    }
    Ok(())
}
