//! GS1's own EPCIS 2.0 examples (`../shared/fixtures/gs1-epcis`): each one
//! either imports faithfully or is refused with a located error, on SQLite and
//! PostgreSQL, and never panics or half-imports.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{count, fixtures, import, open};
use gsp_node::data::epcis::parse_time;
use gsp_node::data::query::events::{EventQuery, query_events};
use gsp_node::for_each_backend;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Files GS1 wrote that GSP refuses, with words the error must contain.
/// Everything else under the fixtures folder must import.
const REFUSED: &[(&str, &[&str])] = &[
    // persistentDisposition on an AggregationEvent: not allowed by the EPCIS
    // 2.0 XSD or JSON Schema (the JSON twin puts it on an ObjectEvent).
    (
        "xml/Example-PersistentDisposition.xml",
        &["line 46", "persistentDisposition", "AggregationEvent"],
    ),
    // A sensorReport without the type the EPCIS 2.0 JSON Schema requires.
    (
        "xml/WithSensorData/SensorDataExamples.xml",
        &["line 241", "sensorReport", "type"],
    ),
];

fn all_fixture_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("jsonld" | "json" | "xml")
            ) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    for sub in ["json", "xml"] {
        walk(&fixtures().join(sub), &mut out);
    }
    out.sort();
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(fixtures())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// An event as compared: lists as sorted sets, times as instants.
fn normalise(event: &Value) -> Value {
    let mut e = event.as_object().unwrap().clone();
    e.remove("@context");
    if let Some(Value::String(t)) = e.get("eventTime") {
        e.insert("eventTime".into(), Value::from(parse_time(t).unwrap().0));
    }
    for list in ["epcList", "childEPCs", "inputEPCList", "outputEPCList"] {
        match e.get(list) {
            Some(Value::Array(items)) if items.is_empty() => {
                e.remove(list);
            }
            Some(Value::Array(items)) => {
                let mut v: Vec<String> = items
                    .iter()
                    .map(|i| i.as_str().unwrap().to_owned())
                    .collect();
                v.sort();
                v.dedup();
                e.insert(list.into(), Value::from(v));
            }
            _ => {}
        }
    }
    Value::Object(e)
}

for_each_backend! {
    fn every_gs1_example_imports_or_is_refused_clearly(backend: Backend) {
        let files = all_fixture_files();
        assert!(files.len() >= 70, "found {} fixture files", files.len());
        for name in REFUSED.iter().map(|r| r.0) {
            assert!(files.iter().any(|f| relative(f) == name), "{name} is not among the fixtures");
        }
        let mut imported = 0;
        for file in &files {
            let name = relative(file);
            let (_g, db) = open(backend);
            match (import(&db, file), REFUSED.iter().find(|r| r.0 == name)) {
                (Ok(report), None) => {
                    assert!(report.stats.events_new + report.stats.master_data > 0, "{name} imported nothing");
                    imported += 1;
                }
                (Err(e), Some((_, words))) => {
                    let text = e.to_string();
                    assert!(text.contains(&name), "{text}");
                    for w in *words {
                        assert!(text.contains(w), "{name}: {text} lacks {w:?}");
                    }
                    for table in ["codes", "events", "facilities", "imports"] {
                        assert_eq!(count(&db, table), 0, "{name}: {table} after a refused file");
                    }
                }
                (Ok(_), Some(_)) => panic!("{name} should have been refused"),
                (Err(e), None) => panic!("{name} should import: {e}"),
            }
        }
        assert_eq!(imported, files.len() - REFUSED.len());
    }

    fn imported_json_examples_come_back_as_they_went_in(backend: Backend) {
        for file in all_fixture_files().into_iter().filter(|f| f.extension().is_some_and(|e| e == "jsonld")) {
            let name = relative(&file);
            let original: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let list = original
                .pointer("/epcisBody/eventList")
                .or_else(|| original.pointer("/epcisBody/queryResults/resultsBody/eventList"))
                .and_then(Value::as_array)
                .unwrap();
            let (_g, db) = open(backend);
            import(&db, &file).unwrap();
            let mut conn = db.conn().unwrap();
            let q = EventQuery::from_params(&[("perPage".to_owned(), "1000".to_owned())]).unwrap();
            let page = query_events(&mut conn, &q).unwrap();
            let mut expected: Vec<Value> = list.iter().map(normalise).collect();
            let mut actual: Vec<Value> = page.events.iter().map(normalise).collect();
            let key = |v: &Value| v.to_string();
            expected.sort_by_key(key);
            actual.sort_by_key(key);
            assert_eq!(actual.len(), expected.len(), "{name}: event count");
            for (a, e) in actual.iter().zip(&expected) {
                assert_eq!(a, e, "{name}");
            }
            // Every extension prefix the events use is defined in the answer's context.
            let context = page.context.to_string();
            for e in &page.events {
                for k in e.as_object().unwrap().keys() {
                    if let Some((prefix, _)) = k.split_once(':') {
                        assert!(context.contains(&format!("\"{prefix}\"")), "{name}: prefix {prefix} of {k} missing from {context}");
                    }
                }
            }
        }
    }
}
