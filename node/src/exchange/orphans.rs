//! Attachments whose request never came.
//!
//! An attachment can arrive before the request that refers to it; the node
//! then keeps it in a placeholder case (responder side, `draft`, no
//! template) that the request completes when it arrives. If the request
//! never arrives — the sender cancelled it, its delivery failed, or it was
//! refused — the placeholder would hold the attachments for ever, hidden
//! from the officers' list, though they can never be acted on and may carry
//! personal data.
//!
//! A request's `created` is never later than its attachments' (SPEC §10) and
//! a receiver accepts nothing later than `expires + skew`, at most 30 days
//! and 1 hour after `created` (§6, §7.1). So once [`ORPHAN_AGE_MS`] has passed
//! since a placeholder's first attachment arrived, its request can no
//! longer be accepted, and the placeholder is deleted with its attachments
//! and its history; each deletion is logged with the sender and the number
//! and size of the attachments.

use super::model::{CaseRole, CaseState};
use crate::storage::DbConnection;
use crate::storage::schema::{audit, cases, messages};
use diesel::prelude::*;
use diesel::sql_types::BigInt;

/// The longest message lifetime plus the largest allowed clock skew.
pub const ORPHAN_AGE_MS: i64 = (30 * 24 + 1) * 3600 * 1000;

/// A placeholder case deleted with its attachments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discarded {
    /// The case id the sender chose.
    pub case_id: String,
    /// The Party that sent the attachments.
    pub from: String,
    /// How many attachments it held.
    pub attachments: usize,
    /// Their bodies' total size in bytes.
    pub bytes: u64,
    /// When the first of them arrived (Unix ms).
    pub arrived_at: i64,
}

type Backend = <DbConnection as diesel::Connection>::Backend;

/// Whether a case is a placeholder made more than [`ORPHAN_AGE_MS`] before
/// `now`.
fn expired_placeholder(
    now: i64,
) -> Box<dyn BoxableExpression<cases::table, Backend, SqlType = diesel::sql_types::Bool>> {
    Box::new(
        cases::role
            .eq(CaseRole::Responder.to_i16())
            .and(cases::state.eq(CaseState::Draft.to_i16()))
            .and(cases::template.eq(""))
            .and(cases::created_at.lt(now.saturating_sub(ORPHAN_AGE_MS))),
    )
}

/// The placeholder cases made more than [`ORPHAN_AGE_MS`] before `now`.
fn expired_placeholders(now: i64) -> cases::BoxedQuery<'static, Backend> {
    cases::table.filter(expired_placeholder(now)).into_boxed()
}

/// Whether any placeholder is due for [`discard_expired`]: a read, so that
/// the scan of the cases runs on a reading connection and a node's writes
/// never wait for it when there is nothing to delete (almost always).
pub fn any_expired(conn: &mut DbConnection, now: i64) -> QueryResult<bool> {
    Ok(expired_placeholders(now)
        .select(cases::id)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

/// Deletes, in one transaction the caller opens, every placeholder case made
/// more than [`ORPHAN_AGE_MS`] before `now` (Unix ms), with its messages and
/// history; returns what was deleted.
pub fn discard_expired(conn: &mut DbConnection, now: i64) -> QueryResult<Vec<Discarded>> {
    let placeholders: Vec<(String, String, i64)> = expired_placeholders(now)
        .select((cases::id, cases::counterpart, cases::created_at))
        .load(conn)?;
    let mut discarded = Vec::with_capacity(placeholders.len());
    for (case_id, from, arrived_at) in placeholders {
        // Take the case's row lock, checking again that it is still a
        // placeholder: on PostgreSQL a request for it (from a sender that
        // broke the `created` rule) may have completed it since the read
        // above, and its messages must then stay. An arrival still under
        // way waits for this transaction, then finds the case gone and is
        // refused, to be resent and kept as a new case.
        let still_placeholder = diesel::update(
            cases::table
                .filter(cases::id.eq(&case_id))
                .filter(expired_placeholder(now)),
        )
        .set(cases::updated_at.eq(cases::updated_at))
        .execute(conn)?;
        if still_placeholder == 0 {
            continue;
        }
        let sizes: Vec<i64> = messages::table
            .filter(messages::case_id.eq(&case_id))
            .select(diesel::dsl::sql::<BigInt>("CAST(length(body) AS BIGINT)"))
            .load(conn)?;
        diesel::delete(messages::table.filter(messages::case_id.eq(&case_id))).execute(conn)?;
        diesel::delete(audit::table.filter(audit::case_id.eq(&case_id))).execute(conn)?;
        diesel::delete(cases::table.find(&case_id)).execute(conn)?;
        discarded.push(Discarded {
            case_id,
            from,
            attachments: sizes.len(),
            bytes: sizes.iter().map(|&n| u64::try_from(n).unwrap_or(0)).sum(),
            arrived_at,
        });
    }
    Ok(discarded)
}
