//! Write transactions that take SQLite's write lock up front.
//!
//! A plain `BEGIN` on SQLite is deferred: a transaction that reads, then writes,
//! can fail with SQLITE_BUSY when another connection wrote in between. Writers
//! that read first (the importer reads the highest id, then inserts) therefore
//! start with `BEGIN IMMEDIATE`. PostgreSQL uses an ordinary transaction.

use super::DbConnection;
use diesel::QueryResult;
use diesel::connection::{AnsiTransactionManager, TransactionManager};

/// Runs `work` in a write transaction: commit on `Ok`, roll back on `Err`.
/// Nested `conn.transaction(…)` calls inside become savepoints as usual, and
/// so does this function when the connection is already in a transaction
/// (a write in a group commit, see `writer`).
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    E: From<diesel::result::Error>,
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
{
    begin(conn)?;
    match work(conn) {
        Ok(value) => {
            commit(conn)?;
            Ok(value)
        }
        Err(err) => {
            // The original error matters more than a failed rollback; a broken
            // connection is discarded by the pool on its next health check.
            let _ = rollback(conn);
            Err(err)
        }
    }
}

/// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite), or a savepoint
/// when the connection is in a transaction already.
pub(super) fn begin(conn: &mut DbConnection) -> QueryResult<()> {
    if in_transaction(conn) {
        return crate::on_backend!(conn, |c| AnsiTransactionManager::begin_transaction(c));
    }
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        DbConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction(c),
    }
}

/// Commits the innermost transaction or savepoint.
pub(super) fn commit(conn: &mut DbConnection) -> QueryResult<()> {
    crate::on_backend!(conn, |c| AnsiTransactionManager::commit_transaction(c))
}

/// Rolls back the innermost transaction or savepoint.
pub(super) fn rollback(conn: &mut DbConnection) -> QueryResult<()> {
    crate::on_backend!(conn, |c| AnsiTransactionManager::rollback_transaction(c))
}

/// True when `conn` is inside a transaction, or its transaction state is
/// broken (a failed rollback): either way it cannot start a fresh one.
pub(super) fn in_transaction(conn: &mut DbConnection) -> bool {
    crate::on_backend!(conn, |c| {
        AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()
            .map_or(true, |depth| depth.is_some())
    })
}
