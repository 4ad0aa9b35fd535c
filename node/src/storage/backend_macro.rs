//! `on_backend!`: run the same diesel code on whichever connection is inside a
//! [`DbConnection`](super::DbConnection), monomorphised per backend. Used where
//! the `MultiBackend` query builder lacks a feature (upserts with RETURNING,
//! batch inserts, COPY) or where one backend has a faster path.

/// Runs `$body` with `$c` bound to the inner `SqliteConnection` or `PgConnection`.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::storage::DbConnection::Sqlite($c) => $body,
            $crate::storage::DbConnection::Postgresql($c) => $body,
        }
    };
}
