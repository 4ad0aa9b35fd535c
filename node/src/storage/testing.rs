//! Throwaway databases for tests (unit, integration and end-to-end).
//!
//! SQLite: a file in a temporary folder. PostgreSQL: a fresh schema in the
//! database named by `GSP_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`, which `.ci/run` replaces with a
//! database it creates per run), selected through libpq's `search_path`
//! option, and dropped when the guard goes away. Tests on PostgreSQL fail,
//! never skip, when the server is unreachable.
//!
//! Not for: production use.

use super::{Backend, DatabaseUrl, StorageError};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where PostgreSQL tests connect when `GSP_TEST_POSTGRES_URL` is not set.
pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database that exists for the life of this value.
pub struct TestDb {
    /// The URL to open it with.
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    pg_cleanup: Option<(String, String)>,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestDb({})", self.url)
    }
}

impl TestDb {
    /// A throwaway database on `backend`.
    pub fn new(backend: Backend) -> Result<TestDb, StorageError> {
        match backend {
            Backend::Sqlite => Self::sqlite(),
            Backend::Postgres => Self::postgres(),
        }
    }

    /// A new SQLite file in a temporary folder.
    pub fn sqlite() -> Result<TestDb, StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageError::Connect {
            url: "sqlite (temp dir)".into(),
            message: e.to_string(),
        })?;
        Ok(TestDb {
            url: DatabaseUrl::Sqlite(dir.path().join("gsp.db")),
            _dir: Some(dir),
            pg_cleanup: None,
        })
    }

    /// A new schema in the test PostgreSQL database.
    pub fn postgres() -> Result<TestDb, StorageError> {
        let base = std::env::var("GSP_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_owned());
        let schema = format!(
            "t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let connect_err = |e: &dyn std::fmt::Display| StorageError::Connect {
            url: base.clone(),
            message: format!("{e} (PostgreSQL tests need a server; see README, Tests)"),
        };
        let mut admin = PgConnection::establish(&base).map_err(|e| connect_err(&e))?;
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .map_err(|e| connect_err(&e))?;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        Ok(TestDb {
            url: DatabaseUrl::Postgres(url),
            _dir: None,
            pg_cleanup: Some((base, schema)),
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.pg_cleanup.take()
            && let Ok(mut admin) = PgConnection::establish(&base)
        {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// Declares a test module per backend around the given test functions: each
/// `fn name(backend: Backend)` becomes `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! for_each_backend {
    ($($(#[$meta:meta])* fn $name:ident($backend:ident : Backend) $body:block)*) => {
        $( $(#[$meta])* fn $name($backend: $crate::storage::Backend) $body )*
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::storage::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name($crate::storage::Backend::Postgres) } )*
        }
    };
}

/// Inserts case `id` with only the columns the schema requires (an asking
/// case to PAK, answered in full), for tests that need messages to hang on
/// a case; a case already there is left as it is.
pub fn insert_bare_case(conn: &mut super::DbConnection, id: &str) -> Result<(), StorageError> {
    use diesel::RunQueryDsl as _;
    diesel::sql_query(
        "INSERT INTO cases (id, role, counterpart, template, template_version, state, \
           priority, subject, policy, created_at, updated_at) \
         VALUES ($1, 0, 'PAK', 'uid-verification', 1, 4, 'routine', 's', 0, 1, 1) \
         ON CONFLICT DO NOTHING",
    )
    .bind::<diesel::sql_types::Text, _>(id)
    .execute(conn)?;
    Ok(())
}
