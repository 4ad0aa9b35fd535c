//! `Database::write`: on SQLite many writes share one commit (group commit),
//! each in its own savepoint, or — `write_rerunnable` — all without one and
//! again each in one when any fails; on PostgreSQL each is a transaction.
//! Either way a write that fails leaves nothing, the others are kept, a
//! caller hears `Ok` only once its write is committed, and a panicking write
//! does not stop the writes after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use diesel::prelude::*;
use gsp_node::for_each_backend;
use gsp_node::storage::{Database, DbConnection, StorageError, write_transaction};

fn create_table(db: &Database) {
    let mut conn = db.conn().unwrap();
    diesel::sql_query("CREATE TABLE gc_test (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .execute(&mut conn)
        .unwrap();
}

fn insert(conn: &mut DbConnection, id: i32, v: &str) -> Result<(), StorageError> {
    diesel::sql_query(format!("INSERT INTO gc_test (id, v) VALUES ({id}, '{v}')")).execute(conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    id: i32,
}

/// Row ids, read on a fresh pooled connection (it sees committed data only).
fn ids(db: &Database) -> Vec<i32> {
    let mut conn = db.conn().unwrap();
    diesel::sql_query("SELECT id FROM gc_test ORDER BY id")
        .load::<Row>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `later` while an unsynced write (row 1, "busy") holds the writer
/// for 200 ms, so that the writes `later` submits queue behind it and are
/// taken as one batch: they are submitted once it has started (and it is
/// unsynced itself, so it shares no commit with a synced write of theirs).
async fn behind_a_busy_writer<T>(db: &Database, later: impl std::future::Future<Output = T>) -> T {
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let busy = db.write_unsynced(move |c| {
        let _ = started.send(());
        std::thread::sleep(std::time::Duration::from_millis(200));
        insert(c, 1, "busy")
    });
    let later = async {
        running.await.unwrap();
        later.await
    };
    let (busy, out) = tokio::join!(busy, later);
    busy.unwrap();
    out
}

/// How a write is submitted.
#[derive(Clone, Copy)]
enum Via {
    Write,
    Rerunnable,
    UnsyncedRerunnable,
}

/// 300 writes at once (`via` says how each is submitted), each inserting
/// its row, a third of them then refusing: exactly the others are kept, and
/// each caller hears its own outcome, a success only once it is committed.
/// Returns how many times each write ran.
fn three_hundred_writes(db: &Database, via: impl Fn(i32) -> Via) -> Vec<usize> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..300).map(|_| AtomicUsize::new(0)).collect());
    let results: Vec<(i32, bool)> = runtime().block_on(async {
        let mut tasks = Vec::new();
        for id in 0..300 {
            let (db, runs, via) = (db.clone(), runs.clone(), via(id));
            tasks.push(tokio::spawn(async move {
                let work = move |c: &mut DbConnection| {
                    runs[id as usize].fetch_add(1, Ordering::Relaxed);
                    insert(c, id, "kept")?;
                    if id % 3 == 0 {
                        // Inserted, then refused: must leave nothing.
                        return Err(StorageError::Task(format!("refused {id}")));
                    }
                    Ok(id)
                };
                let r = match via {
                    Via::Write => db.write(work).await,
                    Via::Rerunnable => db.write_rerunnable(work).await,
                    Via::UnsyncedRerunnable => db.write_unsynced_rerunnable(work).await,
                };
                match r {
                    Ok(got) => {
                        assert_eq!(got, id);
                        // Committed before we heard of it: another
                        // connection sees it now.
                        assert!(
                            ids(&db).contains(&id),
                            "write {id} reported before its commit"
                        );
                        (id, true)
                    }
                    Err(e) => {
                        assert!(e.to_string().contains(&format!("refused {id}")), "{e}");
                        (id, false)
                    }
                }
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let expected: Vec<i32> = results
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(expected.len(), 200);
    assert_eq!(ids(db), expected);
    runs.iter().map(|r| r.load(Ordering::Relaxed)).collect()
}

for_each_backend! {
    fn concurrent_writes_keep_exactly_the_successful_ones(backend: Backend) {
        let (_guard, db) = common::open(backend);
        create_table(&db);
        let runs = three_hundred_writes(&db, |_| Via::Write);
        assert!(runs.iter().all(|&r| r == 1));
    }

    /// A write that catches the failure of a transaction inside it keeps
    /// the rest of its work and nothing of the failed part. A re-runnable
    /// one ran first without savepoints on SQLite, where the failed part
    /// cannot be undone alone, so it runs a second time, in savepoints; on
    /// PostgreSQL, and when nothing fails, it runs once.
    fn a_failed_inner_transaction_rolls_back_only_itself(backend: Backend) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (_guard, db) = common::open(backend);
        create_table(&db);
        let runs: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
        let catching = |first: i32, counter: usize| {
            let runs = runs.clone();
            move |c: &mut DbConnection| {
                runs[counter].fetch_add(1, Ordering::Relaxed);
                insert(c, first, "outer")?;
                let inner: Result<(), StorageError> = write_transaction(c, |c| {
                    insert(c, first + 1, "inner")?;
                    Err(StorageError::Task("inner refused".into()))
                });
                assert!(inner.is_err());
                write_transaction(c, |c| insert(c, first + 2, "second inner"))
            }
        };
        runtime().block_on(async {
            db.write(catching(1, 0)).await.unwrap();
            db.write_rerunnable(catching(11, 1)).await.unwrap();
            let fine = runs.clone();
            db.write_rerunnable(move |c| {
                fine[2].fetch_add(1, Ordering::Relaxed);
                write_transaction(c, |c| insert(c, 21, "fine"))
            })
            .await
            .unwrap();
        });
        assert_eq!(ids(&db), vec![1, 3, 11, 13, 21]);
        let rerun = match backend {
            gsp_node::storage::Backend::Sqlite => 2,
            gsp_node::storage::Backend::Postgres => 1,
        };
        let counted: Vec<usize> = runs.iter().map(|r| r.load(Ordering::Relaxed)).collect();
        assert_eq!(counted, vec![1, rerun, 1]);
    }

    fn a_panicking_write_fails_and_the_next_write_succeeds(backend: Backend) {
        let (_guard, db) = common::open(backend);
        create_table(&db);
        runtime().block_on(async {
            let r = db
                .write(|c| -> Result<(), StorageError> {
                    insert(c, 1, "before the panic")?;
                    panic!("a bug in a write");
                })
                .await;
            assert!(r.is_err(), "a panicking write must not report success");
            db.write(|c| insert(c, 2, "after")).await.unwrap();
            // The same for a re-runnable write (run without a savepoint).
            let r = db
                .write_rerunnable(|c| -> Result<(), StorageError> {
                    insert(c, 3, "before the panic")?;
                    panic!("a bug in a write");
                })
                .await;
            assert!(r.is_err(), "a panicking write must not report success");
            db.write_rerunnable(|c| insert(c, 4, "after")).await.unwrap();
        });
        assert_eq!(ids(&db), vec![2, 4]);
    }

    fn a_constraint_violation_fails_only_its_own_write(backend: Backend) {
        let (_guard, db) = common::open(backend);
        create_table(&db);
        let rt = runtime();
        rt.block_on(async {
            db.write(|c| insert(c, 7, "first")).await.unwrap();
            let (dup, other) = tokio::join!(
                db.write(|c| insert(c, 7, "duplicate key")),
                db.write(|c| insert(c, 8, "other")),
            );
            assert!(dup.is_err());
            other.unwrap();
            // The same among re-runnable writes, with an ordinary one.
            let (dup, other, once) = tokio::join!(
                db.write_rerunnable(|c| insert(c, 7, "duplicate key")),
                db.write_unsynced_rerunnable(|c| insert(c, 9, "other")),
                db.write(|c| insert(c, 10, "once")),
            );
            assert!(dup.is_err());
            once.unwrap();
            other.unwrap();
        });
        assert_eq!(ids(&db), vec![7, 8, 9, 10]);
    }

    /// Writes queued together with synced ones are committed on their own
    /// first when they need no fsync (on SQLite), so they neither wait for
    /// the fsync nor share the fate of a synced write that panics; on
    /// PostgreSQL every write is its own transaction anyway.
    fn unsynced_writes_do_not_share_a_synced_write_s_commit(backend: Backend) {
        let (_guard, db) = common::open(backend);
        create_table(&db);
        let (panicked, unsynced, rerunnable) = runtime().block_on(behind_a_busy_writer(&db, async {
            tokio::join!(
                db.write(|c| -> Result<(), StorageError> {
                    insert(c, 2, "synced, then a panic")?;
                    panic!("a bug in a synced write");
                }),
                db.write_unsynced(|c| insert(c, 3, "unsynced")),
                db.write_unsynced_rerunnable(|c| insert(c, 4, "unsynced, re-runnable")),
            )
        }));
        assert!(panicked.is_err(), "a panicking write must not report success");
        unsynced.unwrap();
        rerunnable.unwrap();
        assert_eq!(ids(&db), vec![1, 3, 4]);
    }

    /// The SQLite writer counts its commits (with and without an fsync),
    /// the writes they carried and the time they took, for `/metrics`;
    /// PostgreSQL has no such writer.
    fn the_writer_counts_its_commits_and_their_writes(backend: Backend) {
        let (_guard, db) = common::open(backend);
        create_table(&db);
        let Some(before) = db.writer_counts() else {
            assert_eq!(backend, gsp_node::storage::Backend::Postgres);
            return;
        };
        // One batch, which commits twice (unsynced first, then synced).
        let (a, b, c, d, e) = runtime().block_on(behind_a_busy_writer(&db, async {
            tokio::join!(
                db.write(|c| insert(c, 2, "synced")),
                db.write_rerunnable(|c| insert(c, 3, "synced, re-runnable")),
                db.write(|c| insert(c, 4, "synced")),
                db.write_unsynced(|c| insert(c, 5, "unsynced")),
                db.write_unsynced_rerunnable(|c| insert(c, 6, "unsynced, re-runnable")),
            )
        }));
        for r in [a, b, c, d, e] {
            r.unwrap();
        }
        let after = db.writer_counts().unwrap();
        assert_eq!(after.commits_unsynced - before.commits_unsynced, 2);
        assert_eq!(after.commits_synced - before.commits_synced, 1);
        assert_eq!(after.writes - before.writes, 6);
        // The busy write's transaction alone lasted its 200 ms.
        assert!(after.commit_micros - before.commit_micros >= 200_000);
    }

    /// Unsynced writes (delivery leases and outcomes) commit like any other
    /// and leave every connection durable for the writes after them.
    fn unsynced_writes_commit_and_leave_connections_synced(backend: Backend) {
        let (_guard, db) = common::open(backend);
        create_table(&db);
        let durable_setting = match backend {
            gsp_node::storage::Backend::Sqlite => "SELECT CAST(synchronous AS TEXT) AS value FROM pragma_synchronous",
            gsp_node::storage::Backend::Postgres => "SELECT setting AS value FROM pg_settings WHERE name = 'synchronous_commit'",
        };
        let before = ask_every_connection(&db, durable_setting);
        assert!(before.iter().all(|v| v == "2" || v == "on"), "{before:?}");
        let rt = runtime();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for id in 0..200 {
                let db = db.clone();
                tasks.push(tokio::spawn(async move {
                    if id % 3 == 0 {
                        db.write(move |c| insert(c, id, "synced")).await
                    } else {
                        db.write_unsynced(move |c| insert(c, id, "unsynced")).await
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap().unwrap();
            }
        });
        // Alone in their batches too.
        rt.block_on(async {
            for id in 200..210 {
                db.write_unsynced(move |c| insert(c, id, "alone")).await.unwrap();
            }
        });
        assert_eq!(ids(&db), (0..210).collect::<Vec<_>>());
        assert_eq!(ask_every_connection(&db, durable_setting), before);
    }

    /// Re-runnable writes (on SQLite run without savepoints, and again each
    /// in one when any fails) mixed with ordinary ones: the same outcome, and
    /// no write runs more than twice, an ordinary one only once.
    fn rerunnable_writes_keep_exactly_the_successful_ones(backend: Backend) {
        let (_guard, db) = common::open(backend);
        create_table(&db);
        let via = |id: i32| match id % 4 {
            0 => Via::Write,
            1 => Via::UnsyncedRerunnable,
            _ => Via::Rerunnable,
        };
        let runs = three_hundred_writes(&db, via);
        assert!(runs.iter().all(|r| (1..=2).contains(r)), "{runs:?}");
        assert!(runs.iter().step_by(4).all(|&r| r == 1), "{runs:?}");
    }

}

/// With SQLite, pages written go to the WAL and a checkpoint thread copies
/// them into the database file (no commit pays for a checkpoint itself).
#[test]
fn the_checkpoint_thread_moves_the_wal_into_the_database_file() {
    let (guard, db) = common::open(gsp_node::storage::Backend::Sqlite);
    let gsp_node::storage::DatabaseUrl::Sqlite(path) = guard.url.clone() else {
        panic!("a SQLite test database");
    };
    create_table(&db);
    let before = std::fs::metadata(&path).unwrap().len();
    let rt = runtime();
    let filler = "x".repeat(4000);
    rt.block_on(async {
        for id in 0..1000 {
            let v = filler.clone();
            db.write(move |c| insert(c, id, &v)).await.unwrap();
        }
    });
    // 4 MB went into the WAL; the database file grows only by checkpoints.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let size = std::fs::metadata(&path).unwrap().len();
        if size >= before + 4_000_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file stayed at {size} bytes (was {before}): no checkpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(ids(&db).len(), 1000);
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// Every connection the pool holds, each asked `sql` (whose
/// one column is named `value`).
fn ask_every_connection(db: &Database, sql: &str) -> Vec<String> {
    let size = gsp_node::config::Config::default().database.pool_size;
    let mut conns: Vec<_> = (0..size).map(|_| db.conn().unwrap()).collect();
    conns
        .iter_mut()
        .map(|c| {
            diesel::sql_query(sql)
                .get_result::<Setting>(&mut **c)
                .unwrap()
                .value
        })
        .collect()
}

/// SQLite's WAL starts over while writes keep coming: the checkpoint thread
/// alone never finds the log fully copied (the writer appends meanwhile), so
/// without the writer's own checkpoint between batches the file grows by
/// everything written (here 200 MiB); with it, it starts over once it passes
/// the 16 MiB at which a restart is asked for. How far past depends on how
/// soon the checkpoint thread gets a core — 56 MB was seen once on a busy CI
/// machine with 100 MiB written — so the bound is half of what was written,
/// which a log that never starts over cannot meet.
#[test]
fn the_wal_starts_over_under_continuous_writes() {
    use gsp_node::storage::{Backend, DatabaseUrl, testing::TestDb};
    let test_db = TestDb::new(Backend::Sqlite).unwrap();
    let mut settings = gsp_node::config::Config::default().database;
    // Several checkpoint passes while the writes go on.
    settings.sqlite_checkpoint_ms = 10;
    let db = Database::open(&test_db.url, &settings).unwrap();
    const WRITES_PER_WRITER: i64 = 100;
    const WRITTEN: u64 = 8 * WRITES_PER_WRITER as u64 * 256 * 1024;
    let DatabaseUrl::Sqlite(path) = &test_db.url else {
        unreachable!("a SQLite test database")
    };
    let wal = path.with_file_name("gsp.db-wal");
    {
        let mut conn = db.conn().unwrap();
        diesel::sql_query("CREATE TABLE wal_test (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
            .execute(&mut conn)
            .unwrap();
    }
    let rt = runtime();
    let size = rt.block_on(async {
        let mut tasks = Vec::new();
        // 8 writers × 100 writes × 256 KiB = 200 MiB, one after another
        // without pause.
        for t in 0..8 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..WRITES_PER_WRITER {
                    let id = t * 1000 + i;
                    db.write(move |c| -> Result<(), StorageError> {
                        diesel::sql_query(format!(
                            "INSERT INTO wal_test (id, v) VALUES ({id}, randomblob(262144))"
                        ))
                        .execute(c)?;
                        Ok(())
                    })
                    .await
                    .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0)
    });
    let rows: i64 = {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = db.conn().unwrap();
        diesel::sql_query("SELECT count(*) AS n FROM wal_test")
            .get_result::<N>(&mut conn)
            .unwrap()
            .n
    };
    assert_eq!(rows, 8 * WRITES_PER_WRITER, "every write kept");
    assert!(
        size < WRITTEN / 2,
        "the WAL is {size} bytes after {WRITTEN} bytes of writes: it did not start over"
    );
}

/// Log lines written by the process's subscriber, kept for a test to read.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// With SQLite, a batch the database holds up — here another connection
/// keeps the write lock for 300 ms, so the writer's `BEGIN IMMEDIATE` waits
/// — is logged with how long it waited: every write queued behind it waited
/// as long, and that is the disk's or a lock's doing, not the writes'. The
/// write itself goes through once the lock is free.
#[test]
fn a_batch_the_database_holds_up_is_logged() {
    use gsp_node::storage::{Backend, DatabaseUrl};
    let captured = Captured::default();
    let into = captured.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || into.clone())
        .init();
    let (guard, db) = common::open(Backend::Sqlite);
    let DatabaseUrl::Sqlite(path) = guard.url.clone() else {
        panic!("a SQLite test database");
    };
    create_table(&db);
    let rt = runtime();
    rt.block_on(db.write(|c| insert(c, 1, "quick"))).unwrap();

    let mut other = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    diesel::sql_query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        diesel::sql_query("COMMIT").execute(&mut other).unwrap();
    });
    rt.block_on(db.write(|c| insert(c, 2, "held"))).unwrap();
    holder.join().unwrap();
    assert_eq!(ids(&db), vec![1, 2]);

    // A line only for a batch held up past the threshold (the quick write
    // has none unless this machine's disk itself took that long), and one
    // that says how long the held one waited.
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let field = |line: &str, name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    let held: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("held up a batch"))
        .collect();
    for line in &held {
        assert!(line.contains("WARN"), "{line}");
        assert!(
            field(line, "begin_ms=") >= 50 || field(line, "commit_ms=") >= 50,
            "{line}"
        );
    }
    assert!(
        held.iter()
            .any(|l| field(l, "begin_ms=") >= 200 && l.contains("writes=1")),
        "no line about the batch held for 300 ms in:\n{text}"
    );
}
