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
//! `Ok` only after the commit that contains it. Writes that need no fsync
//! (delivery leases and outcomes, see [`Writer::write`]) queued in the same
//! batch as synced ones commit first, in a transaction of their own, so the
//! delivery workers waiting on them do not also wait for the disk.
//!
//! A write that fails rolls back to its savepoint and leaves the rest of the
//! batch alone; a failed commit fails every write of its transaction. A
//! write that panics fails every write of its transaction (the connection's
//! transaction state is not trusted after a panic) and the thread goes on
//! with the next.
//!
//! Savepoints cost: SQLite copies every page a write changes into the
//! statement journal (in 1 KiB allocations) and frees it at the release —
//! 5.2 % of the requesting node's CPU and 3.4 % of the answering node's under
//! load. Writes that may run twice ([`Writer::write_rerunnable`], the ones
//! made for every message) therefore run first, together, without them; when
//! one fails (an error, even one its caller caught inside), the transaction
//! is rolled back and they run again each in its own savepoint, so the
//! outcome is the same as with savepoints from the start. Writes that must
//! run once go after them in savepoints. Writes of one batch were queued at
//! the same moment by different callers, so their order is not one anybody
//! waits on.

use super::checkpointer::{self, RestartRequest};
use super::{DbConnection, Manager, StorageError, tx, write_transaction};
use crate::config::SqliteSync;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

/// What the writer thread calls after the batch's commit: `None` when it
/// committed, otherwise why not.
type Completion = Box<dyn FnOnce(Option<String>) + Send>;
/// A write waiting for the writer thread, and whether its commit must reach
/// the disk before its caller hears of it (see [`Writer::write`]).
struct Job {
    work: Work,
    synced: bool,
}

/// A write as the writer thread runs it.
enum Work {
    /// Runs once, in a savepoint of its own.
    Once(Box<dyn FnOnce(&mut DbConnection) -> Completion + Send>),
    /// May run twice: first without a savepoint (the batch is rolled back
    /// and run again when it fails), then in one.
    Rerunnable(RerunnableWork),
}

/// A re-runnable write: with `false` it runs without a savepoint and
/// returns `None` when it failed; with `true` it runs in a savepoint.
type RerunnableWork = Box<dyn FnMut(&mut DbConnection, bool) -> Option<Completion> + Send>;

/// Writes taken into one transaction at most.
const MAX_BATCH: usize = 256;

/// A `BEGIN` or a `COMMIT` (with its fsync) that takes this long is logged:
/// it is not the writes' own work but the disk or a lock held elsewhere, and
/// every write queued behind it waits as long. Usually both take well under
/// a few milliseconds.
const HELD_UP: std::time::Duration = std::time::Duration::from_millis(50);

/// What the writer thread has done so far, for `/metrics`: how many
/// transactions it committed (with and without an fsync), how many writes
/// they carried and how long they took from `BEGIN` to the end of `COMMIT`.
/// Their ratios say how well writes share commits and what a commit costs.
#[derive(Debug, Default)]
pub struct WriterStats {
    commits_synced: AtomicU64,
    commits_unsynced: AtomicU64,
    writes: AtomicU64,
    commit_micros: AtomicU64,
}

/// A reading of [`WriterStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriterCounts {
    /// Transactions committed with the configured `synchronous` (with an
    /// fsync under `full`).
    pub commits_synced: u64,
    /// Transactions of writes that need no fsync, committed without one.
    pub commits_unsynced: u64,
    /// Writes in the committed transactions (one that failed and was
    /// rolled back to its savepoint counts too: it shared the commit).
    pub writes: u64,
    /// Microseconds from `BEGIN` to the end of `COMMIT`, all transactions.
    pub commit_micros: u64,
}

impl WriterStats {
    /// The counts now.
    pub fn read(&self) -> WriterCounts {
        WriterCounts {
            commits_synced: self.commits_synced.load(Ordering::Relaxed),
            commits_unsynced: self.commits_unsynced.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            commit_micros: self.commit_micros.load(Ordering::Relaxed),
        }
    }

    fn committed(&self, synced: bool, writes: usize, took: std::time::Duration) {
        let commits = if synced {
            &self.commits_synced
        } else {
            &self.commits_unsynced
        };
        commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.commit_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// The sending side of a database's writer thread.
#[derive(Debug)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
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
        let stats = Arc::new(WriterStats::default());
        let counted = stats.clone();
        std::thread::Builder::new()
            .name("gsp-sqlite-writer".into())
            .spawn(move || run(&pool, sync, restart.as_deref(), &counted, rx))?;
        Ok(Writer { jobs: tx, stats })
    }

    /// What the writer thread has done so far.
    pub(super) fn stats(&self) -> WriterCounts {
        self.stats.read()
    }

    /// Runs `work` in the next batch; resolves after that batch's commit.
    ///
    /// With `synced` false the write may be committed without an fsync
    /// (`synchronous = normal` for a commit of such writes only, ahead of
    /// the synced writes taken at the same moment): it survives
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
        let work = Work::Once(Box::new(move |conn| {
            // Inside the batch's transaction this is a savepoint.
            let result = write_transaction(conn, work);
            Box::new(move |commit_failed: Option<String>| {
                let _ = tx.send(outcome(result, commit_failed));
            })
        }));
        self.submit(Job { work, synced }, rx).await
    }

    /// [`Writer::write`] for `work` that may run twice, its first run rolled
    /// back (see the module's documentation): it must do nothing but
    /// database writes on the connection it is given.
    pub(super) async fn write_rerunnable<T, E, F>(&self, synced: bool, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
        F: FnMut(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, E>>();
        // Shared by the completions of both runs: the one called answers.
        let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
        let mut work = work;
        let work = Work::Rerunnable(Box::new(move |conn, savepoint| {
            let result = if savepoint {
                write_transaction(conn, &mut work)
            } else {
                match work(conn) {
                    Ok(value) => Ok(value),
                    // Run again in a savepoint, which gives the error.
                    Err(_) => return None,
                }
            };
            let tx = tx.clone();
            Some(Box::new(move |commit_failed: Option<String>| {
                let taken = tx.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(tx) = taken {
                    let _ = tx.send(outcome(result, commit_failed));
                }
            }))
        }));
        self.submit(Job { work, synced }, rx).await
    }

    /// Queues `job`; resolves with what its completion sends on `rx`.
    async fn submit<T, E>(
        &self,
        job: Job,
        rx: tokio::sync::oneshot::Receiver<Result<T, E>>,
    ) -> Result<T, E>
    where
        E: From<StorageError>,
    {
        self.jobs
            .send(job)
            .map_err(|_| E::from(StorageError::Task("the database writer has stopped".into())))?;
        rx.await.map_err(|_| {
            E::from(StorageError::Task(
                "the database writer could not run this write (the node's log says why)".into(),
            ))
        })?
    }
}

/// A write's result as its caller hears it, given how its batch's commit went.
fn outcome<T, E: From<StorageError>>(
    result: Result<T, E>,
    commit_failed: Option<String>,
) -> Result<T, E> {
    match (result, commit_failed) {
        (Ok(_), Some(why)) => Err(E::from(StorageError::Task(format!(
            "the write was not committed: {why}"
        )))),
        (result, _) => result,
    }
}

/// The writer thread: batches until every sender is gone.
fn run(
    pool: &r2d2::Pool<Manager>,
    sync: SqliteSync,
    restart: Option<&RestartRequest>,
    stats: &WriterStats,
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
        // Writes that need no fsync do not wait for one: when a batch holds
        // both kinds, the unsynced writes commit first (`synchronous =
        // normal`) and their callers hear at once; the synced ones commit
        // next with the fsync, which makes the earlier commit durable too.
        let (unsynced, synced): (Vec<Job>, Vec<Job>) = if sync == SqliteSync::Full {
            jobs.into_iter().partition(|j| !j.synced)
        } else {
            (Vec::new(), jobs)
        };
        if !unsynced.is_empty() {
            if let Err(e) = set_synchronous(&mut conn, SqliteSync::Normal) {
                tracing::error!(error = %e, "database writer: cannot relax synchronous");
                continue;
            }
            run_batch(&mut conn, unsynced, |n, took| {
                stats.committed(false, n, took)
            });
            // Setting a pragma touches no file; it fails only on a connection
            // that is broken anyway, which the pool's health check then drops.
            if let Err(e) = set_synchronous(&mut conn, sync) {
                tracing::error!(error = %e, "database writer: cannot restore synchronous");
                continue;
            }
        }
        if !synced.is_empty() {
            run_batch(&mut conn, synced, |n, took| stats.committed(true, n, took));
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

/// One transaction for `jobs`; completes each after the commit, and tells
/// `committed` how many writes it carried and how long it took.
fn run_batch(
    conn: &mut DbConnection,
    jobs: Vec<Job>,
    committed: impl FnOnce(usize, std::time::Duration),
) {
    let started = std::time::Instant::now();
    let writes = jobs.len();
    let mut rerunnable = Vec::new();
    let mut once = Vec::new();
    for job in jobs {
        match job.work {
            Work::Rerunnable(work) => rerunnable.push(work),
            Work::Once(work) => once.push(work),
        }
    }
    if let Err(e) = tx::begin(conn) {
        // Dropping the jobs unrun tells their callers.
        tracing::error!(error = %e, writes, "database writer: cannot begin a transaction");
        return;
    }
    let begin_took = started.elapsed();
    let mut completions = Vec::with_capacity(writes);
    let mut panicked = false;
    if !rerunnable.is_empty() {
        match run_flat(conn, &mut rerunnable) {
            FlatRun::Done(done) => completions = done,
            FlatRun::Panicked => panicked = true,
            FlatRun::Failed => {
                // Nothing of the first runs is kept: their completions are
                // dropped uncalled, and the second run's answer the callers.
                while tx::in_transaction(conn) && tx::rollback(conn).is_ok() {}
                let again = if tx::in_transaction(conn) {
                    Err("the rollback failed".to_owned())
                } else {
                    tx::begin(conn).map_err(|e| e.to_string())
                };
                if let Err(e) = again {
                    // Dropping the jobs unrun tells their callers.
                    tracing::error!(error = %e, writes, "database writer: cannot run a batch again");
                    return;
                }
                for work in &mut rerunnable {
                    match catch_unwind(AssertUnwindSafe(|| work(&mut *conn, true))) {
                        Ok(done) => completions.extend(done),
                        Err(_) => {
                            panicked = true;
                            break;
                        }
                    }
                }
            }
        }
    }
    if !panicked {
        for work in once {
            match catch_unwind(AssertUnwindSafe(|| work(&mut *conn))) {
                Ok(done) => completions.push(done),
                Err(_) => {
                    panicked = true;
                    break;
                }
            }
        }
    }
    let committing = std::time::Instant::now();
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
    let commit_took = committing.elapsed();
    match &outcome {
        Some(why) => tracing::error!(error = %why, writes = completions.len(), "database writer"),
        None => {
            committed(completions.len(), started.elapsed());
            if begin_took >= HELD_UP || commit_took >= HELD_UP {
                tracing::warn!(
                    writes = completions.len(),
                    begin_ms = begin_took.as_millis(),
                    commit_ms = commit_took.as_millis(),
                    "database writer: the database held up a batch (every write queued behind it waited as long)"
                );
            }
        }
    }
    for done in completions {
        done(outcome.clone());
    }
}

/// How the re-runnable writes of a batch went without savepoints.
enum FlatRun {
    /// Every one succeeded: their completions.
    Done(Vec<Completion>),
    /// One failed: the batch must be rolled back and run again.
    Failed,
    /// One panicked.
    Panicked,
}

/// Runs `works` one after the other without savepoints.
fn run_flat(conn: &mut DbConnection, works: &mut [RerunnableWork]) -> FlatRun {
    let flat = tx::Flat::start(conn);
    let mut done = Vec::with_capacity(works.len());
    for work in works {
        match catch_unwind(AssertUnwindSafe(|| work(&mut *conn, false))) {
            Ok(Some(completion)) if !flat.failed() => done.push(completion),
            Ok(_) => return FlatRun::Failed,
            Err(_) => return FlatRun::Panicked,
        }
    }
    FlatRun::Done(done)
}
