//! Where an exchange's time goes, leg by leg, for `gsp bench exchange`:
//! read after a step from the millisecond timestamps both nodes keep
//! anyway (both on one machine, so one clock).
//!
//! For each verification asked since the step began and answered: the
//! request sealed on KEN → its arrival on PAK (KEN's commit and delivery
//! worker, the connection, PAK's listener); PAK's arrival → the answer
//! sealed there (opening the request, the lookup, drafting and sealing the
//! answer); the answer sealed → taken on KEN (PAK's commit of the request
//! with its answer, the response, KEN checking the receipt and opening the
//! answer). A node stamps a message it takes in before the commit that
//! records it, so KEN's last commit is in none of the legs — nor in the
//! bench's case-created-to-answer-recorded latency, read from the same
//! stamps (the officer's latency, which has it, comes from
//! [`super::bench_watch`]).

use crate::exchange::model::{Direction, MessageKind};
use crate::storage::Database;
use crate::storage::schema::messages;
use diesel::prelude::*;
use std::collections::HashMap;

/// One leg's p50 and p99 in ms, over the verifications seen on both nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Leg {
    /// The median.
    pub p50: i64,
    /// The 99th percentile.
    pub p99: i64,
}

/// The three legs of the verifications of one step.
pub(super) struct Stages {
    /// Verifications seen on both nodes.
    pub count: usize,
    /// Request sealed on KEN → arrived on PAK.
    pub delivered: Leg,
    /// Arrived on PAK → answer sealed there.
    pub answered: Leg,
    /// Answer sealed on PAK → taken on KEN.
    pub returned: Leg,
}

/// Where a step begins: the last message each node kept before it (the
/// step's messages come after; reading them needs no scan of every message
/// ever kept — the bench's reused lab keeps millions).
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark {
    ken_seq: i64,
    pak_seq: i64,
}

impl Mark {
    /// The last message KEN kept before the step.
    pub(super) fn ken_seq(&self) -> i64 {
        self.ken_seq
    }
}

/// The last message `seq` on `db` (0 when none).
async fn last_seq(db: &Database) -> anyhow::Result<i64> {
    let last: Option<i64> = db
        .run(|c| {
            messages::table
                .select(diesel::dsl::max(messages::seq))
                .first(c)
                .map_err(crate::storage::StorageError::from)
        })
        .await?;
    Ok(last.unwrap_or(0))
}

/// Marks the start of a step.
pub(super) async fn mark(ken: &Database, pak: &Database) -> anyhow::Result<Mark> {
    Ok(Mark {
        ken_seq: last_seq(ken).await?,
        pak_seq: last_seq(pak).await?,
    })
}

/// The value at quantile `q` of `sorted` (0 when empty).
pub(super) fn quantile(sorted: &[i64], q: f64) -> i64 {
    let at = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(at).copied().unwrap_or(0)
}

/// Per case: a timestamp of the messages of `kind` and `direction` kept
/// after message `after` on `db`; `taken` gives when an incoming one was
/// taken in (its `delivered_at`), else when the message was made (sealed).
async fn times(
    db: &Database,
    after: i64,
    kind: MessageKind,
    direction: Direction,
    taken: bool,
) -> anyhow::Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64, Option<i64>)> = db
        .run(move |c| {
            messages::table
                .filter(messages::seq.gt(after))
                .filter(messages::kind.eq(kind.to_i16()))
                .filter(messages::direction.eq(direction.to_i16()))
                .select((
                    messages::case_id,
                    messages::created_at,
                    messages::delivered_at,
                ))
                .load(c)
                .map_err(crate::storage::StorageError::from)
        })
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(case, made, at)| Some((case, if taken { at? } else { made })))
        .collect())
}

/// The legs of the verifications KEN (`ken`) asked PAK (`pak`) in the
/// step that began at `mark`.
pub(super) async fn stages(ken: &Database, pak: &Database, mark: Mark) -> anyhow::Result<Stages> {
    use {Direction::*, MessageKind::*};
    let (on_ken, on_pak) = (mark.ken_seq, mark.pak_seq);
    let sealed = times(ken, on_ken, Request, Out, false).await?;
    let arrived = times(pak, on_pak, Request, In, true).await?;
    let answer_sealed = times(pak, on_pak, Answer, Out, false).await?;
    let answer_recorded = times(ken, on_ken, Answer, In, true).await?;
    let (mut delivered, mut answered, mut returned) = (Vec::new(), Vec::new(), Vec::new());
    for (case, s) in &sealed {
        let (Some(a), Some(x), Some(r)) = (
            arrived.get(case),
            answer_sealed.get(case),
            answer_recorded.get(case),
        ) else {
            continue;
        };
        delivered.push(a - s);
        answered.push(x - a);
        returned.push(r - x);
    }
    let leg = |v: &mut Vec<i64>| {
        v.sort_unstable();
        Leg {
            p50: quantile(v, 0.50),
            p99: quantile(v, 0.99),
        }
    };
    Ok(Stages {
        count: delivered.len(),
        delivered: leg(&mut delivered),
        answered: leg(&mut answered),
        returned: leg(&mut returned),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::storage::testing::TestDb;

    /// Case `case` with one message of `kind` (0 request, 1 answer) in
    /// `direction` (0 out, 1 in), made at `made` and taken in at `taken`.
    fn message(
        db: &Database,
        seq: i64,
        case: &str,
        kind: i16,
        direction: i16,
        made: i64,
        taken: i64,
    ) {
        let mut conn = db.conn().unwrap();
        crate::storage::testing::insert_bare_case(&mut conn, case).unwrap();
        let m = crate::storage::testing::BareMessage {
            kind,
            direction,
            state: 3,
            envelope: Some(b"{}"),
            created_at: made,
            delivered_at: Some(taken),
            ..crate::storage::testing::BareMessage::new(seq, case)
        };
        crate::storage::testing::insert_bare_message(&mut conn, &m).unwrap();
    }

    crate::for_each_backend! {
        /// Each leg is read from the stamps of the node that keeps them,
        /// joined by case; a case one node has not seen, or from before
        /// the step's mark, is left out.
        fn the_legs_of_each_verification_are_read_from_both_nodes(backend: Backend) {
            let (ken_db, pak_db) = (TestDb::new(backend).unwrap(), TestDb::new(backend).unwrap());
            let settings = crate::config::Config::default().database;
            let ken = Database::open(&ken_db.url, &settings).unwrap();
            let pak = Database::open(&pak_db.url, &settings).unwrap();
            // (case, request sealed, arrived, answer sealed, answer taken)
            // Asked before the step.
            message(&ken, 1, "old", 0, 0, 500, 500);
            message(&pak, 1, "old", 0, 1, 500, 501);
            for (i, (case, sealed, arrived, answered, taken)) in [
                ("a", 1_000, 1_004, 1_005, 1_010),
                ("b", 2_000, 2_040, 2_043, 2_050),
                ("c", 3_000, 3_002, 3_003, 3_100),
            ]
            .into_iter()
            .enumerate()
            {
                let seq = 10 * (i as i64 + 1);
                message(&ken, seq, case, 0, 0, sealed, sealed);
                message(&pak, seq, case, 0, 1, sealed, arrived);
                message(&pak, seq + 1, case, 1, 0, answered, answered);
                message(&ken, seq + 1, case, 1, 1, answered, taken);
            }
            // One PAK never saw.
            message(&ken, 100, "lost", 0, 0, 4_000, 4_000);

            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let step = Mark { ken_seq: 1, pak_seq: 1 };
            let legs = rt.block_on(stages(&ken, &pak, step)).unwrap();
            // A later mark: only what came after it.
            let late = Mark { ken_seq: 21, pak_seq: 21 };
            let later = rt.block_on(stages(&ken, &pak, late)).unwrap();
            assert_eq!((later.count, later.returned), (1, Leg { p50: 97, p99: 97 }));
            // The mark itself: the last message before the step.
            assert_eq!(rt.block_on(last_seq(&ken)).unwrap(), 100);
            assert_eq!(legs.count, 3);
            assert_eq!(legs.delivered, Leg { p50: 4, p99: 40 });
            assert_eq!(legs.answered, Leg { p50: 1, p99: 3 });
            assert_eq!(legs.returned, Leg { p50: 7, p99: 97 });
        }
    }

    #[test]
    fn quantiles_are_taken_from_the_sorted_values() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.50), 51);
        assert_eq!(quantile(&v, 0.99), 100);
        assert_eq!(quantile(&[7], 0.99), 7);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
