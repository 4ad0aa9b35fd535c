//! Group commit for SQLite: one writer thread per database runs every write
//! submitted through [`Database::write`](super::Database::write), taking all
//! the writes queued while the previous batch ran into one `BEGIN IMMEDIATE`
//! … `COMMIT`, each write inside its own savepoint.
//!
//! Why: SQLite commits one transaction at a time, and with `synchronous =
//! full` each commit waits for an fsync of the WAL. Separate transactions for
//! every composed request, arrival, answer and delivery outcome cap a node at
//! its disk's fsyncs per second, and writers that find the file locked sleep in
//! SQLite's busy handler while the CPU idles. One commit for a batch pays the
//! fsync once for all of it. Durability is unchanged: a write's caller hears
//! `Ok` only after the commit that contains it.
//!
//! A write that fails rolls back to its savepoint and leaves the rest of the
//! batch alone; a failed commit fails every write of the batch. A write that
//! panics fails its whole batch (the connection's transaction state is not
//! trusted after a panic) and the thread goes on with the next.

use super::checkpointer::{self, RestartRequest};
use super::{DbConnection, Manager, StorageError, tx, write_transaction};
use crate::config::SqliteSync;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, mpsc};

/// What the writer thread calls after the batch's commit: `None` when it
/// committed, otherwise why not.
type Completion = Box<dyn FnOnce(Option<String>) + Send>;
/// A write waiting for the writer thread, and whether its commit must reach
/// the disk before its caller hears of it (see [`Writer::write`]).
struct Job {
    work: Box<dyn FnOnce(&mut DbConnection) -> Completion + Send>,
    synced: bool,
}

/// Writes taken into one transaction at most.
const MAX_BATCH: usize = 256;

/// The sending side of a database's writer thread.
#[derive(Debug)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread, taking connections from `pool`; it ends when
    /// the last handle to the `Writer` is dropped.
    /// `sync` is the connections' configured `synchronous`.
    /// `restart`, when WAL checkpoints run on a thread of their own, carries
    /// that thread's requests to finish a checkpoint between two batches (see
    /// `checkpointer`).
    pub(super) fn start(
        pool: r2d2::Pool<Manager>,
        sync: SqliteSync,
        restart: Option<Arc<RestartRequest>>,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("gsp-sqlite-writer".into())
            .spawn(move || run(&pool, sync, restart.as_deref(), rx))?;
        Ok(Writer { jobs: tx })
    }

    /// Runs `work` in the next batch; resolves after that batch's commit.
    ///
    /// With `synced` false the write may be committed without an fsync
    /// (`synchronous = normal` for a batch of such writes only): it survives
    /// a crash of the process but may be lost with the last moments before a
    /// power failure. For writes whose loss then is harmless — a delivery
    /// lease, a delivery outcome the peer confirms again on the next attempt.
    /// The WAL is written in order, so the next synced commit makes them
    /// durable too.
    pub(super) async fn write<T, E, F>(&self, synced: bool, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let work: Box<dyn FnOnce(&mut DbConnection) -> Completion + Send> = Box::new(move |conn| {
            // Inside the batch's transaction this is a savepoint.
            let result = write_transaction(conn, work);
            Box::new(move |commit_failed: Option<String>| {
                let out = match (result, commit_failed) {
                    (Ok(_), Some(why)) => Err(E::from(StorageError::Task(format!(
                        "the write was not committed: {why}"
                    )))),
                    (result, _) => result,
                };
                let _ = tx.send(out);
            })
        });
        self.jobs
            .send(Job { work, synced })
            .map_err(|_| E::from(StorageError::Task("the database writer has stopped".into())))?;
        rx.await.map_err(|_| {
            E::from(StorageError::Task(
                "the database writer could not run this write (the node's log says why)".into(),
            ))
        })?
    }
}

/// The writer thread: batches until every sender is gone.
fn run(
    pool: &r2d2::Pool<Manager>,
    sync: SqliteSync,
    restart: Option<&RestartRequest>,
    rx: mpsc::Receiver<Job>,
) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut conn = match pool.get() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "database writer: no connection");
                // Dropping the jobs tells their callers the write did not happen.
                continue;
            }
        };
        // Only a batch of unsynced writes relaxes `synchronous`, and only
        // for its own commit.
        let relax = sync == SqliteSync::Full && !jobs.iter().any(|j| j.synced);
        if relax && let Err(e) = set_synchronous(&mut conn, SqliteSync::Normal) {
            tracing::error!(error = %e, "database writer: cannot relax synchronous");
            continue;
        }
        run_batch(&mut conn, jobs);
        // Setting a pragma touches no file; it fails only on a connection
        // that is broken anyway, which the pool's health check then drops.
        if relax && let Err(e) = set_synchronous(&mut conn, sync) {
            tracing::error!(error = %e, "database writer: cannot restore synchronous");
        }
        // Between two batches nothing is appended to the WAL: a checkpoint
        // here can copy every frame, and the next batch starts the log over.
        if restart.is_some_and(RestartRequest::take)
            && let Err(e) = checkpointer::passive(&mut conn)
        {
            tracing::warn!(error = %e, "database writer: WAL checkpoint failed; the log starts over later");
        }
    }
}

fn set_synchronous(conn: &mut DbConnection, sync: SqliteSync) -> diesel::QueryResult<()> {
    use diesel::connection::SimpleConnection as _;
    conn.batch_execute(&format!("PRAGMA synchronous = {}", sync.as_str()))
}

/// One transaction for `jobs`; completes each after the commit.
fn run_batch(conn: &mut DbConnection, jobs: Vec<Job>) {
    if let Err(e) = tx::begin(conn) {
        // Dropping the jobs unrun tells their callers.
        tracing::error!(error = %e, writes = jobs.len(), "database writer: cannot begin a transaction");
        return;
    }
    let mut completions = Vec::with_capacity(jobs.len());
    let mut panicked = false;
    for job in jobs {
        match catch_unwind(AssertUnwindSafe(|| (job.work)(&mut *conn))) {
            Ok(done) => completions.push(done),
            Err(_) => {
                panicked = true;
                break;
            }
        }
    }
    let outcome = if panicked {
        // The panicking write may have left its savepoint open: unwind
        // savepoints and the transaction itself.
        while tx::in_transaction(conn) && tx::rollback(conn).is_ok() {}
        Some("another write in the same transaction panicked; rolled back".to_owned())
    } else {
        match tx::commit(conn) {
            Ok(()) => None,
            Err(e) => {
                let _ = tx::rollback(conn);
                Some(format!("commit failed: {e}"))
            }
        }
    };
    if let Some(why) = &outcome {
        tracing::error!(error = %why, writes = completions.len(), "database writer");
    }
    for done in completions {
        done(outcome.clone());
    }
}
