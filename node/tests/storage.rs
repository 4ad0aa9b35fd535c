//! Storage: every migration reverses, and `schema.rs` says what the migrated
//! database really holds — on SQLite and on PostgreSQL.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use diesel::prelude::*;
use gsp_node::for_each_backend;
use gsp_node::storage::{Backend, Database, DbConnection, StorageSize, migrations};
use std::collections::BTreeMap;

/// (column, diesel type, nullable).
type DeclaredColumn = (String, String, bool);

/// The columns of each table, as `schema.rs` declares them.
fn declared_schema() -> BTreeMap<String, Vec<DeclaredColumn>> {
    let text = include_str!("../src/storage/schema.rs");
    let mut tables = BTreeMap::new();
    let mut current: Option<(String, Vec<DeclaredColumn>)> = None;
    for line in text.lines().map(str::trim) {
        if let Some((name, _)) = line.split_once(" (").filter(|_| line.ends_with(") {")) {
            current = Some((name.to_owned(), Vec::new()));
        } else if let Some((col, ty)) = line.split_once(" -> ") {
            if let Some((_, cols)) = current.as_mut() {
                let ty = ty.trim_end_matches(',');
                let (ty, nullable) = match ty
                    .strip_prefix("Nullable<")
                    .and_then(|t| t.strip_suffix('>'))
                {
                    Some(inner) => (inner, true),
                    None => (ty, false),
                };
                cols.push((col.to_owned(), ty.to_owned(), nullable));
            }
        } else if line == "}"
            && let Some((name, cols)) = current.take()
            && !cols.is_empty()
        {
            tables.insert(name, cols);
        }
    }
    tables
}

#[derive(QueryableByName, Debug)]
struct Column {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    ty: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    nullable: bool,
}

#[derive(QueryableByName, Debug)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

fn user_tables(conn: &mut DbConnection) -> Vec<String> {
    let sql = match conn {
        DbConnection::Sqlite(_) => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '__diesel%' ORDER BY name"
        }
        DbConnection::Postgresql(_) => {
            "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name NOT LIKE '__diesel%' ORDER BY 1"
        }
    };
    diesel::sql_query(sql)
        .load::<Name>(conn)
        .expect("list tables")
        .into_iter()
        .map(|n| n.name)
        .collect()
}

fn columns(conn: &mut DbConnection, table: &str) -> Vec<Column> {
    let sql = match conn {
        DbConnection::Sqlite(_) => format!(
            "SELECT name, type AS ty, (\"notnull\" = 0 AND pk = 0) AS nullable FROM pragma_table_info('{table}') ORDER BY cid"
        ),
        DbConnection::Postgresql(_) => format!(
            "SELECT column_name::text AS name, data_type::text AS ty, (is_nullable = 'YES') AS nullable \
             FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
        ),
    };
    diesel::sql_query(sql).load(conn).expect("columns")
}

/// The SQL types a diesel type may be stored as, per backend.
fn accepts(backend: Backend, diesel_type: &str, sql_type: &str) -> bool {
    let sql = sql_type.to_ascii_lowercase();
    match (backend, diesel_type) {
        (Backend::Sqlite, "BigInt") => sql == "bigint" || sql == "integer",
        (Backend::Sqlite, "SmallInt") => sql == "smallint",
        (Backend::Sqlite, "Text") => sql == "text",
        (Backend::Sqlite, "Integer") => sql == "integer",
        (Backend::Sqlite, "Binary") => sql == "blob",
        (Backend::Postgres, "BigInt") => sql == "bigint",
        (Backend::Postgres, "SmallInt") => sql == "smallint",
        (Backend::Postgres, "Text") => sql == "text",
        (Backend::Postgres, "Integer") => sql == "integer",
        (Backend::Postgres, "Binary") => sql == "bytea",
        _ => false,
    }
}

for_each_backend! {
    fn every_migration_reverses_and_reapplies(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let mut conn = db.conn().unwrap();
        let before = user_tables(&mut conn);
        assert!(before.contains(&"codes".to_owned()), "{before:?}");
        let reverted = migrations::revert_all(&mut conn).unwrap();
        assert!(reverted >= 1);
        assert_eq!(user_tables(&mut conn), Vec::<String>::new(), "down.sql left tables behind");
        let applied = migrations::run_pending(&mut conn).unwrap();
        assert_eq!(applied, reverted);
        assert_eq!(user_tables(&mut conn), before);
    }

    fn schema_rs_matches_the_migrated_database(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let mut conn = db.conn().unwrap();
        let declared = declared_schema();
        assert!(declared.len() >= 9, "parsed {} tables from schema.rs", declared.len());
        let actual_tables = user_tables(&mut conn);
        let declared_tables: Vec<String> = declared.keys().cloned().collect();
        assert_eq!(actual_tables, declared_tables, "tables in the database vs schema.rs");
        for (table, cols) in &declared {
            let actual = columns(&mut conn, table);
            let names: Vec<&str> = actual.iter().map(|c| c.name.as_str()).collect();
            let expected: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
            assert_eq!(names, expected, "columns of {table}");
            for ((name, ty, nullable), col) in cols.iter().zip(&actual) {
                assert!(accepts(backend, ty, &col.ty), "{table}.{name}: schema.rs says {ty}, database has {}", col.ty);
                assert_eq!(*nullable, col.nullable, "{table}.{name}: nullability");
            }
        }
    }

    fn the_size_on_disk_counts_what_was_written(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let before = db.size_on_disk().unwrap();
        match (&before, backend) {
            (StorageSize::Sqlite { database, .. }, Backend::Sqlite) => assert!(*database > 0, "{before:?}"),
            (StorageSize::Postgres { database }, Backend::Postgres) => assert!(*database > 0, "{before:?}"),
            _ => panic!("{before:?} on {backend}"),
        }
        // 4 MiB of rows (random, so neither backend can compress them).
        let mut conn = db.conn().unwrap();
        diesel::sql_query("CREATE TABLE size_test (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .execute(&mut conn)
            .unwrap();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for id in 0..1024 {
            let v: String = (0..4096)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    char::from(b'a' + (x % 26) as u8)
                })
                .collect();
            diesel::sql_query(format!("INSERT INTO size_test (id, v) VALUES ({id}, '{v}')"))
                .execute(&mut conn)
                .unwrap();
        }
        let after = db.size_on_disk().unwrap();
        assert!(after.total() >= before.total() + 4 * 1024 * 1024, "{before:?} -> {after:?}");
        if let StorageSize::Sqlite { wal, shm, .. } = after {
            // Not checkpointed yet: the rows are in the log.
            assert!(wal > 0 && shm > 0, "{after:?}");
        }
        let shown = after.to_string();
        assert!(shown.starts_with(&backend.to_string()), "{shown}");
    }

    fn opening_twice_applies_nothing_new(backend: Backend) {
        let (guard, db) = common::open(backend);
        drop(db);
        let db = Database::open(&guard.url, &gsp_node::config::Config::default().database).unwrap();
        let mut conn = db.conn().unwrap();
        assert_eq!(migrations::run_pending(&mut conn).unwrap(), 0);
    }
}

/// One outbox row as the test reads it back.
#[derive(QueryableByName, Debug, PartialEq)]
struct OutboxRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    message_seq: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    peer: String,
    #[diesel(sql_type = diesel::sql_types::SmallInt)]
    state: i16,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    attempts: i32,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    next_attempt_at: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    claimed_by: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    last_error: Option<String>,
}

fn outbox_rows(conn: &mut DbConnection) -> Vec<OutboxRow> {
    diesel::sql_query(
        "SELECT message_seq, peer, state, attempts, next_attempt_at, claimed_by, last_error \
         FROM outbox ORDER BY message_seq",
    )
    .load(conn)
    .unwrap()
}

fn outbox_indexes(conn: &mut DbConnection) -> Vec<String> {
    diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' ORDER BY name",
    )
    .load::<Name>(conn)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect()
}

/// On SQLite the outbox's key is the table's own rowid, with no unique
/// index beside the table, and the rebuild that made it so (and its
/// reversal) keeps every row and both of the outbox's indexes.
#[test]
fn the_sqlite_outbox_is_keyed_by_its_rowid_and_its_rebuild_keeps_rows() {
    use diesel_migrations::MigrationHarness as _;
    use gsp_node::storage::testing::{BareMessage, insert_bare_case, insert_bare_message};
    let (_guard, db) = common::open(Backend::Sqlite);
    let mut conn = db.conn().unwrap();
    let last = |conn: &mut DbConnection, revert: bool| match conn {
        DbConnection::Sqlite(c) if revert => {
            c.revert_last_migration(migrations::SQLITE).unwrap();
        }
        DbConnection::Sqlite(c) => {
            c.run_next_migration(migrations::SQLITE).unwrap();
        }
        DbConnection::Postgresql(_) => panic!("opened SQLite, got PostgreSQL"),
    };
    let keyed = [
        "outbox_due".to_owned(),
        "outbox_queue".to_owned(),
        "sqlite_autoindex_outbox_1".to_owned(),
    ];
    // Before the rebuild: a unique index beside the table; two queued messages.
    last(&mut conn, true);
    assert_eq!(outbox_indexes(&mut conn), keyed);
    insert_bare_case(&mut conn, "case-1").unwrap();
    for seq in [7, 9] {
        insert_bare_message(&mut conn, &BareMessage::new(seq, "case-1")).unwrap();
    }
    diesel::sql_query(
        "INSERT INTO outbox (message_seq, peer, state, attempts, next_attempt_at, expires_at, \
           claimed_by, claimed_until, last_error, created_at) VALUES \
         (7, 'PAK', 0, 2, 1000, 2000, 'node-a', 1500, 'timed out', 900), \
         (9, 'SEN', 1, 0, 1100, 2100, NULL, NULL, NULL, 950)",
    )
    .execute(&mut conn)
    .unwrap();
    let rows = outbox_rows(&mut conn);
    assert_eq!(rows.len(), 2);

    last(&mut conn, false);
    assert_eq!(outbox_rows(&mut conn), rows, "the rebuild changed the rows");
    assert_eq!(outbox_indexes(&mut conn), keyed[..2]);
    #[derive(QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }
    let plan: Vec<Plan> =
        diesel::sql_query("EXPLAIN QUERY PLAN SELECT state FROM outbox WHERE message_seq = 7")
            .load(&mut conn)
            .unwrap();
    assert!(
        plan.iter()
            .any(|p| p.detail.contains("INTEGER PRIMARY KEY")),
        "{:?}",
        plan.iter().map(|p| &p.detail).collect::<Vec<_>>()
    );
    // A message is still queued once only, and only for a message kept.
    let twice = diesel::sql_query(
        "INSERT INTO outbox (message_seq, peer, state, next_attempt_at, expires_at, created_at) \
         VALUES (7, 'PAK', 0, 1, 2, 3)",
    )
    .execute(&mut conn);
    assert!(twice.is_err(), "a second outbox row for message 7");
    let orphan = diesel::sql_query(
        "INSERT INTO outbox (message_seq, peer, state, next_attempt_at, expires_at, created_at) \
         VALUES (8, 'PAK', 0, 1, 2, 3)",
    )
    .execute(&mut conn);
    assert!(
        orphan.is_err(),
        "an outbox row for a message that is not kept"
    );

    // And back: the rows stay, the index beside the table returns.
    last(&mut conn, true);
    assert_eq!(
        outbox_rows(&mut conn),
        rows,
        "the reversal changed the rows"
    );
    assert_eq!(outbox_indexes(&mut conn), keyed);
    assert_eq!(migrations::run_pending(&mut conn).unwrap(), 1);
    assert_eq!(outbox_rows(&mut conn), rows);
}

/// The bundled SQLite is built with the flags in `.cargo/config.toml`:
/// multi-thread mode, and plans that never depend on bound values (else
/// every `LIMIT ?` query is re-prepared on each use).
#[test]
fn sqlite_is_built_with_the_flags_we_rely_on() {
    #[derive(QueryableByName)]
    struct Opt {
        #[diesel(sql_type = diesel::sql_types::Text)]
        compile_options: String,
    }
    let (_guard, db) = common::open(Backend::Sqlite);
    let mut conn = db.conn().unwrap();
    let opts: Vec<String> = diesel::sql_query("PRAGMA compile_options")
        .load::<Opt>(&mut *conn)
        .unwrap()
        .into_iter()
        .map(|o| o.compile_options)
        .collect();
    assert!(opts.iter().any(|o| o == "ENABLE_QPSG"), "{opts:?}");
    assert!(opts.iter().any(|o| o == "THREADSAFE=2"), "{opts:?}");
}
