//! Races on one case, on SQLite and PostgreSQL:
//! - two messages of one new case arriving at the same time make one case
//!   with both messages, and a copy of a message gets the original receipt
//!   (on PostgreSQL the second arrival's insert of the case waits for the
//!   first to commit and then fails on the key; the arrival must try again
//!   rather than refuse the message);
//! - attachments whose request never came are deleted with their placeholder
//!   case once the request can no longer be accepted, and only then — not
//!   if a request completes the case while the deletion runs;
//! - two answers prepared (checked and sealed) at the same time for one
//!   request: the first stored is sent, the second is refused when stored;
//! - an answer that arrives before the attachment holding its results
//!   leaves the case as it was until that attachment is in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::exchange::{NamingSealer, arrive, attachment, count, message};
use gsp_federation::{Part, TemplateRef};
use gsp_node::auth::{Role, User};
use gsp_node::config::Config;
use gsp_node::exchange::orphans::{ORPHAN_AGE_MS, any_expired, discard_expired};
use gsp_node::exchange::store::{ExchangeError, prepare_answer, store_answer};
use gsp_node::for_each_backend;
use gsp_node::storage::{DbConnection, write_transaction};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

fn officer(id: i64) -> User {
    User {
        id,
        username: format!("officer{id}"),
        display_name: format!("Officer {id}"),
        roles: vec![Role::Officer],
        disabled: false,
    }
}

/// The state and outcome of case `case`.
fn case_state(conn: &mut DbConnection, case: Uuid) -> (i16, Option<String>) {
    use diesel::prelude::*;
    use gsp_node::storage::schema::cases;
    cases::table
        .find(case.to_string())
        .select((cases::state, cases::outcome))
        .first(conn)
        .unwrap()
}

for_each_backend! {
    fn an_answer_waits_for_the_attachment_that_holds_its_results(backend: Backend) {
        use diesel::prelude::*;
        use gsp_node::exchange::model::{AnswerPolicy, CaseRole, CaseState};
        use gsp_node::storage::schema::cases;
        let (_guard, db) = common::open(backend);
        let mut conn = db.conn().unwrap();
        // A case this node (PAK) asked KEN about, delivered.
        let case = Uuid::now_v7();
        diesel::insert_into(cases::table)
            .values((
                cases::id.eq(case.to_string()),
                cases::role.eq(CaseRole::Requester.to_i16()),
                cases::counterpart.eq("KEN"),
                cases::template.eq("uid-verification"),
                cases::template_version.eq(1),
                cases::state.eq(CaseState::Delivered.to_i16()),
                cases::priority.eq("routine"),
                cases::subject.eq("Packs seized"),
                cases::policy.eq(AnswerPolicy::Officer.to_i16()),
                cases::created_at.eq(1_800_000_000_000i64),
                cases::updated_at.eq(1_800_000_000_000i64),
            ))
            .execute(&mut conn)
            .unwrap();
        let results = b"code,status\nPAK1,known\n".to_vec();
        let results_message = attachment(case, &results);
        let results_id = results_message.header.routing.message_id.to_string();
        let sha = |b: &[u8]| hex::encode(ring::digest::digest(&ring::digest::SHA256, b));
        let answer_body = json!({
            "outcome": "full",
            "results_attachment": {"name": "results.csv.gz", "media_type": "text/csv", "size": results.len(),
                "sha256": sha(&results), "message_id": results_id},
        });
        let answer_ref = Some(TemplateRef { name: "uid-verification".into(), version: 1, part: Part::Answer });
        let answer = message(case, answer_ref.clone(), "application/json", &serde_json::to_vec(&answer_body).unwrap());

        // The small answer overtakes its large attachment: not answered yet.
        arrive(&mut conn, answer).unwrap();
        assert_eq!(case_state(&mut conn, case), (CaseState::Delivered.to_i16(), None));
        // Another attachment of the case is not the one it waits for.
        arrive(&mut conn, attachment(case, b"a photo")).unwrap();
        assert_eq!(case_state(&mut conn, case), (CaseState::Delivered.to_i16(), None));
        // Its results arrive: answered in full.
        arrive(&mut conn, results_message).unwrap();
        assert_eq!(case_state(&mut conn, case), (CaseState::AnsweredFull.to_i16(), Some("full".into())));
        let history = count(&mut conn, &format!(
            "SELECT COUNT(*) AS n FROM audit WHERE case_id = '{case}' AND action IN ('answer received, waiting for its attachments', 'answer received')"));
        assert_eq!(history, 2);

    }

    fn two_messages_of_a_new_case_arriving_together_are_both_kept(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let case = Uuid::now_v7();
        let first = attachment(case, b"first photo");
        let second = attachment(case, b"second photo");
        let mut one = db.conn().unwrap();
        let mut other = db.conn().unwrap();
        // The first arrival's transaction stays open while the second runs:
        // the second reads no case, inserts one, and must wait for the first.
        let (first_outcome, racing) = write_transaction(&mut one, |conn| {
            let outcome = arrive(conn, first.clone())?;
            let racing = std::thread::spawn(move || arrive(&mut other, second));
            std::thread::sleep(Duration::from_millis(300));
            Ok::<_, ExchangeError>((outcome, racing))
        })
        .unwrap();
        let second_outcome = racing.join().unwrap().expect("the second message is accepted");
        assert!(!first_outcome.duplicate && !second_outcome.duplicate);
        assert_eq!(second_outcome.case_id, case.to_string());

        let mut conn = db.conn().unwrap();
        let in_case = |conn: &mut DbConnection, table: &str| {
            count(conn, &format!("SELECT COUNT(*) AS n FROM {table} WHERE {} = '{case}'",
                if table == "cases" { "id" } else { "case_id" }))
        };
        assert_eq!(in_case(&mut conn, "cases"), 1);
        assert_eq!(in_case(&mut conn, "messages"), 2);

        // A copy of the first message: its original receipt, nothing added.
        let again = arrive(&mut conn, first).unwrap();
        assert!(again.duplicate);
        assert_eq!(again.receipt, first_outcome.receipt);
        assert_eq!(in_case(&mut conn, "messages"), 2);
    }

    fn attachments_whose_request_never_came_are_discarded_after_the_message_lifetime(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let mut conn = db.conn().unwrap();
        // `arrive` records at this instant (Unix ms).
        let arrived_at = 1_800_000_000;
        let orphan = Uuid::now_v7();
        arrive(&mut conn, attachment(orphan, b"photo one")).unwrap();
        arrive(&mut conn, attachment(orphan, b"photo two!")).unwrap();
        // A case whose request did come after its attachment is kept.
        let complete = Uuid::now_v7();
        arrive(&mut conn, attachment(complete, b"photo three")).unwrap();
        let template = TemplateRef { name: "free-text".into(), version: 1, part: Part::Request };
        let request = json!({"category": "question", "subject": "Seizure", "text": "See the photo."});
        arrive(&mut conn, message(complete, Some(template), "application/json", request.to_string().as_bytes())).unwrap();
        let rows = |conn: &mut DbConnection, case: Uuid| {
            ["cases", "messages", "audit"].map(|table| {
                count(conn, &format!("SELECT COUNT(*) AS n FROM {table} WHERE {} = '{case}'",
                    if table == "cases" { "id" } else { "case_id" }))
            })
        };
        assert_eq!(rows(&mut conn, orphan)[..2], [1, 2]);
        let complete_rows = rows(&mut conn, complete);
        assert_eq!(complete_rows[..2], [1, 2]);

        // Within the lifetime the request may still come: nothing goes.
        assert!(!any_expired(&mut conn, arrived_at + ORPHAN_AGE_MS).unwrap());
        assert!(any_expired(&mut conn, arrived_at + ORPHAN_AGE_MS + 1).unwrap());
        let early = write_transaction(&mut conn, |c| discard_expired(c, arrived_at + ORPHAN_AGE_MS)).unwrap();
        assert!(early.is_empty(), "{early:?}");
        assert_eq!(rows(&mut conn, orphan)[..2], [1, 2]);

        let gone = write_transaction(&mut conn, |c| discard_expired(c, arrived_at + ORPHAN_AGE_MS + 1)).unwrap();
        assert_eq!(gone.len(), 1, "{gone:?}");
        assert_eq!((gone[0].case_id.as_str(), gone[0].from.as_str()), (orphan.to_string().as_str(), "KEN"));
        assert_eq!((gone[0].attachments, gone[0].bytes, gone[0].arrived_at), (2, 19, arrived_at));
        assert_eq!(rows(&mut conn, orphan), [0, 0, 0]);
        assert_eq!(rows(&mut conn, complete), complete_rows);
        // Nothing left to discard.
        assert!(!any_expired(&mut conn, arrived_at + 2 * ORPHAN_AGE_MS).unwrap());
        let again = write_transaction(&mut conn, |c| discard_expired(c, arrived_at + 2 * ORPHAN_AGE_MS)).unwrap();
        assert!(again.is_empty(), "{again:?}");
    }

    fn a_placeholder_completed_while_it_is_discarded_keeps_its_messages(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let case = Uuid::now_v7();
        let mut one = db.conn().unwrap();
        let mut other = db.conn().unwrap();
        arrive(&mut one, attachment(case, b"photo")).unwrap();
        let template = TemplateRef { name: "free-text".into(), version: 1, part: Part::Request };
        let request = json!({"category": "question", "subject": "Late", "text": "See the photo."});
        let late = 1_800_000_000 + ORPHAN_AGE_MS + 1;
        // The request completes the placeholder in a transaction left open
        // while the discard runs on another connection: on PostgreSQL the
        // discard still reads the placeholder, then waits for its row.
        let racing = write_transaction(&mut one, |conn| {
            arrive(conn, message(case, Some(template), "application/json", request.to_string().as_bytes()))?;
            let racing = std::thread::spawn(move || {
                write_transaction(&mut other, |c| discard_expired(c, late))
            });
            std::thread::sleep(Duration::from_millis(300));
            Ok::<_, ExchangeError>(racing)
        })
        .unwrap();
        let discarded = racing.join().unwrap().unwrap();
        assert!(discarded.is_empty(), "{discarded:?}");
        let mut conn = db.conn().unwrap();
        assert_eq!(count(&mut conn, &format!("SELECT COUNT(*) AS n FROM cases WHERE id = '{case}'")), 1);
        assert_eq!(count(&mut conn, &format!("SELECT COUNT(*) AS n FROM messages WHERE case_id = '{case}'")), 2);
    }

    fn of_two_answers_prepared_together_only_the_first_stored_is_sent(backend: Backend) {
        let (_guard, db) = common::open(backend);
        let mut conn = db.conn().unwrap();
        let case = Uuid::now_v7();
        let request = json!({"category": "question", "subject": "Licensing", "text": "Who answers?"});
        let template = TemplateRef { name: "free-text".into(), version: 1, part: Part::Request };
        arrive(&mut conn, message(case, Some(template), "application/json", request.to_string().as_bytes())).unwrap();

        let settings = Config::default().exchange;
        let body = |text: &str| json!({
            "outcome": "full",
            "handling": {"purpose_limited": true, "onward_transmission": "prohibited", "classification": "restricted"},
            "text": text
        });
        let case_id = case.to_string();
        let (one, two) = (officer(1), officer(2));
        let first = prepare_answer(&mut conn, &NamingSealer, &settings, Some(&one), &case_id, body("first"), Vec::new(), 1_800_000_001).unwrap();
        let second = prepare_answer(&mut conn, &NamingSealer, &settings, Some(&two), &case_id, body("second"), Vec::new(), 1_800_000_002).unwrap();
        store_answer(&mut conn, &first).expect("the first answer is stored");
        match store_answer(&mut conn, &second) {
            Err(ExchangeError::Conflict(why)) => assert!(why.contains("cannot be answered now"), "{why}"),
            other => panic!("the second answer must be refused, got {other:?}"),
        }
        let answers = count(&mut conn, &format!(
            "SELECT COUNT(*) AS n FROM messages WHERE case_id = '{case}' AND from_party = 'PAK'"));
        assert_eq!(answers, 1);
        let queued = count(&mut conn, &format!(
            "SELECT COUNT(*) AS n FROM outbox o JOIN messages m ON m.seq = o.message_seq WHERE m.case_id = '{case}'"));
        assert_eq!(queued, 1);
    }
}
