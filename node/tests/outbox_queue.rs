//! The outbox as delivery workers read it, on SQLite and PostgreSQL: which
//! peers have messages due, and claims that take each peer's oldest due
//! messages in order, a batch at a time, skipping those another worker holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use diesel::prelude::*;
use gsp_node::exchange::outbox::{claim, peers_due};
use gsp_node::for_each_backend;
use gsp_node::storage::DbConnection;

const NOW: i64 = 1_800_000_000_000;

/// Queues message `seq` for `peer` in outbox `state`, due at `due`.
fn queue(conn: &mut DbConnection, seq: i64, peer: &str, state: i16, due: i64) {
    diesel::sql_query(format!(
        "INSERT INTO messages (seq, message_id, from_party, to_party, case_id, direction, kind, \
           content_type, body, body_sha256, envelope, state, created_at) \
         VALUES ({seq}, 'm{seq}', 'KEN', '{peer}', 'case', 1, 0, 'application/json', \
           $1, '', $2, 1, {NOW})"
    ))
    .bind::<diesel::sql_types::Binary, _>(b"{}".to_vec())
    .bind::<diesel::sql_types::Binary, _>(vec![seq as u8])
    .execute(conn)
    .unwrap();
    diesel::sql_query(format!(
        "INSERT INTO outbox (message_seq, peer, state, attempts, next_attempt_at, expires_at, created_at) \
         VALUES ({seq}, '{peer}', {state}, 0, {due}, {}, {NOW})",
        NOW + 3_600_000
    ))
    .execute(conn)
    .unwrap();
}

fn seqs(due: &[gsp_node::exchange::outbox::Due]) -> Vec<i64> {
    due.iter().map(|d| d.seq).collect()
}

for_each_backend! {
    fn peers_with_due_messages_and_claims_in_queue_order(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let mut conn = db.conn().unwrap();
        diesel::sql_query(format!(
            "INSERT INTO cases (id, role, counterpart, template, template_version, state, \
               priority, subject, policy, created_at, updated_at) \
             VALUES ('case', 0, 'PAK', 'free-text', 1, 1, 'routine', 's', 1, {NOW}, {NOW})"
        ))
        .execute(&mut conn)
        .unwrap();
        // PAK: four due, queued out of order with a retry not yet due among them.
        for (seq, due) in [(4, NOW - 5), (2, NOW), (7, NOW + 60_000), (3, NOW - 1), (9, NOW - 9)] {
            queue(&mut conn, seq, "PAK", 0, due);
        }
        // SEN: only a retry later on. EU: delivered and failed ones only.
        queue(&mut conn, 5, "SEN", 0, NOW + 1);
        queue(&mut conn, 6, "EU", 1, NOW - 100);
        queue(&mut conn, 8, "EU", 2, NOW - 100);
        // ZAF: one due.
        queue(&mut conn, 10, "ZAF", 0, NOW);

        let mut peers = peers_due(&mut conn, NOW).unwrap();
        peers.sort();
        assert_eq!(peers, ["PAK", "ZAF"]);
        let mut later = peers_due(&mut conn, NOW + 60_000).unwrap();
        later.sort();
        assert_eq!(later, ["PAK", "SEN", "ZAF"]);

        // Oldest first, a batch at a time; claimed ones are not handed out
        // again while their lease runs; the retry not yet due stays.
        let first = claim(&mut conn, "a", "PAK", NOW, 30_000, 2).unwrap();
        assert_eq!(seqs(&first), [2, 3]);
        assert_eq!(first[0].envelope.as_ref(), [0x02]);
        let second = claim(&mut conn, "b", "PAK", NOW, 30_000, 10).unwrap();
        assert_eq!(seqs(&second), [4, 9]);
        assert!(claim(&mut conn, "b", "PAK", NOW, 30_000, 10).unwrap().is_empty());
        // Once the leases lapse, the messages are claimed again, in order.
        let again = claim(&mut conn, "c", "PAK", NOW + 30_001, 30_000, 10).unwrap();
        assert_eq!(seqs(&again), [2, 3, 4, 9]);
        let due_later = claim(&mut conn, "c", "PAK", NOW + 60_000, 30_000, 10).unwrap();
        assert_eq!(seqs(&due_later), [7]);
        assert!(claim(&mut conn, "a", "EU", NOW, 30_000, 10).unwrap().is_empty());
    }
}
