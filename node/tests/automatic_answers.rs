//! Passes over requests waiting for an automatic answer, on SQLite and
//! PostgreSQL: a request that can never be answered from the data goes to
//! officers (with the reason in its history) instead of being retried for
//! ever, and requests still waiting for an attachment do not hold up the
//! requests behind them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::exchange::{NamingSealer, arrive, count, message};
use gsp_federation::{Part, TemplateRef};
use gsp_node::config::Config;
use gsp_node::exchange::auto::{draft_pending, hand_to_officers, send_drafted};
use gsp_node::for_each_backend;
use serde_json::{Value, json};
use uuid::Uuid;

/// A uid-verification request from KEN arriving at PAK; returns its case id.
fn request(conn: &mut gsp_node::storage::DbConnection, body: Value) -> String {
    let case = Uuid::now_v7();
    let template = TemplateRef {
        name: "uid-verification".into(),
        version: 1,
        part: Part::Request,
    };
    let arrived = message(
        case,
        Some(template),
        "application/json",
        body.to_string().as_bytes(),
    );
    arrive(conn, arrived).unwrap();
    case.to_string()
}

fn fields(extra: Value) -> Value {
    let mut body = json!({
        "priority": "routine",
        "justification": {"legal_basis": "Protocol Art. 8", "reason": "Packs seized at a border post"},
        "handling": {"purpose_limited": true, "onward_transmission": "prohibited", "classification": "restricted"}
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    body
}

for_each_backend! {
    fn passes_go_round_the_waiting_requests_and_hand_the_unanswerable_to_officers(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let mut conn = db.conn().unwrap();
        let settings = Config::default().exchange;
        // Oldest first: one naming no codes, one whose codes attachment has
        // not arrived, one that can be answered.
        let nothing = request(&mut conn, fields(json!({})));
        let waiting = request(&mut conn, fields(json!({"code_count": 2, "codes_attachment": {
            "name": "codes.txt", "media_type": "text/plain", "size": 10,
            "sha256": "0000000000000000000000000000000000000000000000000000000000000000",
            "message_id": Uuid::now_v7().to_string()}})));
        let ready = request(&mut conn, fields(json!({"codes": ["KENUNKNOWN0001"]})));

        // One request per pass: each pass goes on after the last one.
        let first = draft_pending(&mut conn, &NamingSealer, &settings, None, 1).unwrap();
        assert!(first.prepared.is_empty());
        assert_eq!(first.unanswerable.len(), 1);
        assert_eq!(first.unanswerable[0].0, nothing);
        assert!(first.unanswerable[0].1.contains("names no codes"), "{:?}", first.unanswerable);
        assert_eq!(hand_to_officers(&mut conn, &first.unanswerable), 1);

        let second = draft_pending(&mut conn, &NamingSealer, &settings, first.next.as_ref(), 1).unwrap();
        assert!(second.prepared.is_empty() && second.unanswerable.is_empty());
        let third = draft_pending(&mut conn, &NamingSealer, &settings, second.next.as_ref(), 1).unwrap();
        assert_eq!(third.prepared.len(), 1, "the request behind the waiting one is answered");
        assert_eq!(third.prepared[0].case_id(), ready);
        let fourth = draft_pending(&mut conn, &NamingSealer, &settings, third.next.as_ref(), 1).unwrap();
        assert!(fourth.prepared.is_empty() && fourth.next.is_none(), "the end of the list");
        assert_eq!(send_drafted(&mut conn, third.prepared), 1);

        // From the start again: only the one waiting for its attachment is left.
        let again = draft_pending(&mut conn, &NamingSealer, &settings, None, 10).unwrap();
        assert!(again.prepared.is_empty() && again.unanswerable.is_empty() && again.next.is_none());
        let policy_of = |conn: &mut _, case: &str| count(conn, &format!(
            "SELECT CAST(policy AS BIGINT) AS n FROM cases WHERE id = '{case}'"));
        assert_eq!(policy_of(&mut conn, &nothing), i64::from(gsp_node::exchange::model::AnswerPolicy::Officer.to_i16()));
        assert_eq!(policy_of(&mut conn, &waiting), i64::from(gsp_node::exchange::model::AnswerPolicy::Automatic.to_i16()));
        assert_eq!(count(&mut conn, &format!(
            "SELECT COUNT(*) AS n FROM audit WHERE case_id = '{nothing}' AND action = 'automatic answer impossible; left for an officer'")), 1);
        assert_eq!(count(&mut conn, &format!(
            "SELECT COUNT(*) AS n FROM messages WHERE case_id = '{ready}' AND from_party = 'PAK'")), 1);
        // Handing over twice changes nothing.
        assert_eq!(hand_to_officers(&mut conn, &first.unanswerable), 0);
    }
}
