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

use super::{DbConnection, Manager};
use diesel::connection::SimpleConnection as _;
use std::sync::mpsc;
use std::time::Duration;

/// The checkpoint thread of one database; it stops when this is dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts the thread with a connection of its own from `manager`,
    /// checkpointing every `interval`.
    pub(super) fn start(manager: &Manager, interval: Duration) -> Result<Checkpointer, String> {
        let mut conn = r2d2::ManageConnection::connect(manager).map_err(|e| e.to_string())?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("gsp-sqlite-checkpoint".into())
            .spawn(move || run(&mut conn, &stopped, interval))
            .map_err(|e| e.to_string())?;
        Ok(Checkpointer { _stop: stop })
    }
}

fn run(conn: &mut DbConnection, stopped: &mpsc::Receiver<()>, interval: Duration) {
    let mut failing = false;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
        match conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
            Ok(()) => failing = false,
            // Logged once per run of failures, not at every interval.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
            }
            Err(_) => {}
        }
    }
}
