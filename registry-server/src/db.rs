//! The registry's database: SQLite (one file in the data directory, WAL) or PostgreSQL, through
//! sqlx's `Any` driver and one set of migrations per backend.
//!
//! Queries are written once, with `$1`-style placeholders, which both backends accept. Writes go
//! through [`Db::begin_write`], which serialises writers inside this process (SQLite allows one
//! writer at a time; taking turns here turns "database is locked" into waiting).

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Transaction};
use tokio::sync::{Mutex, MutexGuard};

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, the single-machine default.
    Sqlite,
    /// PostgreSQL, for several registry and builder processes.
    Postgres,
}

impl Backend {
    /// The backend a connection (or a transaction on one) talks to.
    pub fn of(connection: &sqlx::AnyConnection) -> Self {
        if connection.backend_name().eq_ignore_ascii_case("postgresql") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names neither `sqlite:` nor `postgres:`.
    #[error("unsupported database URL `{0}` (use sqlite://PATH or postgres://…)")]
    UnsupportedUrl(String),
    /// Connecting or querying failed.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A connection pool with the schema applied.
#[derive(Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    writer: Mutex<()>,
}

/// A write transaction, holding this process's writer turn until it commits or drops.
pub struct WriteTx<'a> {
    /// The transaction.
    pub tx: Transaction<'static, sqlx::Any>,
    _turn: MutexGuard<'a, ()>,
}

impl WriteTx<'_> {
    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl Db {
    /// The SQLite URL of the database file in `data_dir`.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!("sqlite://{}?mode=rwc", data_dir.join("kiln.db").display())
    }

    /// Connects to `url` and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl(url.to_owned()));
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        use sqlx::Executor as _;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Self {
            pool,
            backend,
            writer: Mutex::new(()),
        })
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a write transaction once it is this writer's turn.
    pub async fn begin_write(&self) -> Result<WriteTx<'_>, sqlx::Error> {
        let turn = self.writer.lock().await;
        let tx = self.pool.begin().await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Today's date in UTC (YYYY-MM-DD).
pub fn today() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()[..10].to_owned()
}
