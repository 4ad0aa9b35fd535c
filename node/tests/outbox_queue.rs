//! The outbox as delivery workers read it, on SQLite and PostgreSQL: which
//! peers have messages due, and claims that take each peer's oldest due
//! messages in order, a batch at a time, skipping those another worker holds;
//! delivery outcomes, recorded only on a message still waiting for one; a
//! failed message retried, its case with it; and a restarted instance
//! releasing the claims its previous run left.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use diesel::prelude::*;
use gsp_node::config::Config;
use gsp_node::exchange::outbox::{
    CANCELLED, Retry, attempt_failed, cancel, claim, delivered, peers_due, release_claims,
    retry_case, retry_now,
};
use gsp_node::for_each_backend;
use gsp_node::storage::DbConnection;
use gsp_node::storage::testing::{BareMessage, insert_bare_message};

const NOW: i64 = 1_800_000_000_000;

/// Queues message `seq` for `peer` in outbox `state`, due at `due`.
fn queue(conn: &mut DbConnection, seq: i64, peer: &str, state: i16, due: i64) {
    let envelope = [seq as u8];
    let m = BareMessage {
        to: peer,
        direction: 1,
        envelope: Some(&envelope),
        created_at: NOW,
        ..BareMessage::new(seq, "case")
    };
    insert_bare_message(conn, &m).unwrap();
    diesel::sql_query(format!(
        "INSERT INTO outbox (message_seq, peer, state, attempts, next_attempt_at, expires_at, created_at) \
         VALUES ({seq}, '{peer}', {state}, 0, {due}, {}, {NOW})",
        NOW + 3_600_000
    ))
    .execute(conn)
    .unwrap();
}

/// A case `id` in `state` (as a number) with PAK.
fn case(conn: &mut DbConnection, id: &str, state: i16) {
    diesel::sql_query(format!(
        "INSERT INTO cases (id, role, counterpart, template, template_version, state, \
           priority, subject, policy, created_at, updated_at) \
         VALUES ('{id}', 0, 'PAK', 'free-text', 1, {state}, 'routine', 's', 1, {NOW}, {NOW})"
    ))
    .execute(conn)
    .unwrap();
}

/// Message `seq` sent to PAK in `case`, of `kind`, in message state
/// `state`, with its outbox row in `outbox_state`.
fn sent(conn: &mut DbConnection, seq: i64, case: &str, kind: i16, state: i16, outbox_state: i16) {
    diesel::sql_query(format!(
        "INSERT INTO messages (seq, message_id, from_party, to_party, case_id, direction, kind, \
           content_type, body, body_sha256, envelope, state, created_at) \
         VALUES ({seq}, 'm{seq}', 'KEN', 'PAK', '{case}', 0, {kind}, 'application/json', \
           $1, '', $2, {state}, {NOW})"
    ))
    .bind::<diesel::sql_types::Binary, _>(b"{}".to_vec())
    .bind::<diesel::sql_types::Binary, _>(vec![seq as u8])
    .execute(conn)
    .unwrap();
    diesel::sql_query(format!(
        "INSERT INTO outbox (message_seq, peer, state, attempts, next_attempt_at, expires_at, \
           created_at, claimed_by, claimed_until) \
         VALUES ({seq}, 'PAK', {outbox_state}, 0, {NOW}, {}, {NOW}, 'w', {})",
        NOW + 3_600_000,
        NOW + 60_000
    ))
    .execute(conn)
    .unwrap();
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::SmallInt)]
    state: i16,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Binary>)]
    receipt: Option<Vec<u8>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    delivered_at: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::SmallInt)]
    outbox_state: i16,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    claimed_until: Option<i64>,
}

/// Message `seq` and its outbox row.
fn row(conn: &mut DbConnection, seq: i64) -> Row {
    diesel::sql_query(format!(
        "SELECT m.state, m.receipt, m.delivered_at, o.state AS outbox_state, o.claimed_until \
         FROM messages m JOIN outbox o ON o.message_seq = m.seq WHERE m.seq = {seq}"
    ))
    .get_result(conn)
    .unwrap()
}

/// The state of case `id` and when it last changed.
fn case_state(conn: &mut DbConnection, id: &str) -> (i16, i64) {
    #[derive(QueryableByName)]
    struct State {
        #[diesel(sql_type = diesel::sql_types::SmallInt)]
        state: i16,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        updated_at: i64,
    }
    let s: State = diesel::sql_query(format!(
        "SELECT state, updated_at FROM cases WHERE id = '{id}'"
    ))
    .get_result(conn)
    .unwrap();
    (s.state, s.updated_at)
}

/// Outbox row `seq`'s state, attempts, next attempt and last error.
fn retry_of(conn: &mut DbConnection, seq: i64) -> (i16, i32, i64, Option<String>) {
    #[derive(QueryableByName)]
    struct Retried {
        #[diesel(sql_type = diesel::sql_types::SmallInt)]
        state: i16,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        attempts: i32,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        next_attempt_at: i64,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        last_error: Option<String>,
    }
    let r: Retried = diesel::sql_query(format!(
        "SELECT state, attempts, next_attempt_at, last_error FROM outbox WHERE message_seq = {seq}"
    ))
    .get_result(conn)
    .unwrap();
    (r.state, r.attempts, r.next_attempt_at, r.last_error)
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
    /// A restarted instance releases the claims its previous run held on
    /// pending messages, and only those: they are claimed again at once,
    /// while another instance's stay held until their lease runs out.
    fn an_instance_releases_only_its_own_pending_claims(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let mut conn = db.conn().unwrap();
        case(&mut conn, "case", 1);
        for seq in 1..=4 {
            queue(&mut conn, seq, "PAK", 0, NOW);
        }
        // "old" (the earlier run) holds 1 and 2, "other" holds 3.
        assert_eq!(seqs(&claim(&mut conn, "old", "PAK", NOW, 60_000, 2).unwrap()), [1, 2]);
        assert_eq!(seqs(&claim(&mut conn, "other", "PAK", NOW, 60_000, 1).unwrap()), [3]);
        // 2 was delivered meanwhile: its row is no longer pending.
        delivered(&mut conn, 2, b"receipt", NOW + 1).unwrap();

        assert_eq!(release_claims(&mut conn, "old").unwrap(), 1);
        assert_eq!(release_claims(&mut conn, "old").unwrap(), 0, "released once");
        assert_eq!(row(&mut conn, 2).outbox_state, 1, "a delivered message is left as it is");
        // Within the leases: 1 (released) and 4 (never claimed) are due, 3 is not.
        let now = claim(&mut conn, "old", "PAK", NOW + 10, 60_000, 10).unwrap();
        assert_eq!(seqs(&now), [1, 4]);
    }
    /// A failed attempt is due again after the back-off, or after the wait
    /// the peer asked for (429 `Retry-After`) when that is longer; a message
    /// the peer refused fails at once, and its case with it.
    fn a_failed_attempt_waits_its_back_off_or_longer_if_the_peer_asked(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let mut conn = db.conn().unwrap();
        let mut settings = Config::default().exchange;
        (settings.retry_base_ms, settings.retry_cap_secs) = (100, 300);
        case(&mut conn, "asked", 1);
        sent(&mut conn, 1, "asked", 0, 2, 0);

        // The back-off alone: 100 ms ± 25 %.
        attempt_failed(&mut conn, &settings, 1, "503 internal_error", Retry::After { at_least_ms: 0 }, NOW).unwrap();
        let (state, attempts, next, error) = retry_of(&mut conn, 1);
        assert_eq!((state, attempts, error.as_deref()), (0, 1, Some("503 internal_error")));
        assert!((NOW + 75..=NOW + 125).contains(&next), "{}", next - NOW);

        // The peer asked for a second (429 with Retry-After: 1): longer than
        // the 200 ms ± 25 % back-off of the second attempt.
        attempt_failed(&mut conn, &settings, 1, "429 rate_limited", Retry::After { at_least_ms: 1000 }, NOW).unwrap();
        assert_eq!(retry_of(&mut conn, 1), (0, 2, NOW + 1000, Some("429 rate_limited".to_owned())));

        // A back-off longer than the wait asked for wins: 100 × 2^5 ms ± 25 %.
        for _ in 0..3 {
            attempt_failed(&mut conn, &settings, 1, "429 rate_limited", Retry::After { at_least_ms: 1000 }, NOW).unwrap();
        }
        let (_, attempts, next, _) = retry_of(&mut conn, 1);
        assert_eq!(attempts, 5);
        assert!((NOW + 1200..=NOW + 2000).contains(&next), "{}", next - NOW);

        // Refused by the peer: failed at once, with the reason.
        attempt_failed(&mut conn, &settings, 1, "422 invalid_body", Retry::Never, NOW).unwrap();
        let (state, attempts, _, _) = retry_of(&mut conn, 1);
        assert_eq!((state, attempts), (2, 6));
        assert_eq!(case_state(&mut conn, "asked"), (8, NOW), "its case failed");
    }

    /// A delivery outcome marks the message delivered with the peer's
    /// receipt and ends its outbox claim; a request's case is delivered once
    /// its attachments are too, an answer's case keeps its state. A message
    /// cancelled while its delivery was on the way is recorded as delivered
    /// when the peer accepted it (the receipt is the evidence of what the
    /// peer holds), with its own entry in the history; one delivered already
    /// or failed is left as it is.
    fn delivery_outcomes_are_recorded_once_and_kept_as_evidence(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let mut conn = db.conn().unwrap();
        let later = NOW + 5_000;
        // (request 0, answer 1, attachment 2; message queued 2, failed 4,
        // cancelled 5; outbox pending 0, failed 2, cancelled 3; case queued 1,
        // answered in full 4, failed 8)
        case(&mut conn, "asked", 1);
        sent(&mut conn, 1, "asked", 0, 2, 0);
        sent(&mut conn, 2, "asked", 2, 2, 0);
        case(&mut conn, "withdrawn", 8);
        sent(&mut conn, 3, "withdrawn", 0, 5, 3);
        diesel::sql_query(format!(
            "UPDATE cases SET failure = '{CANCELLED}' WHERE id = 'withdrawn'"
        ))
        .execute(&mut conn)
        .unwrap();
        case(&mut conn, "answered", 4);
        sent(&mut conn, 4, "answered", 1, 2, 0);
        case(&mut conn, "expired", 8);
        sent(&mut conn, 5, "expired", 0, 4, 2);

        delivered(&mut conn, 1, b"receipt 1", later).unwrap();
        let delivered_row = |receipt: &[u8]| Row {
            state: 3,
            receipt: Some(receipt.to_vec()),
            delivered_at: Some(later),
            outbox_state: 1,
            claimed_until: None,
        };
        assert_eq!(row(&mut conn, 1), delivered_row(b"receipt 1"));
        assert_eq!(case_state(&mut conn, "asked"), (1, NOW), "its attachment is not delivered yet");
        delivered(&mut conn, 2, b"receipt 2", later).unwrap();
        assert_eq!(row(&mut conn, 2), delivered_row(b"receipt 2"));
        assert_eq!(case_state(&mut conn, "asked"), (2, later));

        // The same outcome again (a second worker, a retry) changes nothing.
        delivered(&mut conn, 1, b"another receipt", later + 1).unwrap();
        assert_eq!(row(&mut conn, 1), delivered_row(b"receipt 1"));

        delivered(&mut conn, 3, b"receipt 3", later).unwrap();
        assert_eq!(row(&mut conn, 3), delivered_row(b"receipt 3"));
        assert_eq!(case_state(&mut conn, "withdrawn"), (2, later));
        // And once only.
        delivered(&mut conn, 3, b"another receipt", later + 1).unwrap();
        assert_eq!(row(&mut conn, 3), delivered_row(b"receipt 3"));

        delivered(&mut conn, 4, b"receipt 4", later).unwrap();
        assert_eq!(row(&mut conn, 4), delivered_row(b"receipt 4"));
        assert_eq!(case_state(&mut conn, "answered"), (4, NOW));

        delivered(&mut conn, 5, b"receipt 5", later).unwrap();
        assert_eq!(
            row(&mut conn, 5),
            Row { state: 4, receipt: None, delivered_at: None, outbox_state: 2, claimed_until: Some(NOW + 60_000) }
        );
        assert_eq!(case_state(&mut conn, "expired"), (8, NOW));

        let mut audited = |action: &str| {
            common::exchange::count(
                &mut conn,
                &format!("SELECT COUNT(*) AS n FROM audit WHERE action = '{action}'"),
            )
        };
        assert_eq!(audited("delivered"), 3);
        assert_eq!(audited("delivered after cancellation"), 1);
    }
    /// `gsp outbox retry` of a failed message puts its case back where it
    /// was before the failure — a request's case queued (then delivered as
    /// usual), an answer's case answered with its outcome — without the
    /// failure's reason; a case not failed is left alone.
    fn a_failed_message_retried_takes_its_case_back(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let mut conn = db.conn().unwrap();
        let settings = Config::default().exchange;
        let later = NOW + 5_000;
        // (request 0, answer 1; message failed 4; outbox failed 2; case
        // failed 8, queued 1, answered in part 5)
        case(&mut conn, "asked", 8);
        sent(&mut conn, 1, "asked", 0, 4, 2);
        case(&mut conn, "answered", 8);
        sent(&mut conn, 2, "answered", 1, 4, 2);
        case(&mut conn, "moved on", 1);
        sent(&mut conn, 3, "moved on", 0, 4, 2);
        diesel::sql_query("UPDATE cases SET failure = 'expired', outcome = 'partial'")
            .execute(&mut conn)
            .unwrap();

        for seq in [1, 2, 3] {
            assert!(retry_now(&mut conn, &settings, seq, later).unwrap());
        }
        let failure = |conn: &mut DbConnection, id: &str| -> i64 {
            common::exchange::count(conn, &format!(
                "SELECT COUNT(*) AS n FROM cases WHERE id = '{id}' AND failure IS NOT NULL"))
        };
        assert_eq!(case_state(&mut conn, "asked"), (1, later));
        assert_eq!(failure(&mut conn, "asked"), 0);
        assert_eq!(case_state(&mut conn, "answered"), (5, later));
        assert_eq!(case_state(&mut conn, "moved on"), (1, NOW), "not failed: left alone");
        let retried = row(&mut conn, 1);
        assert_eq!((retried.state, retried.outbox_state, retried.claimed_until), (2, 0, None));

        // Delivered now, the request's case is delivered as any other.
        delivered(&mut conn, 1, b"receipt 1", later + 1).unwrap();
        assert_eq!(case_state(&mut conn, "asked"), (2, later + 1));
    }
    /// `gsp outbox retry --case`: a request failed together with its
    /// attachments is retried whole — every failed or pending message of the
    /// case, in sending order, the case queued again; a delivered one, and
    /// other cases, are left as they are.
    fn a_case_is_retried_with_its_attachments(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let mut conn = db.conn().unwrap();
        let settings = Config::default().exchange;
        let later = NOW + 5_000;
        // (request 0, attachment 2; message failed 4, delivered 3,
        // cancelled 5; outbox failed 2, delivered 1, cancelled 3; case failed 8)
        case(&mut conn, "with files", 8);
        sent(&mut conn, 10, "with files", 0, 4, 2);
        sent(&mut conn, 12, "with files", 2, 4, 2);
        sent(&mut conn, 11, "with files", 2, 3, 1);
        case(&mut conn, "other", 8);
        sent(&mut conn, 14, "other", 0, 4, 2);

        assert_eq!(retry_case(&mut conn, &settings, "with files", later).unwrap(), [10, 12]);
        for seq in [10, 12] {
            let r = row(&mut conn, seq);
            assert_eq!((r.state, r.outbox_state, r.claimed_until), (2, 0, None), "message {seq}");
        }
        assert_eq!(row(&mut conn, 11).outbox_state, 1, "delivered: left alone");
        assert_eq!(row(&mut conn, 14).outbox_state, 2, "another case: left alone");
        assert_eq!(case_state(&mut conn, "with files"), (1, later));
        assert!(retry_case(&mut conn, &settings, "no such case", later).unwrap().is_empty());

        // Delivered, all of them: the case is delivered.
        delivered(&mut conn, 10, b"receipt 10", later + 1).unwrap();
        assert_eq!(case_state(&mut conn, "with files").0, 1, "an attachment is still on its way");
        delivered(&mut conn, 12, b"receipt 12", later + 2).unwrap();
        assert_eq!(case_state(&mut conn, "with files"), (2, later + 2));
    }
    /// `gsp outbox cancel`: the case fails with the reason, as on expiry;
    /// should a delivery already on its way be accepted after all, the case
    /// is taken out of `failed` again — a request's delivered, an answer's
    /// answered with its outcome. A request's undelivered attachments are
    /// cancelled with it.
    fn a_cancelled_message_fails_its_case_until_delivered_after_all(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let mut conn = db.conn().unwrap();
        let later = NOW + 5_000;
        // (request 0, answer 1; message queued 2; outbox pending 0; case
        // queued 1, answered in part 5, failed 8, delivered 2)
        case(&mut conn, "asked", 1);
        sent(&mut conn, 1, "asked", 0, 2, 0);
        case(&mut conn, "answered", 5);
        sent(&mut conn, 2, "answered", 1, 2, 0);
        diesel::sql_query("UPDATE cases SET outcome = 'partial' WHERE id = 'answered'")
            .execute(&mut conn)
            .unwrap();
        let failure = |conn: &mut DbConnection, id: &str| -> i64 {
            common::exchange::count(conn, &format!(
                "SELECT COUNT(*) AS n FROM cases WHERE id = '{id}' AND failure = '{CANCELLED}'"))
        };

        for seq in [1, 2] {
            assert!(cancel(&mut conn, seq, later).unwrap());
            assert!(!cancel(&mut conn, seq, later).unwrap(), "cancelled once");
        }
        assert_eq!(case_state(&mut conn, "asked"), (8, later));
        assert_eq!(case_state(&mut conn, "answered"), (8, later));
        assert_eq!(failure(&mut conn, "asked"), 1);

        delivered(&mut conn, 1, b"receipt 1", later + 1).unwrap();
        delivered(&mut conn, 2, b"receipt 2", later + 1).unwrap();
        assert_eq!(case_state(&mut conn, "asked"), (2, later + 1));
        assert_eq!(case_state(&mut conn, "answered"), (5, later + 1));
        assert_eq!(failure(&mut conn, "asked") + failure(&mut conn, "answered"), 0);

        // A request takes its undelivered attachments with it (they would
        // reach the peer as a case without a request); one delivered
        // already stays delivered. An attachment cancelled alone leaves the
        // request on its way.
        case(&mut conn, "with files", 1);
        sent(&mut conn, 3, "with files", 0, 2, 0);
        sent(&mut conn, 4, "with files", 2, 2, 0);
        sent(&mut conn, 5, "with files", 2, 3, 1);
        case(&mut conn, "one file", 1);
        sent(&mut conn, 6, "one file", 0, 2, 0);
        sent(&mut conn, 7, "one file", 2, 2, 0);
        assert!(cancel(&mut conn, 3, later).unwrap());
        assert_eq!((row(&mut conn, 4).state, row(&mut conn, 4).outbox_state), (5, 3));
        assert_eq!((row(&mut conn, 5).state, row(&mut conn, 5).outbox_state), (3, 1));
        assert!(cancel(&mut conn, 7, later).unwrap());
        assert_eq!(row(&mut conn, 6).outbox_state, 0, "the request is still on its way");
        assert_eq!(case_state(&mut conn, "one file"), (8, later));
    }
}
