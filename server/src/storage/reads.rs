//! Reads, on demand: a durable topic's position and ranges of its events, the runs an
//! unfinished start needs, one run, a page of runs, past durations for the ETA, and
//! whether a run was pruned.

use super::{StageRow, StoredRun, WorkflowRow};
use super::connect::{marks, Row};
use sqlx::{AnyPool, Row as _};

/// Where a page of runs continues: the last run it showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
}

/// Which runs a page shows.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub states: Vec<String>,
    pub pipeline: Option<String>,
}

#[derive(Clone)]
pub struct Reader {
    pub(super) pool: AnyPool,
}

const RUN_COLUMNS: &str = "id, name, pipeline, state, error, created_at, started_at, finished_at, executor, node";

fn workflow_row(w: &Row) -> Result<WorkflowRow, sqlx::Error> {
    Ok(WorkflowRow {
        id: w.try_get("id")?,
        name: w.try_get("name")?,
        pipeline: w.try_get("pipeline")?,
        state: w.try_get("state")?,
        error: w.try_get("error")?,
        created_at: w.try_get("created_at")?,
        started_at: w.try_get("started_at")?,
        finished_at: w.try_get("finished_at")?,
        executor: w.try_get("executor")?,
        node: w.try_get("node")?,
    })
}

fn stage_row(s: &Row) -> Result<StageRow, sqlx::Error> {
    Ok(StageRow {
        workflow_id: s.try_get("workflow_id")?,
        idx: s.try_get("idx")?,
        id: s.try_get("id")?,
        status: s.try_get("status")?,
        progress: s.try_get("progress")?,
        started_at: s.try_get("started_at")?,
        finished_at: s.try_get("finished_at")?,
        exit_code: s.try_get("exit_code")?,
        error: s.try_get("error")?,
        output_dropped_bytes: s.try_get("output_dropped_bytes")?,
        agent: s.try_get("agent")?,
        attempt: s.try_get("attempt")?,
        applied_seq: s.try_get("applied_seq")?,
    })
}

impl Reader {
    pub fn new(pool: AnyPool) -> Reader {
        Reader { pool }
    }

    /// A durable topic's epoch and last seq; None for a topic never used.
    pub async fn topic_position(&self, topic: &str) -> Result<Option<(String, u64)>, sqlx::Error> {
        let epoch: Option<String> =
            sqlx::query_scalar("SELECT epoch FROM topics WHERE name = $1").bind(topic).fetch_optional(&self.pool).await?;
        let Some(epoch) = epoch else { return Ok(None) };
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM events WHERE topic = $1").bind(topic).fetch_one(&self.pool).await?;
        Ok(Some((epoch, last.unwrap_or(0) as u64)))
    }

    /// The topic's position, storing `epoch` for it first if it has none. Several
    /// nodes may open one topic at once: each reads back the epoch that was stored.
    pub async fn topic_position_or_create(&self, topic: &str, epoch: &str) -> Result<(String, u64), sqlx::Error> {
        sqlx::query("INSERT INTO topics (name, epoch) VALUES ($1, $2) ON CONFLICT DO NOTHING").bind(topic).bind(epoch).execute(&self.pool).await?;
        self.topic_position(topic).await?.ok_or(sqlx::Error::RowNotFound)
    }

    /// Up to `limit` events of `topic` with seq in (`since`, `upto`], oldest first.
    pub async fn events(&self, topic: &str, since: u64, upto: u64, limit: usize) -> Result<Vec<(u64, String)>, sqlx::Error> {
        sqlx::query("SELECT seq, frame FROM events WHERE topic = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4")
            .bind(topic)
            .bind(since as i64)
            .bind(upto as i64)
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| Ok((r.try_get::<i64, _>("seq")? as u64, r.try_get("frame")?)))
            .collect()
    }


    /// The runs of `rows` with their stages, read in one query for all of them.
    async fn with_stages(&self, rows: Vec<Row>) -> Result<Vec<StoredRun>, sqlx::Error> {
        let mut runs: Vec<StoredRun> =
            rows.iter().map(|r| Ok(StoredRun { workflow: workflow_row(r)?, stages: Vec::new() })).collect::<Result<_, sqlx::Error>>()?;
        if runs.is_empty() {
            return Ok(runs);
        }
        let sql = format!(
            "SELECT workflow_id, idx, id, status, progress, started_at, finished_at, exit_code, error, output_dropped_bytes, agent, attempt, applied_seq
             FROM stages WHERE workflow_id IN ({}) ORDER BY workflow_id, idx",
            marks(1, runs.len())
        );
        let mut q = sqlx::query(&sql);
        for r in &runs {
            q = q.bind(&r.workflow.id);
        }
        let mut by_run: std::collections::HashMap<String, Vec<StageRow>> = std::collections::HashMap::new();
        for s in q.fetch_all(&self.pool).await? {
            let row = stage_row(&s)?;
            by_run.entry(row.workflow_id.clone()).or_default().push(row);
        }
        for r in &mut runs {
            r.stages = by_run.remove(&r.workflow.id).unwrap_or_default();
        }
        Ok(runs)
    }

    /// The positions (epoch, last seq) of many durable topics at once.
    pub async fn topic_positions(&self, topics: &[String]) -> Result<std::collections::HashMap<String, (String, u64)>, sqlx::Error> {
        let mut out = std::collections::HashMap::new();
        if topics.is_empty() {
            return Ok(out);
        }
        let marks = marks(1, topics.len());
        let epochs_sql = format!("SELECT name, epoch FROM topics WHERE name IN ({marks})");
        let mut q = sqlx::query(&epochs_sql);
        for t in topics {
            q = q.bind(t);
        }
        for r in q.fetch_all(&self.pool).await? {
            out.insert(r.try_get::<String, _>("name")?, (r.try_get::<String, _>("epoch")?, 0));
        }
        let seqs_sql = format!("SELECT topic, MAX(seq) AS last FROM events WHERE topic IN ({marks}) GROUP BY topic");
        let mut q = sqlx::query(&seqs_sql);
        for t in topics {
            q = q.bind(t);
        }
        for r in q.fetch_all(&self.pool).await? {
            let topic: String = r.try_get("topic")?;
            if let Some(p) = out.get_mut(&topic) {
                p.1 = r.try_get::<i64, _>("last")? as u64;
            }
        }
        Ok(out)
    }

    /// The runs a new process must take up again: those not finished, oldest first;
    /// with several nodes, only this `node`'s.
    pub async fn unfinished(&self, node: Option<&str>) -> Result<Vec<StoredRun>, sqlx::Error> {
        let mine = if node.is_some() { " AND node = $1" } else { "" };
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM workflows WHERE state IN ('pending', 'running', 'paused', 'waiting_confirmation'){mine} ORDER BY created_at, id"
        );
        let mut query = sqlx::query(&sql);
        if let Some(node) = node {
            query = query.bind(node);
        }
        let rows = query.fetch_all(&self.pool).await?;
        self.with_stages(rows).await
    }

    pub async fn run(&self, id: &str) -> Result<Option<StoredRun>, sqlx::Error> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM workflows WHERE id = $1");
        let rows = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?.into_iter().collect();
        Ok(self.with_stages(rows).await?.pop())
    }

    /// Up to `limit` runs, newest first, after `cursor`.
    pub async fn page(&self, filter: &ListFilter, cursor: Option<&Cursor>, limit: usize) -> Result<Vec<StoredRun>, sqlx::Error> {
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM workflows WHERE 1 = 1");
        let mut next = 1;
        if !filter.states.is_empty() {
            sql.push_str(&format!(" AND state IN ({})", marks(next, filter.states.len())));
            next += filter.states.len();
        }
        if filter.pipeline.is_some() {
            sql.push_str(&format!(" AND name = ${next}"));
            next += 1;
        }
        if cursor.is_some() {
            sql.push_str(&format!(" AND (created_at < ${next} OR (created_at = ${next} AND id < ${}))", next + 1));
            next += 2;
        }
        sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ${next}"));
        let mut q = sqlx::query(&sql);
        for s in &filter.states {
            q = q.bind(s);
        }
        if let Some(p) = &filter.pipeline {
            q = q.bind(p);
        }
        if let Some(c) = cursor {
            q = q.bind(c.created_at).bind(&c.id);
        }
        let rows = q.bind(limit as i64).fetch_all(&self.pool).await?;
        self.with_stages(rows).await
    }

    /// Per pipeline, the summed seconds and count of completed runs (for the ETA).
    pub async fn durations(&self) -> Result<Vec<(String, f64, u32)>, sqlx::Error> {
        sqlx::query(
            "SELECT name, CAST(SUM(finished_at - started_at) AS DOUBLE PRECISION) / 1000 AS secs, COUNT(*) AS n FROM workflows
             WHERE state = 'completed' AND started_at IS NOT NULL AND finished_at IS NOT NULL GROUP BY name",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get::<f64, _>("secs")?, r.try_get::<i64, _>("n")? as u32)))
        .collect()
    }

    /// Whether a run id was ever used (stored, or pruned).
    pub async fn id_taken(&self, id: &str) -> Result<bool, sqlx::Error> {
        let n: i64 = sqlx::query_scalar("SELECT (SELECT COUNT(*) FROM workflows WHERE id = $1) + (SELECT COUNT(*) FROM pruned WHERE id = $1)")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// When a run was pruned, if it was.
    pub async fn pruned_at(&self, id: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT pruned_at FROM pruned WHERE id = $1").bind(id).fetch_optional(&self.pool).await
    }

    /// How many runs are stored.
    pub async fn run_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM workflows").fetch_one(&self.pool).await
    }
}
