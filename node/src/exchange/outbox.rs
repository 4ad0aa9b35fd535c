//! The durable outbox: which sealed messages still have to reach which peer,
//! when to try next, and what happened.
//!
//! Rows are written in the same transaction as the message they carry
//! (`store`). Delivery workers *claim* due rows for a short lease — with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, under SQLite's write lock
//! otherwise — so two `gsp serve` instances on one database never send the
//! same message at the same time; a crashed worker's lease simply runs out.
//! Retries back off exponentially with jitter, capped; a message still
//! undelivered at its expiry fails visibly, with the reason, on its case.

use super::kept::{CaseMoved, MessageDelivered, OutboxSettled};
use super::model::{CaseState, Direction, MessageKind, MessageState, OutboxState};
use crate::config::ExchangeSettings;
use crate::storage::Direct as _;
use crate::storage::schema::{audit, cases, messages, outbox};
use crate::storage::{DbConnection, write_transaction};
use diesel::prelude::*;
use rand::RngExt;
use serde::Serialize;
use serde_json::json;

/// A claim taken in the write that queues a message, for a delivery worker
/// with room for it: the outbox row is inserted claimed by `instance` until
/// `until`, and the write's caller hands the message to the worker after
/// the commit (see `federation::wake::Place`) — no claim of its own to
/// commit, no wait for it.
#[derive(Debug, Clone)]
pub struct QueueClaim {
    /// The `gsp serve` instance whose worker takes the message.
    pub instance: String,
    /// When the claim lapses if the message was not delivered by then (an
    /// instance that crashed): the message is then claimed as any other.
    pub until: i64,
    /// The message travels in the response to its request (SPEC.md §15.6),
    /// not through a worker: it is not due before `until` either, when it
    /// is sent on its own unless its receipt came back first.
    pub in_response: bool,
}

/// A message to deliver now.
#[derive(Debug, Clone)]
pub struct Due {
    /// Outbox key (the message's row).
    pub seq: i64,
    /// The peer Party.
    pub peer: String,
    /// The message id.
    pub message_id: String,
    /// The sealed envelope (shared, not copied, by each attempt's request).
    pub envelope: actix_web::web::Bytes,
    /// Attempts made before this one.
    pub attempts: i32,
}

#[derive(QueryableByName)]
struct Seq {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    message_seq: i64,
}

#[derive(QueryableByName)]
struct PeerRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    peer: String,
}

/// Peers that have messages due now.
///
/// Skips from one peer with pending messages to the next through the
/// `outbox_queue` index and asks each whether one is due (`outbox_due`):
/// a few index seeks per peer, however long the queues are — a plain
/// `SELECT DISTINCT` read every pending row, and this runs whenever a
/// message is queued.
pub fn peers_due(conn: &mut DbConnection, now: i64) -> QueryResult<Vec<String>> {
    // `$1`/`$2` are numbered parameters on both backends (SQLite numbers
    // `$NAME` parameters in order of first appearance).
    let rows: Vec<PeerRow> = diesel::sql_query(
        "WITH RECURSIVE p(peer) AS ( \
           SELECT (SELECT MIN(peer) FROM outbox WHERE state = $1) \
           UNION ALL \
           SELECT (SELECT MIN(o.peer) FROM outbox o WHERE o.state = $1 AND o.peer > p.peer) \
             FROM p WHERE p.peer IS NOT NULL) \
         SELECT peer FROM p WHERE peer IS NOT NULL AND EXISTS ( \
           SELECT 1 FROM outbox o WHERE o.state = $1 AND o.peer = p.peer AND o.next_attempt_at <= $2)",
    )
    .bind::<diesel::sql_types::SmallInt, _>(OutboxState::Pending.to_i16())
    .bind::<diesel::sql_types::BigInt, _>(now)
    .load_direct(conn)?;
    Ok(rows.into_iter().map(|r| r.peer).collect())
}

/// The earliest time anything pending becomes due, if anything is pending.
pub fn next_due(conn: &mut DbConnection) -> QueryResult<Option<i64>> {
    outbox::table
        .filter(outbox::state.eq(OutboxState::Pending.to_i16()))
        .select(diesel::dsl::min(outbox::next_attempt_at))
        .first_direct(conn)
}

/// Claims up to `limit` due messages for `peer`, oldest first, for `lease_ms`.
pub fn claim(
    conn: &mut DbConnection,
    instance: &str,
    peer: &str,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> QueryResult<Vec<Due>> {
    let until = now + lease_ms;
    let seqs: Vec<i64> = match conn {
        DbConnection::Postgresql(c) => diesel::sql_query(
            "UPDATE outbox SET claimed_by = $1, claimed_until = $2 WHERE message_seq IN ( \
               SELECT message_seq FROM outbox WHERE state = $3 AND peer = $4 AND next_attempt_at <= $5 \
                 AND (claimed_until IS NULL OR claimed_until < $5) \
               ORDER BY message_seq LIMIT $6 FOR UPDATE SKIP LOCKED) \
             RETURNING message_seq",
        )
        .bind::<diesel::sql_types::Text, _>(instance)
        .bind::<diesel::sql_types::BigInt, _>(until)
        .bind::<diesel::sql_types::SmallInt, _>(OutboxState::Pending.to_i16())
        .bind::<diesel::sql_types::Text, _>(peer)
        .bind::<diesel::sql_types::BigInt, _>(now)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .load::<Seq>(c)?
        .into_iter()
        .map(|s| s.message_seq)
        .collect(),
        DbConnection::Sqlite(c) => SqliteClaim {
            instance,
            until,
            state: OutboxState::Pending.to_i16(),
            peer,
            now,
            limit,
        }
        .load::<i64>(c)?,
    };
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    type Row = (i64, String, String, Option<Vec<u8>>, i32);
    let columns = (
        outbox::message_seq,
        outbox::peer,
        messages::message_id,
        messages::envelope,
        outbox::attempts,
    );
    let mut rows: Vec<Row> = match conn {
        DbConnection::Postgresql(c) => outbox::table
            .inner_join(messages::table)
            .filter(outbox::message_seq.eq_any(&seqs))
            .select(columns)
            .load(c)?,
        // One kept statement per row: SQLite's `IN (…)` of a varying length
        // is prepared again at every call, which cost more than the reads.
        DbConnection::Sqlite(c) => {
            let mut rows = Vec::with_capacity(seqs.len());
            for seq in &seqs {
                rows.extend(
                    outbox::table
                        .inner_join(messages::table)
                        .filter(outbox::message_seq.eq(seq))
                        .select(columns)
                        .first::<Row>(c)
                        .optional()?,
                );
            }
            rows
        }
    };
    rows.sort_by_key(|r| r.0);
    Ok(rows
        .into_iter()
        .filter_map(|(seq, peer, message_id, envelope, attempts)| {
            envelope.map(|envelope| Due {
                seq,
                peer,
                message_id,
                envelope: envelope.into(),
                attempts,
            })
        })
        .collect())
}

/// The outbox key and envelope of message `message_id` that `us` sent to
/// `peer`, while it waits for delivery (or was cancelled): what a receipt returned for it
/// (SPEC.md §15.6) is checked against.
pub fn pending_message(
    conn: &mut DbConnection,
    us: &str,
    peer: &str,
    message_id: &str,
) -> QueryResult<Option<(i64, Vec<u8>)>> {
    let row: Option<(i64, Option<Vec<u8>>)> = outbox::table
        .inner_join(messages::table)
        .filter(messages::from_party.eq(us))
        .filter(messages::message_id.eq(message_id))
        .filter(outbox::peer.eq(peer))
        // A cancelled one the peer holds all the same is delivered too.
        .filter(
            outbox::state
                .eq(OutboxState::Pending.to_i16())
                .or(outbox::state.eq(OutboxState::Cancelled.to_i16())),
        )
        .select((outbox::message_seq, messages::envelope))
        .first_direct(conn)
        .optional()?;
    Ok(row.and_then(|(seq, envelope)| envelope.map(|e| (seq, e))))
}

/// Releases the claims `instance` holds on pending messages, so they are
/// due at once instead of when their lease runs out: called by a `gsp
/// serve` that finds the instance name of an earlier run of its own (see
/// `federation::instance`), whose attempts died with it. Returns how many.
pub fn release_claims(conn: &mut DbConnection, instance: &str) -> QueryResult<usize> {
    diesel::update(
        outbox::table
            .filter(outbox::state.eq(OutboxState::Pending.to_i16()))
            .filter(outbox::claimed_by.eq(instance))
            .filter(outbox::claimed_until.is_not_null()),
    )
    .set((
        outbox::claimed_by.eq(None::<String>),
        outbox::claimed_until.eq(None::<i64>),
    ))
    .execute_direct(conn)
}

/// The SQLite claim as one statement of fixed text, which diesel keeps
/// prepared (the text of a `sql_query` is prepared again at every call):
/// marks up to `limit` due rows of `peer`, oldest first, as claimed by
/// `instance` until `until`, and returns their keys. It walks the peer's
/// queue in order through `outbox_queue` and stops after `limit` (SQLite
/// would otherwise pick `outbox_due` and sort the whole queue). One
/// statement, so no savepoint is needed around it.
struct SqliteClaim<'a> {
    instance: &'a str,
    until: i64,
    state: i16,
    peer: &'a str,
    now: i64,
    limit: i64,
}

impl diesel::query_builder::QueryId for SqliteClaim<'_> {
    type QueryId = SqliteClaim<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for SqliteClaim<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, SmallInt, Text};
        out.push_sql("UPDATE outbox SET claimed_by = ");
        out.push_bind_param::<Text, _>(self.instance)?;
        out.push_sql(", claimed_until = ");
        out.push_bind_param::<BigInt, _>(&self.until)?;
        out.push_sql(
            " WHERE message_seq IN (SELECT message_seq FROM outbox INDEXED BY outbox_queue \
             WHERE state = ",
        );
        out.push_bind_param::<SmallInt, _>(&self.state)?;
        out.push_sql(" AND peer = ");
        out.push_bind_param::<Text, _>(self.peer)?;
        out.push_sql(" AND next_attempt_at <= ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(" AND (claimed_until IS NULL OR claimed_until < ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(") ORDER BY message_seq LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(") RETURNING message_seq");
        Ok(())
    }
}

impl diesel::query_builder::Query for SqliteClaim<'_> {
    type SqlType = diesel::sql_types::BigInt;
}

impl RunQueryDsl<diesel::SqliteConnection> for SqliteClaim<'_> {}

fn audit_for(
    conn: &mut DbConnection,
    seq: i64,
    now: i64,
    action: &str,
    detail: serde_json::Value,
) -> QueryResult<()> {
    let case_id: Option<String> = messages::table
        .find(seq)
        .select(messages::case_id)
        .first_direct(conn)
        .optional()?;
    if let Some(case_id) = case_id {
        audit_case(conn, &case_id, now, action, detail)?;
    }
    Ok(())
}

/// An audit row by the node on `case_id`.
fn audit_case(
    conn: &mut DbConnection,
    case_id: &str,
    now: i64,
    action: &str,
    detail: serde_json::Value,
) -> QueryResult<()> {
    diesel::insert_into(audit::table)
        .values((
            audit::case_id.eq(case_id),
            audit::at.eq(now),
            audit::actor.eq("node"),
            audit::action.eq(action),
            audit::detail.eq(detail.to_string()),
        ))
        .execute_direct(conn)?;
    Ok(())
}

/// Records a delivery: the peer's signed receipt is kept with the message,
/// the outbox row is done, and a queued request's case becomes delivered.
///
/// A message cancelled here while its delivery was on the way, and which the
/// peer then accepted, is recorded as delivered all the same, with the
/// receipt and "delivered after cancellation" in its case's history: the
/// peer holds it and will act on it, and the receipt is the evidence. A
/// message delivered already (a second outcome for it) is left as it is, and
/// so is a failed one: a failure is recorded only by the attempt's own
/// outcome or, on expiry, once no attempt holds a claim, so none is in flight.
pub fn delivered(conn: &mut DbConnection, seq: i64, receipt: &[u8], now: i64) -> QueryResult<()> {
    write_transaction(conn, |conn| {
        let settled_from = |conn: &mut DbConnection, from: OutboxState| {
            OutboxSettled {
                seq,
                from: from.to_i16(),
                to: OutboxState::Delivered.to_i16(),
            }
            .execute_direct(conn)
        };
        let after_cancellation = if settled_from(conn, OutboxState::Pending)? > 0 {
            false
        } else if settled_from(conn, OutboxState::Cancelled)? > 0 {
            true
        } else {
            return Ok(());
        };
        let (case_id, kind, message_id): (String, i16, String) = MessageDelivered {
            seq,
            state: MessageState::Delivered.to_i16(),
            receipt,
            at: now,
        }
        .get_result_direct(conn)?;
        // A request's case is delivered once the request and every
        // attachment sent with it are (an answer changes nothing here).
        if kind != MessageKind::Answer.to_i16() {
            let undelivered: i64 = messages::table
                .filter(messages::case_id.eq(&case_id))
                .filter(messages::direction.eq(Direction::Out.to_i16()))
                // Two `=` rather than `IN (…)`: diesel caches the prepared
                // statement only for a query of fixed shape.
                .filter(
                    messages::kind
                        .eq(MessageKind::Request.to_i16())
                        .or(messages::kind.eq(MessageKind::Attachment.to_i16())),
                )
                .filter(messages::state.ne(MessageState::Delivered.to_i16()))
                .count()
                .get_result_direct(conn)?;
            if undelivered == 0 {
                CaseMoved {
                    case: &case_id,
                    from: CaseState::Queued.to_i16(),
                    to: CaseState::Delivered.to_i16(),
                    at: now,
                }
                .execute_direct(conn)?;
                if after_cancellation {
                    uncancel_case(conn, &case_id, CaseState::Delivered, now)?;
                }
            }
        } else if after_cancellation {
            let back_to = answered_again(conn, &case_id)?;
            uncancel_case(conn, &case_id, back_to, now)?;
        }
        audit_case(
            conn,
            &case_id,
            now,
            if after_cancellation {
                "delivered after cancellation"
            } else {
                "delivered"
            },
            json!({"message_id": message_id}),
        )
    })
}

/// The state an answered case goes back to when its answer is on its way
/// again (or was delivered after all): answered with its outcome.
fn answered_again(conn: &mut DbConnection, case_id: &str) -> QueryResult<CaseState> {
    let outcome: Option<String> = cases::table
        .find(case_id)
        .select(cases::outcome)
        .first_direct(conn)?;
    Ok(crate::exchange::store::answered_state(
        outcome.as_deref().unwrap_or("full"),
    ))
}

/// The failure of a case whose message the operator cancelled.
pub const CANCELLED: &str = "cancelled by the operator";

/// A case failed only because its message was cancelled, which the peer
/// then accepted after all: moves to `to`, the failure cleared.
fn uncancel_case(
    conn: &mut DbConnection,
    case_id: &str,
    to: CaseState,
    now: i64,
) -> QueryResult<()> {
    diesel::update(
        cases::table
            .find(case_id)
            .filter(cases::state.eq(CaseState::Failed.to_i16()))
            .filter(cases::failure.eq(CANCELLED)),
    )
    .set((
        cases::state.eq(to.to_i16()),
        cases::failure.eq(None::<String>),
        cases::updated_at.eq(now),
    ))
    .execute_direct(conn)?;
    Ok(())
}

/// The delay before attempt `attempts + 1`: base × 2^attempts, capped, with
/// ±25 % jitter so many nodes retrying after an outage do not stampede.
pub fn backoff_ms(settings: &ExchangeSettings, attempts: i32) -> i64 {
    let base = settings.retry_base_ms.max(1) as f64;
    let cap = (settings.retry_cap_secs.max(1) * 1000) as f64;
    let raw = (base * 2f64.powi(attempts.clamp(0, 40))).min(cap);
    let jitter: f64 = rand::rng().random_range(0.75..1.25);
    (raw * jitter) as i64
}

/// What follows a failed delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A transient failure: tried again after the back-off, and not sooner
    /// than `at_least_ms` (what the peer asked for; 0: no wish).
    After {
        /// Milliseconds before the next attempt, at least.
        at_least_ms: i64,
    },
    /// The peer refused the message itself: it fails at once.
    Never,
}

/// Records a failed attempt. Transient errors are retried after a back-off
/// (or the longer wait the peer asked for) until the message expires; those
/// retried [`Retry::Never`] fail it at once. Either way the reason is kept.
pub fn attempt_failed(
    conn: &mut DbConnection,
    settings: &ExchangeSettings,
    seq: i64,
    error: &str,
    retry: Retry,
    now: i64,
) -> QueryResult<()> {
    write_transaction(conn, |conn| {
        let row: Option<(i32, i64, i16)> = outbox::table
            .find(seq)
            .select((outbox::attempts, outbox::expires_at, outbox::state))
            .first_direct(conn)
            .optional()?;
        let Some((attempts, expires_at, state)) = row else {
            return Ok(());
        };
        if state != OutboxState::Pending.to_i16() {
            return Ok(());
        }
        let attempts = attempts + 1;
        let (next, permanent) = match retry {
            Retry::After { at_least_ms } => {
                let wait = backoff_ms(settings, attempts - 1).max(at_least_ms);
                (now.saturating_add(wait), false)
            }
            Retry::Never => (now, true),
        };
        if permanent || next >= expires_at {
            let reason = if permanent {
                format!("refused by the recipient: {error}")
            } else {
                format!(
                    "not delivered before it expired ({attempts} attempts); last error: {error}"
                )
            };
            fail(conn, seq, attempts, &reason, now)?;
        } else {
            diesel::update(outbox::table.find(seq))
                .set((
                    outbox::attempts.eq(attempts),
                    outbox::next_attempt_at.eq(next),
                    outbox::last_error.eq(Some(error)),
                    outbox::claimed_until.eq(None::<i64>),
                ))
                .execute_direct(conn)?;
        }
        Ok(())
    })
}

fn fail(
    conn: &mut DbConnection,
    seq: i64,
    attempts: i32,
    reason: &str,
    now: i64,
) -> QueryResult<()> {
    diesel::update(outbox::table.find(seq))
        .set((
            outbox::state.eq(OutboxState::Failed.to_i16()),
            outbox::attempts.eq(attempts),
            outbox::last_error.eq(Some(reason)),
            outbox::claimed_until.eq(None::<i64>),
        ))
        .execute_direct(conn)?;
    diesel::update(messages::table.find(seq))
        .set(messages::state.eq(MessageState::Failed.to_i16()))
        .execute_direct(conn)?;
    let case_id: String = messages::table
        .find(seq)
        .select(messages::case_id)
        .first_direct(conn)?;
    diesel::update(cases::table.find(&case_id))
        .set((
            cases::state.eq(CaseState::Failed.to_i16()),
            cases::failure.eq(Some(reason)),
            cases::updated_at.eq(now),
        ))
        .execute_direct(conn)?;
    audit_for(conn, seq, now, "delivery failed", json!({"reason": reason}))?;
    tracing::warn!(seq, %case_id, reason, "message failed");
    Ok(())
}

/// Fails every pending message past its expiry (also those nobody is trying,
/// e.g. because the peer vanished from the directory).
pub fn expire_overdue(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    let overdue: Vec<(i64, i32, Option<String>)> = outbox::table
        .filter(outbox::state.eq(OutboxState::Pending.to_i16()))
        .filter(outbox::expires_at.le(now))
        .filter(
            outbox::claimed_until
                .is_null()
                .or(outbox::claimed_until.lt(now)),
        )
        .select((outbox::message_seq, outbox::attempts, outbox::last_error))
        .load_direct(conn)?;
    for (seq, attempts, last) in &overdue {
        write_transaction(conn, |conn| {
            let reason = format!(
                "not delivered before it expired ({attempts} attempts){}",
                last.as_deref()
                    .map(|l| format!("; last error: {l}"))
                    .unwrap_or_default()
            );
            fail(conn, *seq, *attempts, &reason, now)
        })?;
    }
    Ok(overdue.len())
}

/// An outbox row, for `gsp outbox list`.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    /// Outbox key.
    pub seq: i64,
    /// Peer.
    pub peer: String,
    /// Message id.
    pub message_id: String,
    /// Case id.
    pub case_id: String,
    /// State.
    pub state: OutboxState,
    /// Attempts so far.
    pub attempts: i32,
    /// Next attempt (Unix ms).
    pub next_attempt_at: i64,
    /// Expiry (Unix ms).
    pub expires_at: i64,
    /// Last error.
    pub last_error: Option<String>,
    /// The `gsp serve` instance that last claimed the message for delivery.
    pub claimed_by: Option<String>,
    /// Until when that claim holds (Unix ms): while it does, a delivery of
    /// the message may be on its way.
    pub claimed_until: Option<i64>,
}

/// The outbox at a glance, for `gsp status`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct OutboxSummary {
    /// Messages waiting for delivery.
    pub pending: i64,
    /// Of those, the ones under a live claim (a delivery may be on its
    /// way), by the `gsp serve` instance holding it.
    pub on_its_way: std::collections::BTreeMap<String, i64>,
    /// Messages that could not be delivered (see `gsp outbox list`).
    pub failed: i64,
    /// Messages cancelled by the operator.
    pub cancelled: i64,
}

/// The outbox states of messages not (yet) delivered. Queries name them
/// with `IN` rather than `<> delivered`: the outbox keeps a row for every
/// message ever sent, and only an `IN` lets SQLite and PostgreSQL find the
/// few undelivered ones through the `(state, …)` indexes instead of reading
/// them all (a `/metrics` scrape read 152,000 index entries, 10 ms, on a
/// benchmark node; it would read millions on a node that ran for a year).
const UNDELIVERED: [i16; 3] = [
    OutboxState::Pending.to_i16(),
    OutboxState::Failed.to_i16(),
    OutboxState::Cancelled.to_i16(),
];

/// Counts the undelivered messages by state, and the live claims by
/// instance, at `now`.
pub fn summary(conn: &mut DbConnection, now: i64) -> QueryResult<OutboxSummary> {
    let by_state: Vec<(i16, i64)> = outbox::table
        .filter(outbox::state.eq_any(UNDELIVERED))
        .group_by(outbox::state)
        .select((outbox::state, diesel::dsl::count_star()))
        .load(conn)?;
    let claims: Vec<(Option<String>, i64)> = outbox::table
        .filter(outbox::state.eq(OutboxState::Pending.to_i16()))
        .filter(outbox::claimed_until.gt(now))
        .group_by(outbox::claimed_by)
        .select((outbox::claimed_by, diesel::dsl::count_star()))
        .load(conn)?;
    let mut s = OutboxSummary::default();
    for (state, n) in by_state {
        match OutboxState::from_i16(state) {
            Some(OutboxState::Pending) => s.pending = n,
            Some(OutboxState::Failed) => s.failed = n,
            Some(OutboxState::Cancelled) => s.cancelled = n,
            Some(OutboxState::Delivered) | None => {}
        }
    }
    for (by, n) in claims {
        s.on_its_way.insert(by.unwrap_or_default(), n);
    }
    Ok(s)
}

/// Outbox rows, newest first; `all` includes delivered ones.
pub fn list(conn: &mut DbConnection, all: bool, limit: i64) -> QueryResult<Vec<OutboxEntry>> {
    let mut q = outbox::table
        .inner_join(messages::table)
        .select((
            outbox::message_seq,
            outbox::peer,
            messages::message_id,
            messages::case_id,
            outbox::state,
            outbox::attempts,
            outbox::next_attempt_at,
            outbox::expires_at,
            outbox::last_error,
            outbox::claimed_by,
            outbox::claimed_until,
        ))
        .into_boxed();
    if !all {
        q = q.filter(outbox::state.eq_any(UNDELIVERED));
    }
    type Row = (
        i64,
        String,
        String,
        String,
        i16,
        i32,
        i64,
        i64,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    let rows: Vec<Row> = q
        .order(outbox::message_seq.desc())
        .limit(limit)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(
                seq,
                peer,
                message_id,
                case_id,
                state,
                attempts,
                next_attempt_at,
                expires_at,
                last_error,
                claimed_by,
                claimed_until,
            )| OutboxEntry {
                seq,
                peer,
                message_id,
                case_id,
                state: OutboxState::from_i16(state).unwrap_or(OutboxState::Pending),
                attempts,
                next_attempt_at,
                expires_at,
                last_error,
                claimed_by,
                claimed_until,
            },
        )
        .collect())
}

/// Makes a pending or failed message due now (a failed one gets a fresh
/// expiry). Returns false if there is no such row or it was delivered.
pub fn retry_now(
    conn: &mut DbConnection,
    settings: &ExchangeSettings,
    seq: i64,
    now: i64,
) -> QueryResult<bool> {
    write_transaction(conn, |conn| {
        let state: Option<i16> = outbox::table
            .find(seq)
            .select(outbox::state)
            .first_direct(conn)
            .optional()?;
        match state.and_then(OutboxState::from_i16) {
            Some(OutboxState::Pending) => {
                diesel::update(outbox::table.find(seq))
                    .set((
                        outbox::next_attempt_at.eq(now),
                        outbox::claimed_until.eq(None::<i64>),
                    ))
                    .execute_direct(conn)?;
                Ok(true)
            }
            Some(OutboxState::Failed) => {
                let lifetime_ms =
                    i64::try_from(settings.message_lifetime_hours.clamp(1, 720) * 3_600_000)
                        .unwrap_or(i64::MAX / 2);
                diesel::update(outbox::table.find(seq))
                    .set((
                        outbox::state.eq(OutboxState::Pending.to_i16()),
                        outbox::next_attempt_at.eq(now),
                        outbox::expires_at.eq(now + lifetime_ms),
                        outbox::claimed_until.eq(None::<i64>),
                    ))
                    .execute_direct(conn)?;
                diesel::update(messages::table.find(seq))
                    .set(messages::state.eq(MessageState::Queued.to_i16()))
                    .execute_direct(conn)?;
                // The case failed with this message; it is on its way again:
                // a request's case is queued, an answer's is answered again.
                let (case_id, kind): (String, i16) = messages::table
                    .find(seq)
                    .select((messages::case_id, messages::kind))
                    .first_direct(conn)?;
                let back_to = if kind == MessageKind::Answer.to_i16() {
                    answered_again(conn, &case_id)?
                } else {
                    CaseState::Queued
                };
                diesel::update(
                    cases::table
                        .find(&case_id)
                        .filter(cases::state.eq(CaseState::Failed.to_i16())),
                )
                .set((
                    cases::state.eq(back_to.to_i16()),
                    cases::failure.eq(None::<String>),
                    cases::updated_at.eq(now),
                ))
                .execute_direct(conn)?;
                audit_for(conn, seq, now, "retry requested", json!({}))?;
                Ok(true)
            }
            _ => Ok(false),
        }
    })
}

/// Marks one undelivered message cancelled, its outbox row and its message;
/// false if it is not undelivered.
fn cancel_one(conn: &mut DbConnection, seq: i64) -> QueryResult<bool> {
    let changed = diesel::update(outbox::table.find(seq).filter(
        outbox::state.eq_any([OutboxState::Pending.to_i16(), OutboxState::Failed.to_i16()]),
    ))
    .set((
        outbox::state.eq(OutboxState::Cancelled.to_i16()),
        outbox::claimed_until.eq(None::<i64>),
    ))
    .execute_direct(conn)?;
    if changed > 0 {
        diesel::update(messages::table.find(seq))
            .set(messages::state.eq(MessageState::Cancelled.to_i16()))
            .execute_direct(conn)?;
    }
    Ok(changed > 0)
}

/// Makes every pending or failed message of `case_id` due now, as
/// [`retry_now`] does one (a request fails together with the attachments
/// sent with it, and the operator retries the case, not each message).
/// Returns the outbox rows made due, in sending order; none if the case has
/// no such message.
pub fn retry_case(
    conn: &mut DbConnection,
    settings: &ExchangeSettings,
    case_id: &str,
    now: i64,
) -> QueryResult<Vec<i64>> {
    write_transaction(conn, |conn| {
        let seqs: Vec<i64> = outbox::table
            .inner_join(messages::table)
            .filter(messages::case_id.eq(case_id))
            .filter(
                outbox::state.eq_any([OutboxState::Pending.to_i16(), OutboxState::Failed.to_i16()]),
            )
            .select(outbox::message_seq)
            .order(outbox::message_seq)
            .load(conn)?;
        let mut retried = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if retry_now(conn, settings, seq, now)? {
                retried.push(seq);
            }
        }
        Ok(retried)
    })
}

/// Cancels a message not yet delivered; its case fails with the reason
/// [`CANCELLED`]. A request or an answer takes with it the attachments sent
/// with it (queued in the same write) that are not delivered yet: without
/// it they would reach the peer as a case with no request. Returns false if
/// there is no such row or it was delivered already. A delivery already on
/// its way is not recalled: if the peer accepts it, [`delivered`] records it
/// all the same and takes the case out of `failed` again.
pub fn cancel(conn: &mut DbConnection, seq: i64, now: i64) -> QueryResult<bool> {
    write_transaction(conn, |conn| {
        if !cancel_one(conn, seq)? {
            return Ok(false);
        }
        let (case_id, kind, created_at): (String, i16, i64) = messages::table
            .find(seq)
            .select((messages::case_id, messages::kind, messages::created_at))
            .first_direct(conn)?;
        if kind != MessageKind::Attachment.to_i16() {
            let attachments: Vec<i64> = outbox::table
                .inner_join(messages::table)
                .filter(messages::case_id.eq(&case_id))
                .filter(messages::direction.eq(Direction::Out.to_i16()))
                .filter(messages::kind.eq(MessageKind::Attachment.to_i16()))
                .filter(messages::created_at.eq(created_at))
                .select(outbox::message_seq)
                .load(conn)?;
            for a in attachments {
                cancel_one(conn, a)?;
            }
        }
        // The case cannot go through as it was sent: it fails, with the
        // reason, as on expiry (it left `queued` or its answered state).
        diesel::update(cases::table.find(&case_id))
            .set((
                cases::state.eq(CaseState::Failed.to_i16()),
                cases::failure.eq(Some(CANCELLED)),
                cases::updated_at.eq(now),
            ))
            .execute_direct(conn)?;
        audit_case(conn, &case_id, now, CANCELLED, json!({}))?;
        Ok(true)
    })
}
