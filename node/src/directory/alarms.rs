//! A node's persistent alarms: conditions an operator must look at, such as a
//! directory that served a forged or rolled-back log, or a record for our own
//! Party that we did not make. Stored in the `node_alarms` table, logged at
//! error level when raised, shown (and acknowledged) with `gsp status`.
//!
//! Raising the same alarm (same kind and message) again while it is open
//! only counts another occurrence. Not for: transient problems such as a
//! directory that is briefly unreachable (those are logged and shown as the
//! last refresh error).

use crate::storage::schema::node_alarms;
use crate::storage::{Database, DbConnection, StorageError};
use diesel::prelude::*;
use gsp_federation::UnixMillis;

/// Kinds of alarm raised by the directory work.
pub mod kind {
    /// The directory served something that failed verification (forgery,
    /// rollback, fork, root-key change without a proper record).
    pub const DIRECTORY_REJECTED: &str = "directory_rejected";
    /// The log holds an entry for our own Party that this node did not make.
    pub const OWN_RECORD: &str = "own_record_not_ours";
    /// A peer's gossiped checkpoint is inconsistent with ours.
    pub const PEER_CHECKPOINT: &str = "peer_checkpoint_inconsistent";
}

/// One alarm.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = node_alarms)]
pub struct Alarm {
    /// Id, for acknowledging.
    pub id: i64,
    /// Machine-readable kind (see [`kind`]).
    pub kind: String,
    /// What happened, for the operator.
    pub message: String,
    /// First raised (Unix ms).
    pub raised_at: i64,
    /// Last raised (Unix ms).
    pub last_seen: i64,
    /// How many times it was raised.
    pub occurrences: i64,
    /// When an operator acknowledged it, if they did.
    pub acknowledged_at: Option<i64>,
}

fn now_i64(now: UnixMillis) -> i64 {
    i64::try_from(now.0).unwrap_or(i64::MAX)
}

/// Raises an alarm (blocking): logs it at error level and stores it, or
/// counts another occurrence of the same open alarm.
pub fn raise(
    conn: &mut DbConnection,
    kind: &str,
    message: &str,
    now: UnixMillis,
) -> Result<(), StorageError> {
    tracing::error!(alarm = kind, "{message}");
    let t = now_i64(now);
    let message: String = message.chars().take(2000).collect();
    crate::storage::write_transaction(conn, |c| {
        let open: Option<i64> = node_alarms::table
            .filter(node_alarms::kind.eq(kind))
            .filter(node_alarms::message.eq(&message))
            .filter(node_alarms::acknowledged_at.is_null())
            .select(node_alarms::id)
            .first(c)
            .optional()?;
        match open {
            Some(id) => {
                diesel::update(node_alarms::table.find(id))
                    .set((
                        node_alarms::last_seen.eq(t),
                        node_alarms::occurrences.eq(node_alarms::occurrences + 1),
                    ))
                    .execute(c)?;
            }
            None => {
                diesel::insert_into(node_alarms::table)
                    .values((
                        node_alarms::kind.eq(kind),
                        node_alarms::message.eq(&message),
                        node_alarms::raised_at.eq(t),
                        node_alarms::last_seen.eq(t),
                        node_alarms::occurrences.eq(1i64),
                    ))
                    .execute(c)?;
            }
        }
        Ok::<_, StorageError>(())
    })
}

/// Alarms not yet acknowledged, oldest first.
pub fn open(conn: &mut DbConnection) -> Result<Vec<Alarm>, StorageError> {
    Ok(node_alarms::table
        .filter(node_alarms::acknowledged_at.is_null())
        .order(node_alarms::id.asc())
        .select(Alarm::as_select())
        .load(conn)?)
}

/// Total occurrences per kind, acknowledged or not (the counters `gsp status` shows).
pub fn counts(conn: &mut DbConnection) -> Result<Vec<(String, i64)>, StorageError> {
    let rows: Vec<(String, i64)> = node_alarms::table
        .select((node_alarms::kind, node_alarms::occurrences))
        .load(conn)?;
    let mut out: std::collections::BTreeMap<String, i64> = Default::default();
    for (k, n) in rows {
        *out.entry(k).or_default() += n;
    }
    Ok(out.into_iter().collect())
}

/// Acknowledges an alarm; false if there is no open alarm with that id.
pub fn acknowledge(
    conn: &mut DbConnection,
    id: i64,
    now: UnixMillis,
) -> Result<bool, StorageError> {
    let n = diesel::update(
        node_alarms::table
            .find(id)
            .filter(node_alarms::acknowledged_at.is_null()),
    )
    .set(node_alarms::acknowledged_at.eq(Some(now_i64(now))))
    .execute(conn)?;
    Ok(n == 1)
}

/// Where alarms go: a database, or nowhere (tests of pure logic, tools).
#[derive(Debug, Clone, Default)]
pub struct AlarmSink(Option<Database>);

impl AlarmSink {
    /// Alarms stored in `db`.
    pub fn new(db: Database) -> Self {
        Self(Some(db))
    }

    /// Raises an alarm from blocking code.
    pub fn raise_blocking(&self, kind: &str, message: &str) {
        match &self.0 {
            Some(db) => {
                let stored = db
                    .conn()
                    .and_then(|mut c| raise(&mut c, kind, message, UnixMillis::now()));
                if let Err(e) = stored {
                    tracing::error!(alarm = kind, error = %e, "{message} (could not store the alarm)");
                }
            }
            None => tracing::error!(alarm = kind, "{message}"),
        }
    }

    /// Raises an alarm from async code (the database work runs off the executor).
    pub async fn raise(&self, kind: &str, message: &str) {
        let (sink, kind, message) = (self.clone(), kind.to_owned(), message.to_owned());
        let _ = tokio::task::spawn_blocking(move || sink.raise_blocking(&kind, &message)).await;
    }
}
