//! The data store end to end through the library: generate, import, trace,
//! query and bulk-lookup, on SQLite and on PostgreSQL.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{count, generated, import, open};
use gsp_node::data::import::{Format, ImportError};
use gsp_node::data::model::{EventKind, Level};
use gsp_node::data::query::bulk::{
    CodeVerdict, LookupCache, SPLIT_MIN, VerdictStatus, bulk_lookup, bulk_lookup_with,
};
use gsp_node::data::query::events::{EventQuery, query_document, query_events};
use gsp_node::data::query::trace::trace;
use gsp_node::data::synthetic::GenFormat;
use gsp_node::for_each_backend;
use serde_json::Value;
use std::io::Write;

fn codes_of(path: &std::path::Path, level: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("code,") && l.split(',').nth(2) == Some(level))
        .map(|l| l.split(',').nth(1).unwrap().to_owned())
        .collect()
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

for_each_backend! {
    fn generated_data_imports_and_traces(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let (file, summary) = generated(dir.path(), 45_000, 3, GenFormat::Csv);
        let (_g, db) = open(backend);
        let report = import(&db, &file).unwrap();
        assert_eq!(report.format, Format::Csv);
        assert_eq!(report.stats.codes_new, summary.codes);
        assert_eq!(report.stats.events_new, summary.events);
        assert_eq!(count(&db, "codes") as u64, summary.codes);
        assert_eq!(count(&db, "events") as u64, summary.events);

        let pack = codes_of(&file, "unit")[777].clone();
        let mut conn = db.conn().unwrap();
        let t = trace(&mut conn, &pack).unwrap().expect("pack is known");
        assert_eq!(t.level, Level::Unit);
        let m = t.art_8_4_1.manufacture.as_ref().expect("manufacture record");
        assert!(m.manufactured_at.is_some() && m.shift.is_some());
        assert!(m.facility.as_ref().unwrap().id.starts_with("KEN-F-"));
        assert!(m.machine.as_ref().unwrap().id.starts_with("KEN-M-"));
        assert!(m.product.as_ref().unwrap().intended_market.is_some());
        assert_eq!(t.parents[0].level, Level::Carton);
        assert!(t.parents.len() >= 2, "carton and case at least: {:?}", t.parents);
        let kinds: Vec<EventKind> = t.history.iter().map(|h| h.kind).collect();
        for k in [EventKind::Application, EventKind::Aggregation, EventKind::Dispatch, EventKind::Invoice, EventKind::Arrival] {
            assert!(kinds.contains(&k), "{k:?} missing from {kinds:?}");
        }
        let times: Vec<&String> = t.history.iter().map(|h| &h.time).collect();
        let mut sorted_ms: Vec<i64> = t.history.iter().map(|h| gsp_node::data::epcis::parse_time(&h.time).unwrap().0).collect();
        let before = sorted_ms.clone();
        sorted_ms.sort();
        assert_eq!(before, sorted_ms, "history in time order: {times:?}");
        let first = t.art_8_4_1.e_first_customer.as_ref().expect("first customer");
        assert!(first["customer"].as_str().unwrap().starts_with("KEN-EO-D"), "{first}");

        // Down the chain: a carton has its 20 packs.
        let carton = &t.parents[0].code;
        let c = trace(&mut conn, carton).unwrap().unwrap();
        assert_eq!(c.children.count, 20);
        assert!(c.children.codes.iter().any(|ch| ch.code == pack));

        assert!(trace(&mut conn, "KEN1NOTAREALCODE").unwrap().is_none());
        // The same code written as a GSP URI is the same code.
        assert!(trace(&mut conn, &format!("urn:gsp:uid:{pack}")).unwrap().is_some());

        // Re-importing the same file changes nothing.
        let again = import(&db, &file).unwrap();
        assert!(again.already_imported);
        assert_eq!(count(&db, "codes") as u64, summary.codes);
    }

    fn csv_and_epcis_json_of_the_same_data_give_the_same_answers(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let (csv, _) = generated(dir.path(), 6_000, 11, GenFormat::Csv);
        let (json, _) = generated(dir.path(), 6_000, 11, GenFormat::EpcisJson);
        let (_g1, db1) = open(backend);
        let (_g2, db2) = open(backend);
        import(&db1, &csv).unwrap();
        let r = import(&db2, &json).unwrap();
        assert_eq!(r.format, Format::EpcisJson);
        assert_eq!(count(&db1, "codes"), count(&db2, "codes"));
        assert_eq!(count(&db1, "events"), count(&db2, "events"));
        let mut c1 = db1.conn().unwrap();
        let mut c2 = db2.conn().unwrap();
        let units = codes_of(&csv, "unit");
        let cases = codes_of(&csv, "case");
        for code in [&units[0], &units[2500], &units[5999], &cases[1]] {
            let a = serde_json::to_value(trace(&mut c1, code).unwrap().unwrap()).unwrap();
            let b = serde_json::to_value(trace(&mut c2, code).unwrap().unwrap()).unwrap();
            assert_eq!(a["art_8_4_1"], b["art_8_4_1"], "{code}");
            assert_eq!(a["parents"], b["parents"], "{code}");
            assert_eq!(a["children"]["count"], b["children"]["count"], "{code}");
            let kinds = |v: &Value| v["history"].as_array().unwrap().iter().map(|h| (h["time"].clone(), h["kind"].clone())).collect::<Vec<_>>();
            assert_eq!(kinds(&a), kinds(&b), "{code}");
        }
    }

    fn a_file_with_an_error_imports_nothing_and_says_where(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let (file, _) = generated(dir.path(), 3_000, 5, GenFormat::Csv);
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        writeln!(f, "code,KEN1BROKEN,crate").unwrap();
        drop(f);
        let (_g, db) = open(backend);
        let err = import(&db, &file).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(file.file_name().unwrap().to_str().unwrap()), "{text}");
        assert!(text.contains(&format!("line {}", lines + 1)), "{text}");
        assert!(text.contains("crate"), "{text}");
        assert!(matches!(err, ImportError::Content { .. }));
        for table in ["codes", "events", "operators", "imports"] {
            assert_eq!(count(&db, table), 0, "{table} after a failed import");
        }

        // A reference to an undefined event is located too.
        let bad = dir.path().join("undefined-event.csv");
        std::fs::write(&bad, "#gsp-csv,1\ncode,KEN1AAAAAAAAAAAA,unit,,urn:gsp:ev:KEN:nope\n").unwrap();
        let text = import(&db, &bad).unwrap_err().to_string();
        assert!(text.contains("line 2") && text.contains("urn:gsp:ev:KEN:nope"), "{text}");
        assert_eq!(count(&db, "codes"), 0);
    }

    fn overlapping_files_merge_without_duplicates(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let (full, summary) = generated(dir.path(), 8_000, 9, GenFormat::Csv);
        let text = std::fs::read_to_string(&full).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let half = dir.path().join("half.csv");
        std::fs::write(&half, lines[..lines.len() / 2].join("\n") + "\n").unwrap();
        let (_g, db) = open(backend);
        let first = import(&db, &half).unwrap();
        assert!(first.stats.codes_new > 0);
        let second = import(&db, &full).unwrap();
        assert!(!second.already_imported);
        assert!(second.stats.events_existing > 0);
        assert_eq!(count(&db, "codes") as u64, summary.codes);
        assert_eq!(count(&db, "events") as u64, summary.events);
        assert_eq!(first.stats.codes_new + second.stats.codes_new, summary.codes);
    }

    fn event_queries_filter_and_page(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let (file, _) = generated(dir.path(), 2_000, 4, GenFormat::Csv);
        let (_g, db) = open(backend);
        import(&db, &file).unwrap();
        let mut conn = db.conn().unwrap();
        let pallet = codes_of(&file, "pallet")[0].clone();
        let carton = codes_of(&file, "carton")[3].clone();

        // MATCH_epc on a pallet: its dispatch, arrival and commercial events.
        let q = EventQuery::from_params(&params(&[("MATCH_epc", &pallet)])).unwrap();
        let page = query_events(&mut conn, &q).unwrap();
        let steps: Vec<&str> = page.events.iter().filter_map(|e| e["bizStep"].as_str()).collect();
        assert!(steps.contains(&"shipping") && steps.contains(&"receiving"), "{steps:?}");
        // MATCH_parentID on a carton: its aggregation, with its 20 packs.
        let q = EventQuery::from_params(&params(&[("MATCH_parentID", &carton)])).unwrap();
        let page = query_events(&mut conn, &q).unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.events[0]["type"], "AggregationEvent");
        assert_eq!(page.events[0]["childEPCs"].as_array().unwrap().len(), 20);
        // bizStep and time window.
        let q = EventQuery::from_params(&params(&[("EQ_bizStep", "shipping"), ("GE_eventTime", "2026-01-01T00:00:00Z"), ("LT_eventTime", "2027-01-01T00:00:00Z")])).unwrap();
        let shipping = query_events(&mut conn, &q).unwrap();
        assert!(!shipping.events.is_empty());
        assert!(shipping.events.iter().all(|e| e["bizStep"] == "shipping"));
        let q = EventQuery::from_params(&params(&[("EQ_bizStep", "urn:epcglobal:cbv:bizstep:shipping"), ("LT_eventTime", "2000-01-01T00:00:00Z")])).unwrap();
        assert!(query_events(&mut conn, &q).unwrap().events.is_empty());
        // bizLocation.
        let q = EventQuery::from_params(&params(&[("EQ_bizLocation", "urn:gsp:fid:KEN-F-0001|KEN-F-0002")])).unwrap();
        for e in query_events(&mut conn, &q).unwrap().events {
            let loc = e["bizLocation"]["id"].as_str().unwrap();
            assert!(loc == "urn:gsp:fid:KEN-F-0001" || loc == "urn:gsp:fid:KEN-F-0002", "{loc}");
        }

        // Paging walks every event exactly once.
        let total = count(&db, "events") as usize;
        let mut seen = std::collections::HashSet::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut p = params(&[("perPage", "37")]);
            if let Some(t) = &token {
                p.push(("nextPageToken".into(), t.clone()));
            }
            let page = query_events(&mut conn, &EventQuery::from_params(&p).unwrap()).unwrap();
            assert!(page.events.len() <= 37);
            for e in &page.events {
                assert!(seen.insert(e["eventID"].as_str().unwrap().to_owned()), "event on two pages");
            }
            pages += 1;
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen.len(), total);
        assert_eq!(pages, total.div_ceil(37));

        // Bad parameters are refused with their name.
        for (k, v, words) in [
            ("perPage", "0", "perPage"),
            ("perPage", "x", "perPage"),
            ("GE_eventTime", "noon", "GE_eventTime"),
            ("nextPageToken", "!!", "nextPageToken"),
            ("EQ_action", "MAYBE", "EQ_action"),
            ("MATCH_epcs", "x", "MATCH_epcs"),
        ] {
            let err = EventQuery::from_params(&params(&[(k, v)])).unwrap_err().to_string();
            assert!(err.contains(words), "{k}={v}: {err}");
        }
    }

    fn query_answers_are_valid_epcis_2_json(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let (file, _) = generated(dir.path(), 1_500, 8, GenFormat::Csv);
        let (_g, db) = open(backend);
        import(&db, &file).unwrap();
        for fixture in ["json/Example_9.6.1-ObjectEvent.jsonld", "json/WithSensorData/SensorDataExample1.jsonld", "xml/WithFullCombinationOfFields/object_event_all_possible_fields.xml"] {
            import(&db, &common::fixtures().join(fixture)).unwrap();
        }
        let validator = common::epcis_schema();
        let mut conn = db.conn().unwrap();
        let q = EventQuery::from_params(&params(&[("perPage", "1000")])).unwrap();
        let page = query_events(&mut conn, &q).unwrap();
        assert!(page.events.len() > 50, "{}", page.events.len());
        let doc = query_document(page.context, page.events, 1_767_225_600_000);
        let errors = common::schema_errors(&validator, &doc);
        assert!(errors.is_empty(), "{} schema errors, first: {:?}", errors.len(), &errors[..errors.len().min(5)]);
        // And the validator is awake: a broken copy fails.
        let mut broken = doc.clone();
        broken["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]["eventTime"] = Value::from("last Tuesday");
        assert!(!common::schema_errors(&validator, &broken).is_empty());
    }

    fn bulk_lookup_answers_in_order_with_status(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let (file, summary) = generated(dir.path(), 30_000, 6, GenFormat::Csv);
        assert!(summary.deactivated > 0, "the data set has deactivated packs");
        let (_g, db) = open(backend);
        import(&db, &file).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let deactivated: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("event,") && l.split(',').nth(2) == Some("IDA"))
            .flat_map(|l| l.split(',').nth(9).unwrap().split(';').map(str::to_owned).collect::<Vec<_>>())
            .collect();
        let units = codes_of(&file, "unit");
        let mut asked: Vec<String> = units.iter().step_by(7).cloned().collect();
        asked.insert(3, "KEN1UNKNOWNCODE00".into());
        asked.push(deactivated[0].clone());
        let mut conn = db.conn().unwrap();
        let answers = bulk_lookup(&mut conn, &asked).unwrap();
        assert_eq!(answers.len(), asked.len());
        for (a, q) in answers.iter().zip(&asked) {
            assert_eq!(&a.code, q);
        }
        assert_eq!(answers[3].status, VerdictStatus::Unknown);
        assert!(answers[3].record.is_none());
        assert_eq!(answers.last().unwrap().status, VerdictStatus::Deactivated);
        let known = &answers[0];
        assert_eq!(known.status, VerdictStatus::Known);
        let rec = known.record.as_ref().unwrap();
        assert!(rec.product.is_some() && rec.facility.is_some() && rec.machine.is_some() && rec.shift.is_some() && rec.manufactured_at.is_some());

        // A lookup large enough to be split over two connections answers
        // exactly as one made on a single connection, in the order asked.
        let mut many: Vec<String> = Vec::new();
        for (i, code) in units.iter().cloned().enumerate() {
            many.push(code);
            many.push(format!("KEN1NOSUCHCODE{:06}", (i * 7919) % 1_000_000));
        }
        many.extend(deactivated.iter().cloned());
        assert!(many.len() >= SPLIT_MIN, "{} codes", many.len());
        let single = bulk_lookup(&mut conn, &many).unwrap();
        let mut cache = LookupCache::with_spare(db.clone());
        let split = bulk_lookup_with(&mut conn, &many, &mut cache).unwrap();
        assert_eq!(cache.last_parts(), 2);
        assert_eq!(split.len(), many.len());
        assert!(split.iter().zip(&many).all(|(a, q)| &a.code == q), "answers out of the order asked");
        assert!(split == single, "the split lookup differs from the single one");
        // And as lookups of a thousand codes at a time, each one statement
        // (a large lookup on SQLite reads the code index and the rows in two
        // passes; this checks those against the plain way).
        let small: Vec<CodeVerdict> = many.chunks(1_000).flat_map(|c| bulk_lookup(&mut conn, c).unwrap()).collect();
        assert!(single == small, "the large lookup differs from small ones");
        // A code asked twice is answered twice.
        let twice: Vec<String> = many.iter().take(SPLIT_MIN).chain(many.iter().take(3)).cloned().collect();
        let answered = bulk_lookup_with(&mut conn, &twice, &mut LookupCache::with_spare(db.clone())).unwrap();
        assert!(answered[SPLIT_MIN..] == answered[..3], "a code asked twice answered differently");
        let with_status = |v: &[CodeVerdict], s: VerdictStatus| v.iter().filter(|a| a.status == s).count();
        assert!(with_status(&split, VerdictStatus::Known) > 0 && with_status(&split, VerdictStatus::Deactivated) > 0);
        let unknown = many.iter().filter(|c| c.starts_with("KEN1NOSUCHCODE")).count();
        assert_eq!(with_status(&split, VerdictStatus::Unknown), unknown);
        // Without a spare connection it stays on one.
        let mut alone = LookupCache::default();
        bulk_lookup_with(&mut conn, &many[..SPLIT_MIN], &mut alone).unwrap();
        assert_eq!(alone.last_parts(), 1);
    }
}
