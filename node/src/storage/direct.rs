//! Queries run on the backend's own connection rather than through the
//! [`DbConnection`] enum's generic layer.
//!
//! diesel's `MultiConnection` runs a query by serialising it anew for every
//! pass over it (cache check, bind collection), so each statement builds its
//! SQL text two or three times before the cached prepared statement is even
//! looked up. Measured on SQLite (release build, 1,000-row table): a
//! one-row `SELECT` by key 5.5 µs through the enum, 2.9 µs on the
//! `SqliteConnection` itself; an `UPDATE` by key 11.9 µs against 5.1 µs.
//! The answering node alone runs sixteen statements per verification (see
//! `node/tests/store_cycle.rs`), so the hot paths of the exchange
//! (`exchange::store`, `exchange::outbox`, sessions, lookups) call these
//! methods instead of diesel's `execute`, `get_result`, `first` and `load`.
//!
//! Each method is diesel's own, monomorphised once per backend: a query
//! valid on both backends is written once, as before. Same results, same
//! errors. (A query tied to one backend — a boxed select, a `Selectable`
//! checked for SQLite — stays on the enum.)

use super::DbConnection;
use diesel::dsl::Limit;
use diesel::pg::PgConnection;
use diesel::query_dsl::LoadQuery;
use diesel::query_dsl::methods::{ExecuteDsl, LimitDsl};
use diesel::{QueryResult, RunQueryDsl, SqliteConnection};

/// diesel's running methods, on the connection inside a [`DbConnection`].
pub trait Direct: Sized {
    /// [`RunQueryDsl::execute`].
    fn execute_direct(self, conn: &mut DbConnection) -> QueryResult<usize>
    where
        Self: ExecuteDsl<SqliteConnection> + ExecuteDsl<PgConnection>,
    {
        crate::on_backend!(conn, |c| ExecuteDsl::execute(self, c))
    }

    /// [`RunQueryDsl::get_result`].
    fn get_result_direct<'q, U>(self, conn: &mut DbConnection) -> QueryResult<U>
    where
        Self: RunQueryDsl<SqliteConnection>
            + RunQueryDsl<PgConnection>
            + LoadQuery<'q, SqliteConnection, U>
            + LoadQuery<'q, PgConnection, U>,
    {
        crate::on_backend!(conn, |c| RunQueryDsl::get_result(self, c))
    }

    /// [`RunQueryDsl::first`].
    fn first_direct<'q, U>(self, conn: &mut DbConnection) -> QueryResult<U>
    where
        Self: LimitDsl,
        Limit<Self>: RunQueryDsl<SqliteConnection>
            + RunQueryDsl<PgConnection>
            + LoadQuery<'q, SqliteConnection, U>
            + LoadQuery<'q, PgConnection, U>,
    {
        self.limit(1).get_result_direct(conn)
    }

    /// [`RunQueryDsl::load`].
    fn load_direct<'q, U>(self, conn: &mut DbConnection) -> QueryResult<Vec<U>>
    where
        Self: RunQueryDsl<SqliteConnection>
            + RunQueryDsl<PgConnection>
            + LoadQuery<'q, SqliteConnection, U>
            + LoadQuery<'q, PgConnection, U>,
    {
        crate::on_backend!(conn, |c| RunQueryDsl::load(self, c))
    }
}

impl<T> Direct for T {}
