//! How much disk the database takes, for `gsp status`: on SQLite the
//! database file, its write-ahead log and shared-memory index, and the free
//! pages inside the file that new data will reuse; on PostgreSQL the size
//! the server reports for the database.

use super::{Database, DatabaseUrl, DbConnection, StorageError};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde::Serialize;
use std::path::Path;

/// The database's footprint on disk, in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum StorageSize {
    /// An SQLite database: three files side by side.
    Sqlite {
        /// The database file.
        database: u64,
        /// The write-ahead log (`-wal`), 0 when absent.
        wal: u64,
        /// The WAL's shared-memory index (`-shm`), 0 when absent.
        shm: u64,
        /// Free pages inside the database file, reused before it grows.
        free: u64,
    },
    /// A PostgreSQL database, as `pg_database_size` reports it.
    Postgres {
        /// The whole database (tables, indexes, TOAST, free space in them).
        database: u64,
    },
}

impl StorageSize {
    /// All bytes on disk.
    pub fn total(&self) -> u64 {
        match self {
            StorageSize::Sqlite {
                database, wal, shm, ..
            } => database + wal + shm,
            StorageSize::Postgres { database } => *database,
        }
    }
}

impl std::fmt::Display for StorageSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageSize::Sqlite {
                database,
                wal,
                shm,
                free,
            } => write!(
                f,
                "SQLite {} (database {}, of which {} free pages; WAL {}; index {})",
                bytes(self.total()),
                bytes(*database),
                bytes(*free),
                bytes(*wal),
                bytes(*shm)
            ),
            StorageSize::Postgres { database } => write!(f, "PostgreSQL {}", bytes(*database)),
        }
    }
}

/// `n` bytes in the largest binary unit that keeps a whole number before
/// the point ("1.5 GiB", "512 KiB", "12 B").
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut scaled = n;
    while scaled >= 1024 && unit + 1 < UNITS.len() {
        scaled /= 1024;
        unit += 1;
    }
    if unit == 0 {
        return format!("{n} B");
    }
    // One decimal, computed in integers (tenths of the unit).
    let tenths = u128::from(n) * 10 / 1024u128.pow(u32::try_from(unit).unwrap_or(0));
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn number(conn: &mut DbConnection, sql: &str) -> Result<u64, StorageError> {
    let row: Number = diesel::sql_query(sql).get_result(conn)?;
    Ok(u64::try_from(row.n).unwrap_or(0))
}

/// The length of the file at `path` plus `suffix`; 0 when it does not exist.
fn file_len(path: &Path, suffix: &str) -> Result<u64, StorageError> {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    match std::fs::metadata(&name) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(StorageError::Task(format!(
            "reading the size of {}: {e}",
            Path::new(&name).display()
        ))),
    }
}

impl Database {
    /// The database's footprint on disk now.
    pub fn size_on_disk(&self) -> Result<StorageSize, StorageError> {
        let mut conn = self.conn()?;
        match self.url() {
            DatabaseUrl::Sqlite(path) => {
                let free_pages = number(
                    &mut conn,
                    "SELECT freelist_count AS n FROM pragma_freelist_count()",
                )?;
                let page = number(&mut conn, "SELECT page_size AS n FROM pragma_page_size()")?;
                Ok(StorageSize::Sqlite {
                    database: file_len(path, "")?,
                    wal: file_len(path, "-wal")?,
                    shm: file_len(path, "-shm")?,
                    free: free_pages.saturating_mul(page),
                })
            }
            DatabaseUrl::Postgres(_) => Ok(StorageSize::Postgres {
                database: number(
                    &mut conn,
                    "SELECT pg_database_size(current_database()) AS n",
                )?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn byte_counts_read_as_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(45 * 1024 * 1024 + 1024 * 1024 / 2), "45.5 MiB");
        assert_eq!(bytes(3 * 1024u64.pow(4)), "3.0 TiB");
        assert_eq!(bytes(u64::MAX), "16777215.9 TiB");
    }
}
