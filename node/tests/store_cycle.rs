//! The answering node's database work for single-code verifications, in
//! one process and on one thread, for counting instructions: each round
//! drafts the automatic answer to an arriving request, records the request
//! with its answer, claims the answer from the outbox and records its
//! delivery. No cryptography, no network — the part of `gsp bench exchange`
//! that is SQLite and diesel.
//!
//! Ignored in the test run: it is a measuring harness (BENCHMARKS.md says
//! how it is run under callgrind). It still checks that every request was
//! answered on arrival and every answer delivered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::exchange::{NamingSealer, message, prepare, record};
use gsp_federation::{Part, TemplateRef};
use gsp_node::config::Config;
use gsp_node::data::query::bulk::LookupCaches;
use gsp_node::exchange::auto::answer_on_arrival;
use gsp_node::exchange::outbox;
use gsp_node::storage::Backend;
use serde_json::json;
use uuid::Uuid;

/// `ROUNDS` rounds (default 2,000) on a fresh SQLite database.
#[test]
#[ignore = "a measuring harness: see BENCHMARKS.md"]
fn answering_node_store_work() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let (_guard, db) = common::open(Backend::Sqlite);
    let settings = Config::default().exchange;
    let caches = LookupCaches::new(std::time::Duration::from_secs(10));
    let mut conn = db.conn().unwrap();
    let body = json!({
        "priority": "routine",
        "justification": {"legal_basis": "Protocol Art. 8", "reason": "Packs seized at a border post"},
        "handling": {"purpose_limited": true, "onward_transmission": "prohibited", "classification": "restricted"},
        "codes": ["KENUNKNOWN0001"]
    })
    .to_string();
    // About the size of a signed receipt.
    let receipt = [7u8; 160];
    let now = 1_800_000_000_500;
    let mut delivered = 0;
    for _ in 0..rounds {
        let template = TemplateRef {
            name: "uid-verification".into(),
            version: 1,
            part: Part::Request,
        };
        let arrived = message(
            Uuid::now_v7(),
            Some(template),
            "application/json",
            body.as_bytes(),
        );
        let arrived = prepare(arrived).unwrap();
        let answer = answer_on_arrival(&db, &caches, &NamingSealer, &settings, &arrived, now);
        let outcome = record(&mut conn, &arrived, answer.as_ref()).unwrap();
        assert!(outcome.answered, "{outcome:?}");
        for due in outbox::claim(&mut conn, "bench", "KEN", now, 60_000, 8).unwrap() {
            outbox::delivered(&mut conn, due.seq, &receipt, now).unwrap();
            delivered += 1;
        }
    }
    assert_eq!(delivered, rounds);
}
