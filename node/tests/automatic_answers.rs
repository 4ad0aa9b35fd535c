//! Passes over requests waiting for an automatic answer, on SQLite and
//! PostgreSQL: a request that can never be answered from the data goes to
//! officers (with the reason in its history) instead of being retried for
//! ever, and requests still waiting for an attachment do not hold up the
//! requests behind them. A request answered as it arrives is stored with
//! its answer in one transaction, once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::exchange::{NamingSealer, arrive, arrive_answered, count, message};
use gsp_federation::{Part, TemplateRef};
use gsp_node::config::Config;
use gsp_node::data::query::bulk::LookupCaches;
use gsp_node::exchange::auto::{
    ON_ARRIVAL_MAX_CODES, answer_on_arrival, draft_pending, hand_to_officers, send_drafted,
};
use gsp_node::exchange::model::CaseState;
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

/// A uid-verification request from KEN to PAK in a new case, as it arrives.
fn arriving(body: &Value) -> gsp_node::exchange::store::Arrived {
    let template = TemplateRef {
        name: "uid-verification".into(),
        version: 1,
        part: Part::Request,
    };
    message(
        Uuid::now_v7(),
        Some(template),
        "application/json",
        body.to_string().as_bytes(),
    )
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


    fn a_request_answered_on_arrival_is_stored_with_its_answer_once(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let settings = Config::default().exchange;
        let caches = LookupCaches::new(std::time::Duration::from_secs(10));
        let prepare = |arrived: &gsp_node::exchange::store::Arrived| {
            let prepared = common::exchange::prepare(arrived.clone()).unwrap();
            answer_on_arrival(&db, &caches, &NamingSealer, &settings, &prepared, 1_800_000_000_500)
        };

        let arrived = arriving(&fields(json!({"codes": ["KENUNKNOWN0001", "KENUNKNOWN0002"]})));
        let case = arrived.header.case_id.to_string();
        let answer = prepare(&arrived).expect("an inline request under the automatic policy is answered on arrival");
        assert_eq!(answer.case_id(), case);
        let mut conn = db.conn().unwrap();
        let outcome = arrive_answered(&mut conn, arrived.clone(), Some(&answer)).unwrap();
        assert!(outcome.answered && !outcome.automatic && !outcome.duplicate, "{outcome:?}");
        let n = |conn: &mut _, sql: String| count(conn, &sql);
        assert_eq!(n(&mut conn, format!(
            "SELECT CAST(state AS BIGINT) AS n FROM cases WHERE id = '{case}'")),
            i64::from(CaseState::AnsweredFull.to_i16()));
        assert_eq!(n(&mut conn, format!(
            "SELECT COUNT(*) AS n FROM messages m JOIN outbox o ON o.message_seq = m.seq \
             WHERE m.case_id = '{case}' AND m.from_party = 'PAK' AND o.peer = 'KEN'")), 1);
        assert_eq!(n(&mut conn, format!(
            "SELECT COUNT(*) AS n FROM audit WHERE case_id = '{case}' \
             AND action IN ('request received', 'answer sent')")), 2);
        // Nothing left for the automatic answerer's pass.
        let pass = draft_pending(&mut conn, &NamingSealer, &settings, None, 10).unwrap();
        assert!(pass.prepared.is_empty() && pass.unanswerable.is_empty());

        // The same message again, with another answer made for it: the
        // original receipt, and still one answer.
        let again = prepare(&arrived).expect("prepared again");
        let outcome = arrive_answered(&mut conn, arrived, Some(&again)).unwrap();
        assert!(outcome.duplicate && !outcome.answered, "{outcome:?}");
        assert_eq!(n(&mut conn, format!(
            "SELECT COUNT(*) AS n FROM messages WHERE case_id = '{case}' AND from_party = 'PAK'")), 1);

        // Not answered on arrival: codes in an attachment, too many codes,
        // no codes (left to the pass, which hands it to officers).
        let in_attachment = arriving(&fields(json!({"code_count": 2, "codes_attachment": {
            "name": "codes.txt", "media_type": "text/plain", "size": 10,
            "sha256": "0000000000000000000000000000000000000000000000000000000000000000",
            "message_id": Uuid::now_v7().to_string()}})));
        assert!(prepare(&in_attachment).is_none());
        let many: Vec<String> = (0..=ON_ARRIVAL_MAX_CODES).map(|i| format!("KENUNKNOWN{i:06}")).collect();
        assert!(prepare(&arriving(&fields(json!({"codes": many})))).is_none());
        let none = arriving(&fields(json!({})));
        assert!(prepare(&none).is_none());
        let none_case = none.header.case_id.to_string();
        let outcome = arrive(&mut conn, none).unwrap();
        assert!(outcome.automatic && !outcome.answered);
        let pass = draft_pending(&mut conn, &NamingSealer, &settings, None, 10).unwrap();
        assert_eq!(pass.unanswerable.len(), 1);
        assert_eq!(pass.unanswerable[0].0, none_case);
    }

    /// With a place at the sender's delivery worker, the answer made on
    /// arrival is queued already claimed for this instance and handed back
    /// to the caller; nobody else claims it until the claim lapses, and
    /// then it is claimed like any other message (an instance that died
    /// holding it loses nothing).
    fn an_answer_made_on_arrival_can_be_queued_claimed_for_its_worker(backend: Backend) {
        use gsp_node::exchange::outbox::{QueueClaim, claim};
        let (_guard, db) = common::open(backend);
        let settings = Config::default().exchange;
        let caches = LookupCaches::new(std::time::Duration::from_secs(10));
        let arrived = common::exchange::prepare(arriving(&fields(json!({"codes": ["KENUNKNOWN0001"]})))).unwrap();
        let answer = answer_on_arrival(&db, &caches, &NamingSealer, &settings, &arrived, 1_800_000_000_500)
            .expect("answered on arrival");
        let mut conn = db.conn().unwrap();
        let held = QueueClaim { instance: "node-1".into(), until: 1_800_000_040_000, in_response: false };
        let outcome = gsp_node::exchange::store::record_arrival(
            &mut conn, &arrived, Some(&answer), Some(&held), 1_800_000_000,
        )
        .unwrap();
        assert!(outcome.answered, "{outcome:?}");
        let due = outcome.handed.expect("the answer handed back for the worker");
        assert_eq!((due.peer.as_str(), due.attempts), ("KEN", 0));
        assert!(!due.envelope.is_empty());
        assert_eq!(count(&mut conn, &format!(
            "SELECT COUNT(*) AS n FROM outbox o JOIN messages m ON m.seq = o.message_seq \
             WHERE o.message_seq = {} AND m.message_id = '{}' AND o.claimed_by = 'node-1' \
             AND o.claimed_until = 1800000040000", due.seq, due.message_id)), 1);
        // Another instance finds nothing to claim while the claim holds …
        assert!(claim(&mut conn, "node-2", "KEN", 1_800_000_039_999, 60_000, 8).unwrap().is_empty());
        // … and takes it once it has lapsed.
        let taken = claim(&mut conn, "node-2", "KEN", 1_800_000_040_001, 60_000, 8).unwrap();
        assert_eq!(taken.iter().map(|d| d.seq).collect::<Vec<_>>(), vec![due.seq]);

        // A duplicate hands nothing back.
        let again = gsp_node::exchange::store::record_arrival(
            &mut conn, &arrived, Some(&answer), Some(&held), 1_800_000_000,
        )
        .unwrap();
        assert!(again.duplicate && again.handed.is_none());
    }
}
