//! Embedded migrations, one folder per backend, applied at start-up.

use super::{DbConnection, StorageError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// SQLite migrations (`node/migrations/sqlite`).
pub const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// PostgreSQL migrations (`node/migrations/postgres`).
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Applies every pending migration; returns how many ran.
pub fn run_pending(conn: &mut DbConnection) -> Result<usize, StorageError> {
    let done = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE).map(|v| v.len()),
        DbConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES).map(|v| v.len()),
    };
    done.map_err(|e| StorageError::Migration(e.to_string()))
}

/// Reverts every applied migration (used by tests proving reversibility and by
/// operators tearing a node down).
pub fn revert_all(conn: &mut DbConnection) -> Result<usize, StorageError> {
    let done = match conn {
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE).map(|v| v.len()),
        DbConnection::Postgresql(c) => c.revert_all_migrations(POSTGRES).map(|v| v.len()),
    };
    done.map_err(|e| StorageError::Migration(e.to_string()))
}
