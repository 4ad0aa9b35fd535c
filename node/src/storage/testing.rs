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

/// A message row for tests with only what the schema requires; see
/// [`insert_bare_message`].
#[derive(Debug, Clone, Copy)]
pub struct BareMessage<'a> {
    /// Its `seq`; its message id is `m{seq}`.
    pub seq: i64,
    /// The case it belongs to (which must exist).
    pub case: &'a str,
    /// Sender and recipient Party codes.
    pub from: &'a str,
    /// The recipient.
    pub to: &'a str,
    /// 0 request, 1 answer.
    pub kind: i16,
    /// 0 sent, 1 received.
    pub direction: i16,
    /// Its message state, as a number.
    pub state: i16,
    /// The envelope kept with it, if any.
    pub envelope: Option<&'a [u8]>,
    /// When it was made (ms).
    pub created_at: i64,
    /// When it was delivered or taken in (ms), if it was.
    pub delivered_at: Option<i64>,
}

impl BareMessage<'_> {
    /// A request sent from KEN to PAK in case `case`, made at 1 ms and in
    /// state 1 (queued), with no envelope: change what a test needs.
    pub fn new(seq: i64, case: &str) -> BareMessage<'_> {
        BareMessage {
            seq,
            case,
            from: "KEN",
            to: "PAK",
            kind: 0,
            direction: 0,
            state: 1,
            envelope: None,
            created_at: 1,
            delivered_at: None,
        }
    }
}

/// Inserts `m` with an empty JSON body.
pub fn insert_bare_message(
    conn: &mut super::DbConnection,
    m: &BareMessage<'_>,
) -> Result<(), StorageError> {
    use diesel::RunQueryDsl as _;
    use diesel::sql_types::{BigInt, Binary, Nullable, SmallInt, Text};
    diesel::sql_query(
        "INSERT INTO messages (seq, message_id, from_party, to_party, case_id, direction, kind, \
           content_type, body, body_sha256, envelope, state, created_at, delivered_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'application/json', $8, '', $9, $10, $11, $12)",
    )
    .bind::<BigInt, _>(m.seq)
    .bind::<Text, _>(format!("m{}", m.seq))
    .bind::<Text, _>(m.from)
    .bind::<Text, _>(m.to)
    .bind::<Text, _>(m.case)
    .bind::<SmallInt, _>(m.direction)
    .bind::<SmallInt, _>(m.kind)
    .bind::<Binary, _>(b"{}".to_vec())
    .bind::<Nullable<Binary>, _>(m.envelope.map(<[u8]>::to_vec))
    .bind::<SmallInt, _>(m.state)
    .bind::<BigInt, _>(m.created_at)
    .bind::<Nullable<BigInt>, _>(m.delivered_at)
    .execute(conn)?;
    Ok(())
}
