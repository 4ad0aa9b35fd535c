//! The `UPDATE` statements run for every message, written so that each
//! connection prepares them once and keeps them.
//!
//! diesel prepares every `UPDATE` built with its query builder afresh (it
//! marks them unsafe to cache, because a changeset with optional fields
//! changes its SQL between calls). For SQLite that is a parse and a plan per
//! statement: measured with callgrind on the answering node's database work
//! for one verification (arrival with its answer, claim, delivery), the three
//! updates' preparation was ~80,000 of ~925,000 instructions. These
//! statements have fixed SQL and a static query id, so diesel keeps them
//! prepared like its `SELECT`s and `INSERT`s. Same SQL as the query builder
//! would write, on both backends (the placeholders are the backend's own).

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;
use diesel::sql_types::{BigInt, Binary, Nullable, SmallInt, Text};
use diesel::sqlite::Sqlite;

/// Implements a kept statement for both backends from one body: `$out` is
/// the `AstPass` and `$s` the statement; `$id` is its type with `'static`
/// lifetimes (its query id).
macro_rules! kept_statement {
    ($name:ty => $id:ty, |$s:ident, $out:ident| $body:block) => {
        impl QueryId for $name {
            type QueryId = $id;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl QueryFragment<Sqlite> for $name {
            fn walk_ast<'b>(&'b self, mut $out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
                let $s = self;
                $body
            }
        }

        impl QueryFragment<Pg> for $name {
            fn walk_ast<'b>(&'b self, mut $out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                let $s = self;
                $body
            }
        }

        impl<C> RunQueryDsl<C> for $name {}
    };
}

/// `UPDATE outbox SET state = to, claimed_until = NULL WHERE message_seq =
/// seq AND state = from`: an outbox row leaves `from` (the delivery that
/// claimed it is done).
pub struct OutboxSettled {
    /// The message's sequence number.
    pub seq: i64,
    /// The state it must still be in.
    pub from: i16,
    /// Its new state.
    pub to: i16,
}

kept_statement!(OutboxSettled => OutboxSettled, |s, out| {
    out.push_sql("UPDATE outbox SET state = ");
    out.push_bind_param::<SmallInt, _>(&s.to)?;
    out.push_sql(", claimed_until = NULL WHERE message_seq = ");
    out.push_bind_param::<BigInt, _>(&s.seq)?;
    out.push_sql(" AND state = ");
    out.push_bind_param::<SmallInt, _>(&s.from)?;
    Ok(())
});

/// `UPDATE messages SET state, receipt, delivered_at WHERE seq RETURNING
/// case_id, kind, message_id`: a sent message delivered, with the peer's
/// receipt.
pub struct MessageDelivered<'a> {
    /// The message's sequence number.
    pub seq: i64,
    /// Its new state.
    pub state: i16,
    /// The peer's signed receipt.
    pub receipt: &'a [u8],
    /// When.
    pub at: i64,
}

kept_statement!(MessageDelivered<'_> => MessageDelivered<'static>, |s, out| {
    out.push_sql("UPDATE messages SET state = ");
    out.push_bind_param::<SmallInt, _>(&s.state)?;
    out.push_sql(", receipt = ");
    out.push_bind_param::<Binary, _>(s.receipt)?;
    out.push_sql(", delivered_at = ");
    out.push_bind_param::<BigInt, _>(&s.at)?;
    out.push_sql(" WHERE seq = ");
    out.push_bind_param::<BigInt, _>(&s.seq)?;
    out.push_sql(" RETURNING case_id, kind, message_id");
    Ok(())
});

impl Query for MessageDelivered<'_> {
    type SqlType = (Text, SmallInt, Text);
}

/// `UPDATE cases SET state = to, updated_at = at WHERE id = case AND state =
/// from`: a case moves on only from the state it is expected in.
pub struct CaseMoved<'a> {
    /// The case id.
    pub case: &'a str,
    /// The state it must be in.
    pub from: i16,
    /// Its new state.
    pub to: i16,
    /// When.
    pub at: i64,
}

kept_statement!(CaseMoved<'_> => CaseMoved<'static>, |s, out| {
    out.push_sql("UPDATE cases SET state = ");
    out.push_bind_param::<SmallInt, _>(&s.to)?;
    out.push_sql(", updated_at = ");
    out.push_bind_param::<BigInt, _>(&s.at)?;
    out.push_sql(" WHERE id = ");
    out.push_bind_param::<Text, _>(s.case)?;
    out.push_sql(" AND state = ");
    out.push_bind_param::<SmallInt, _>(&s.from)?;
    Ok(())
});

/// `UPDATE cases SET state, outcome, updated_at WHERE id`: a case answered
/// (in full, in part or declined), on either side.
pub struct CaseAnswered<'a> {
    /// The case id.
    pub case: &'a str,
    /// Its new state.
    pub state: i16,
    /// The answer's outcome (`full`, `partial`, `declined`).
    pub outcome: &'a str,
    /// When.
    pub at: i64,
}

kept_statement!(CaseAnswered<'_> => CaseAnswered<'static>, |s, out| {
    out.push_sql("UPDATE cases SET state = ");
    out.push_bind_param::<SmallInt, _>(&s.state)?;
    out.push_sql(", outcome = ");
    out.push_bind_param::<Nullable<Text>, _>(s.outcome)?;
    out.push_sql(", updated_at = ");
    out.push_bind_param::<BigInt, _>(&s.at)?;
    out.push_sql(" WHERE id = ");
    out.push_bind_param::<Text, _>(s.case)?;
    Ok(())
});
