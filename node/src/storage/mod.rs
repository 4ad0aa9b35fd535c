//! Storage: diesel over SQLite (embedded default) and PostgreSQL (production),
//! one schema and one codebase for both.
//!
//! The backend is chosen from the database URL. Connections come from an r2d2
//! pool; blocking diesel work runs on tokio's blocking threads through
//! [`Database::run`], never on the async executor. Migrations are embedded per
//! backend and applied when the database is opened.
//!
//! Not for: queries about tracking-and-tracing data (those are in `data`).

mod backend_macro;
mod checkpointer;
mod connection;
mod direct;
pub mod migrations;
pub mod schema;
mod size;
pub mod testing;
mod tx;
mod url;
mod writer;
pub use writer::WriterCounts;

pub use connection::{DbConnection, Manager};
pub use direct::Direct;
pub use size::{StorageSize, bytes};
pub use tx::write_transaction;
pub use url::DatabaseUrl;

use crate::config::DatabaseSettings;
use std::time::Duration;

/// Which database engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (one file under the data directory).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL names no supported backend or is malformed.
    #[error("database URL {url:?}: {message}")]
    Url {
        /// The URL (password removed).
        url: String,
        /// What is wrong.
        message: String,
    },
    /// No connection could be made or taken from the pool.
    #[error("cannot connect to the database at {url}: {message}")]
    Connect {
        /// The URL (password removed).
        url: String,
        /// Why.
        message: String,
    },
    /// Applying or reverting migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    /// A blocking task panicked or was cancelled.
    #[error("database task did not complete: {0}")]
    Task(String),
}

/// A pooled connection.
pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// An open database: a connection pool plus what kind of database it is.
#[derive(Clone)]
pub struct Database {
    pool: r2d2::Pool<Manager>,
    url: DatabaseUrl,
    /// SQLite's group-commit writer thread (`None` for PostgreSQL).
    writer: Option<std::sync::Arc<writer::Writer>>,
    /// SQLite's WAL checkpoint thread (`None` for PostgreSQL).
    _checkpointer: Option<std::sync::Arc<checkpointer::Checkpointer>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("url", &self.url.redacted())
            .finish()
    }
}

impl Database {
    /// Opens (creating if needed) the database, applies pending migrations and
    /// returns a pool over it.
    pub fn open(url: &DatabaseUrl, settings: &DatabaseSettings) -> Result<Database, StorageError> {
        let manager = Manager::new(url.clone(), settings.clone())?;
        // Migrate on one dedicated connection first, so a schema problem is
        // reported once and clearly rather than as a pool timeout.
        {
            let mut conn = r2d2::ManageConnection::connect(&manager)?;
            let applied = migrations::run_pending(&mut conn)?;
            if applied > 0 {
                tracing::info!(applied, database = %url, "database schema migrated");
            }
        }
        let restart = (url.backend() == Backend::Sqlite && settings.sqlite_checkpoint_ms > 0)
            .then(|| std::sync::Arc::new(checkpointer::RestartRequest::default()));
        let checkpointer = match &restart {
            Some(restart) => Some(std::sync::Arc::new(
                checkpointer::Checkpointer::start(
                    &manager,
                    Duration::from_millis(settings.sqlite_checkpoint_ms.into()),
                    restart.clone(),
                )
                .map_err(|message| StorageError::Connect {
                    url: url.redacted(),
                    message: format!("starting the checkpoint thread: {message}"),
                })?,
            )),
            None => None,
        };
        let pool = r2d2::Pool::builder()
            .max_size(settings.pool_size)
            // No background connecting: with PostgreSQL over TLS, a process
            // that exits while r2d2 opens a spare connection on its own thread
            // can crash in libpq/OpenSSL's exit handlers (seen as SIGSEGV in
            // short CLI commands). Connections are made when asked for and
            // kept until idle.
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(settings.pool_timeout_secs.max(1)))
            .build(manager)
            .map_err(|e| StorageError::Connect {
                url: url.redacted(),
                message: e.to_string(),
            })?;
        let writer = match url.backend() {
            Backend::Sqlite => Some(std::sync::Arc::new(
                writer::Writer::start(pool.clone(), settings.sqlite_synchronous, restart).map_err(
                    |e| StorageError::Connect {
                        url: url.redacted(),
                        message: format!("starting the writer thread: {e}"),
                    },
                )?,
            )),
            Backend::Postgres => None,
        };
        Ok(Database {
            pool,
            url: url.clone(),
            writer,
            _checkpointer: checkpointer,
        })
    }

    /// The backend this database runs on.
    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// What SQLite's group-commit writer has committed so far (`None` on
    /// PostgreSQL, which has no such writer).
    pub fn writer_counts(&self) -> Option<WriterCounts> {
        self.writer.as_ref().map(|w| w.stats())
    }

    /// Takes a connection from the pool (blocking).
    pub fn conn(&self) -> Result<PooledConnection, StorageError> {
        self.pool.get().map_err(|e| StorageError::Connect {
            url: self.url.redacted(),
            message: e.to_string(),
        })
    }

    /// Takes a connection from the pool if one is idle, or else one that
    /// frees up or is opened within `wait`; `None` rather than waiting
    /// longer (for work that can do without it).
    pub fn try_conn(&self, wait: Duration) -> Option<PooledConnection> {
        self.pool
            .try_get()
            .or_else(|| self.pool.get_timeout(wait).ok())
    }

    /// Runs blocking database work on tokio's blocking thread pool with a
    /// pooled connection, so the async executor never waits on the database.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.conn()?;
            work(&mut conn)
        })
        .await
        .map_err(|e| E::from(StorageError::Task(e.to_string())))?
    }

    /// Runs `work` as a write transaction (commit on `Ok`, roll back on
    /// `Err`) and returns once it is committed. On SQLite, writes submitted
    /// at about the same time share one commit (group commit, see `writer`),
    /// each in its own savepoint; on PostgreSQL each is its own transaction.
    ///
    /// `work` runs on the writer thread while other writes wait: keep slow
    /// reads and cryptography out of it where they can go before, and never
    /// call `write` from inside it.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        self.write_with(true, work).await
    }

    /// Like [`Database::write`], for a write whose loss in a power failure
    /// is harmless and which therefore need not wait for the disk: a
    /// delivery lease, a delivery outcome the peer confirms again on the next
    /// attempt. It survives a crash of the process like any other write.
    /// SQLite commits a batch of only such writes with `synchronous =
    /// normal`; PostgreSQL commits it with `synchronous_commit = off`. The
    /// log is written in order on both, so any later durable commit makes it
    /// durable too.
    pub async fn write_unsynced<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        self.write_with(false, work).await
    }

    /// [`Database::write`] for `work` that may run twice, the first run
    /// rolled back: on SQLite the writes made for every message run in their
    /// batch without a savepoint each, and again each in a savepoint when one
    /// of them fails (see `writer`). `work` must do nothing but database
    /// writes on the connection it is given (a log line at most).
    pub async fn write_rerunnable<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
        F: FnMut(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        match &self.writer {
            Some(w) => w.write_rerunnable(true, work).await,
            None => self.write_with(true, work).await,
        }
    }

    /// [`Database::write_unsynced`] for `work` that may run twice (see
    /// [`Database::write_rerunnable`]).
    pub async fn write_unsynced_rerunnable<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
        F: FnMut(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        match &self.writer {
            Some(w) => w.write_rerunnable(false, work).await,
            None => self.write_with(false, work).await,
        }
    }

    /// [`Database::write`] (`synced`) or [`Database::write_unsynced`].
    async fn write_with<T, E, F>(&self, synced: bool, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        match &self.writer {
            Some(w) => w.write(synced, work).await,
            None => {
                self.run(move |c| {
                    write_transaction(c, |c| {
                        if !synced {
                            use diesel::connection::SimpleConnection as _;
                            c.batch_execute("SET LOCAL synchronous_commit = off")?;
                        }
                        work(c)
                    })
                })
                .await
            }
        }
    }
}
