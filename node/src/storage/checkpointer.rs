//! WAL checkpoints for SQLite on a thread of their own.
//!
//! By default SQLite checkpoints inside the commit that pushes the WAL past
//! 1,000 pages: that commit copies the pages into the database file and
//! fsyncs it before it returns. On a node that commit is usually the
//! group-commit writer's ([`super::writer`]), so every write queued behind it
//! waits for the checkpoint — the slowest deliveries and arrivals of a busy
//! node. Here every connection has `wal_autocheckpoint = 0` and this thread,
//! with its own connection, runs a `PASSIVE` checkpoint every
//! `[database] sqlite_checkpoint_ms`: it copies what no reader still needs, never blocks a
//! writer or reader, and costs nothing when the WAL has no new frames.
//! SQLite still checkpoints and removes the WAL when the last connection
//! closes.
//!
//! A passive checkpoint alone never lets the WAL start over on a node that
//! writes without pause: SQLite starts the log from the beginning only at a
//! write that finds every frame already copied, and the group-commit writer
//! appends new frames while the checkpoint copies the old ones. The WAL then
//! grows for as long as the load lasts (690 MB in a few minutes of
//! benchmark, measured, and more across restarts), taking disk space and
//! page cache and making every commit append to a growing file. So when a
//! pass finds more than [`RESTART_FRAMES`] frames in the log, this thread
//! asks the writer ([`RestartRequest`]) to run one more passive checkpoint
//! itself between two batches: nothing can be appended meanwhile, that
//! checkpoint copies only the few frames written since this thread's pass,
//! and the writer's next transaction starts the log over.

use super::{DbConnection, Manager};
use diesel::QueryResult;
use diesel::prelude::*;
use diesel::sql_types::Integer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// Frames in the WAL (16 MiB of 4 KiB pages) above which the writer is asked
/// to let the log start over.
pub(super) const RESTART_FRAMES: i32 = 4096;

/// The checkpoint thread's request to the writer thread: finish a
/// checkpoint between two batches so that the next one starts the WAL over.
#[derive(Debug, Default)]
pub(super) struct RestartRequest(AtomicBool);

impl RestartRequest {
    /// Asks the writer to checkpoint after its current batch.
    fn ask(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether a checkpoint was asked for; clears the request (the checkpoint
    /// thread asks again if the log is still long at its next pass).
    pub(super) fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// What `PRAGMA wal_checkpoint` says of the log (its other columns, `busy`
/// and `checkpointed`, are not needed here).
#[derive(Debug, QueryableByName)]
pub(super) struct CheckpointResult {
    /// Frames in the WAL.
    #[diesel(sql_type = Integer)]
    pub log: i32,
}

/// Runs a passive checkpoint: copies what no reader still needs, waits for
/// nobody.
pub(super) fn passive(conn: &mut DbConnection) -> QueryResult<CheckpointResult> {
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(conn)
}

/// The checkpoint thread of one database; it stops when this is dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts the thread with a connection of its own from `manager`,
    /// checkpointing every `interval` and asking the writer through `restart`
    /// when the log has grown long.
    pub(super) fn start(
        manager: &Manager,
        interval: Duration,
        restart: Arc<RestartRequest>,
    ) -> Result<Checkpointer, String> {
        let mut conn = r2d2::ManageConnection::connect(manager).map_err(|e| e.to_string())?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("gsp-sqlite-checkpoint".into())
            .spawn(move || run(&mut conn, &stopped, interval, &restart))
            .map_err(|e| e.to_string())?;
        Ok(Checkpointer { _stop: stop })
    }
}

fn run(
    conn: &mut DbConnection,
    stopped: &mpsc::Receiver<()>,
    interval: Duration,
    restart: &RestartRequest,
) {
    let mut failing = false;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
        match passive(conn) {
            Ok(done) => {
                failing = false;
                if done.log >= RESTART_FRAMES {
                    restart.ask();
                }
            }
            // Logged once per run of failures, not at every interval.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
            }
            Err(_) => {}
        }
    }
}
