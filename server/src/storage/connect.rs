//! Which database: the embedded SQLite file in the data directory (the default, no
//! service), or a PostgreSQL server that several nodes share (`--database
//! postgres://…`). Both are reached through sqlx's Any driver with one set of SQL
//! (`$n` parameters, `ON CONFLICT`, no engine-only functions), and each is migrated
//! from its own folder of the same schema, version for version.

use super::{StorageError, SCHEMA_VERSION};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};
use std::path::{Path, PathBuf};
use std::time::Duration;

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// Settings every SQLite connection gets: WAL + NORMAL (a committed batch survives a
/// process crash), a wait rather than an error when another connection writes, and
/// enforced foreign keys.
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;";

/// A node frozen in the middle of a transaction (a VM stall, SIGSTOP) would hold its
/// locks, its lease row's among them, for as long as it is frozen, and no other node
/// could take its runs over: PostgreSQL ends such a session after 5 s.
const POSTGRES_SESSION: &str = "SET idle_in_transaction_session_timeout = 5000";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `switchboard.db` in this folder.
    DataDir(PathBuf),
    /// A PostgreSQL URL (`postgres://` or `postgresql://`).
    Server(String),
}

impl Location {
    /// What to name in messages: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::DataDir(dir) => dir.join(super::DB_FILE).display().to_string(),
            Location::Server(url) => crate::config::redacted(url),
        }
    }
}

/// Opens the pool; a database that cannot be reached is an error now, not later.
pub(super) async fn connect(location: &Location) -> Result<(AnyPool, Backend), StorageError> {
    sqlx::any::install_default_drivers();
    let open_err = |source| StorageError::Open { path: location.describe(), source };
    match location {
        Location::DataDir(dir) => {
            let pool = AnyPoolOptions::new()
                .max_connections(4)
                .after_connect(|conn, _| Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(|_| ()) }))
                .connect(&sqlite_url(&dir.join(super::DB_FILE)))
                .await
                .map_err(open_err)?;
            Ok((pool, Backend::Sqlite))
        }
        Location::Server(url) => {
            let pool = AnyPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(5))
                .after_connect(|conn, _| Box::pin(async move { conn.execute(POSTGRES_SESSION).await.map(|_| ()) }))
                .connect(url)
                .await
                .map_err(open_err)?;
            Ok((pool, Backend::Postgres))
        }
    }
}

/// Migrates forward; a database of a newer schema is refused, never migrated back.
pub(super) async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), StorageError> {
    let newest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations").fetch_optional(pool).await.ok().flatten();
    if let Some(found) = newest.filter(|v| *v > SCHEMA_VERSION) {
        return Err(StorageError::TooNew { found });
    }
    let migrator = match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    migrator.run(pool).await?;
    Ok(())
}

/// `sqlite://` URL of a file: the driver percent-decodes the path, so `%`, `?` and `#`
/// in a folder's name are encoded; `mode=rwc` creates the file on first run.
fn sqlite_url(path: &Path) -> String {
    let mut encoded = String::new();
    for c in path.display().to_string().chars() {
        match c {
            '%' => encoded.push_str("%25"),
            '?' => encoded.push_str("%3F"),
            '#' => encoded.push_str("%23"),
            c => encoded.push(c),
        }
    }
    format!("sqlite://{encoded}?mode=rwc")
}

/// `n` numbered parameters from `$first`: `$3, $4, $5`.
pub(super) fn marks(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

pub(super) type Row = AnyRow;

#[cfg(test)]
mod tests {
    #[test]
    fn odd_folder_names_survive_the_url() {
        assert_eq!(super::sqlite_url(std::path::Path::new("/d/a%b?c#d/x.db")), "sqlite:///d/a%25b%3Fc%23d/x.db?mode=rwc");
        assert_eq!(super::marks(2, 3), "$2, $3, $4");
    }
}
