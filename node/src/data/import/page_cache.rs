//! A larger SQLite page cache on the importing connection for the length of
//! one import: millions of new codes go into the code index at random places,
//! and the node's everyday cache (`[database] sqlite_cache_mib`) is sized for
//! serving, not for that.

use crate::storage::{DbConnection, PooledConnection, StorageError};
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;

/// A pooled connection whose SQLite page cache is enlarged until it is
/// dropped (then set back, before it returns to the pool).
pub struct ImportConnection {
    conn: PooledConnection,
    /// The cache size to restore (`PRAGMA cache_size` units); none on PostgreSQL.
    previous: Option<i64>,
}

#[derive(QueryableByName)]
struct CacheSize {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    cache_size: i64,
}

impl ImportConnection {
    /// Enlarges the page cache of `conn` to `mib` MiB (SQLite only; never
    /// shrinks it).
    pub fn new(mut conn: PooledConnection, mib: u32) -> Result<Self, StorageError> {
        let previous = match &mut *conn {
            DbConnection::Sqlite(c) => {
                let now = diesel::sql_query("PRAGMA cache_size")
                    .get_result::<CacheSize>(c)?
                    .cache_size;
                let wanted = -i64::from(mib) * 1024;
                // Negative values are KiB, positive ones pages; compare in KiB
                // assuming 4 KiB pages for the positive form.
                let kib = |v: i64| if v < 0 { -v } else { v * 4 };
                if kib(wanted) > kib(now) {
                    c.batch_execute(&format!("PRAGMA cache_size = {wanted}"))?;
                    Some(now)
                } else {
                    None
                }
            }
            DbConnection::Postgresql(_) => None,
        };
        Ok(ImportConnection { conn, previous })
    }
}

impl std::ops::Deref for ImportConnection {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for ImportConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

impl Drop for ImportConnection {
    fn drop(&mut self) {
        if let (Some(size), DbConnection::Sqlite(c)) = (self.previous, &mut *self.conn) {
            // Shrinking the cache frees its pages; a failure leaves a larger
            // cache on a pooled connection, which is harmless.
            let _ = c.batch_execute(&format!("PRAGMA cache_size = {size}"));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::DatabaseSettings;
    use crate::storage::testing::TestDb;
    use crate::storage::{Backend, Database};

    fn cache_size(db: &Database) -> i64 {
        match &mut *db.conn().unwrap() {
            DbConnection::Sqlite(c) => {
                diesel::sql_query("PRAGMA cache_size")
                    .get_result::<CacheSize>(c)
                    .unwrap()
                    .cache_size
            }
            DbConnection::Postgresql(_) => unreachable!("a SQLite test"),
        }
    }

    #[test]
    fn the_import_cache_is_set_back_before_the_connection_returns_to_the_pool() {
        let test_db = TestDb::new(Backend::Sqlite).unwrap();
        let settings = DatabaseSettings {
            pool_size: 1,
            sqlite_cache_mib: 16,
            ..DatabaseSettings::default()
        };
        let db = Database::open(&test_db.url, &settings).unwrap();
        assert_eq!(cache_size(&db), -16 * 1024);
        let mut import = ImportConnection::new(db.conn().unwrap(), 64).unwrap();
        if let DbConnection::Sqlite(c) = &mut *import {
            let size = diesel::sql_query("PRAGMA cache_size")
                .get_result::<CacheSize>(c)
                .unwrap()
                .cache_size;
            assert_eq!(size, -64 * 1024);
        }
        drop(import);
        assert_eq!(cache_size(&db), -16 * 1024);
        // Never smaller than the node's own cache.
        drop(ImportConnection::new(db.conn().unwrap(), 8).unwrap());
        assert_eq!(cache_size(&db), -16 * 1024);
    }
}
