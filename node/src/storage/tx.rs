//! Write transactions that take SQLite's write lock up front.
//!
//! A plain `BEGIN` on SQLite is deferred: a transaction that reads, then writes,
//! can fail with SQLITE_BUSY when another connection wrote in between. Writers
//! that read first (the importer reads the highest id, then inserts) therefore
//! start with `BEGIN IMMEDIATE`. PostgreSQL uses an ordinary transaction.

use super::DbConnection;
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
    match conn {
        DbConnection::Sqlite(c) => {
            if in_transaction(c) {
                AnsiTransactionManager::begin_transaction(c)?
            } else {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
            }
        }
        DbConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    match work(conn) {
        Ok(value) => {
            crate::on_backend!(conn, |c| AnsiTransactionManager::commit_transaction(c))?;
            Ok(value)
        }
        Err(err) => {
            // The original error matters more than a failed rollback; a broken
            // connection is discarded by the pool on its next health check.
            let _ = crate::on_backend!(conn, |c| AnsiTransactionManager::rollback_transaction(c));
            Err(err)
        }
    }
}

/// True when `c` is inside a transaction already.
fn in_transaction(c: &mut diesel::SqliteConnection) -> bool {
    AnsiTransactionManager::transaction_manager_status_mut(c)
        .transaction_depth()
        .ok()
        .flatten()
        .is_some()
}
