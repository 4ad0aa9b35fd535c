//! Write transactions that take SQLite's write lock up front.
//!
//! A plain `BEGIN` on SQLite is deferred: a transaction that reads, then writes,
//! can fail with SQLITE_BUSY when another connection wrote in between. Writers
//! that read first (the importer reads the highest id, then inserts) therefore
//! start with `BEGIN IMMEDIATE`. PostgreSQL uses an ordinary transaction.

use super::DbConnection;
use diesel::QueryResult;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use std::cell::Cell;

thread_local! {
    /// The connection (by address) whose batch the writer thread is running
    /// without savepoints, and whether a write inside it has failed (see
    /// [`Flat`]).
    static FLAT: Cell<Option<(usize, bool)>> = const { Cell::new(None) };
}

/// While it lives, `write_transaction` on `conn` on this thread opens no
/// savepoint: the group commit runs re-runnable writes this way, and runs
/// the whole batch again, each write in its own savepoint, when one of them
/// fails ([`Flat::failed`]).
pub(super) struct Flat {
    conn: usize,
}

impl Flat {
    /// Starts running `conn`'s writes without savepoints on this thread.
    pub(super) fn start(conn: &DbConnection) -> Flat {
        let conn = address(conn);
        FLAT.set(Some((conn, false)));
        Flat { conn }
    }

    /// True once a `write_transaction` inside has returned an error (its
    /// partial writes are still in the transaction, even when the caller
    /// went on).
    pub(super) fn failed(&self) -> bool {
        FLAT.get()
            .is_some_and(|(c, failed)| c == self.conn && failed)
    }
}

impl Drop for Flat {
    fn drop(&mut self) {
        FLAT.set(None);
    }
}

fn address(conn: &DbConnection) -> usize {
    std::ptr::from_ref(conn) as usize
}

/// Runs `work` in a write transaction: commit on `Ok`, roll back on `Err`.
/// Nested `conn.transaction(…)` calls inside become savepoints as usual, and
/// so does this function when the connection is already in a transaction
/// (a write in a group commit, see `writer`) — except in a batch the group
/// commit runs without savepoints, where `work` runs as it is and an error
/// has the batch run again with them.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    E: From<diesel::result::Error>,
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
{
    if let Some((flat, _)) = FLAT.get()
        && flat == address(conn)
    {
        let result = work(conn);
        if result.is_err() {
            FLAT.set(Some((flat, true)));
        }
        return result;
    }
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
