//! Streaming reader for EPCIS 2.0 JSON / JSON-LD documents.
//!
//! The document is walked with serde's visitor API: only one event is held in
//! memory at a time, however long `eventList` is, so a multi-gigabyte file
//! imports in constant memory. Master data in `epcisHeader.epcisMasterData` is
//! read too. Handles `EPCISDocument` and `EPCISQueryDocument`.

use super::record::{Location, Record};
use crate::data::epcis::{self, DocContext, FieldError};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;
use std::io::Read;

/// Why reading stopped: the document's own problem, or the handler's.
#[derive(Debug)]
pub enum JsonReadError<E> {
    /// The document is malformed or not EPCIS.
    Document(Location, String),
    /// The record handler refused a record.
    Handler(E),
}

/// Reads `input`, calling `handle` for each record in document order.
pub fn read<R: Read, E>(
    input: R,
    mut handle: impl FnMut(Record, Location) -> Result<(), E>,
) -> Result<(), JsonReadError<E>> {
    let mut de = serde_json::Deserializer::from_reader(input);
    let mut state = State {
        handle: &mut handle,
        stop: None,
    };
    let outcome = de::Deserializer::deserialize_map(&mut de, DocVisitor { state: &mut state });
    if let Some(stop) = state.stop.take() {
        return Err(stop);
    }
    outcome.map_err(|e| syntax(&e))?;
    de.end().map_err(|e| syntax(&e))?;
    Ok(())
}

fn syntax<E>(e: &serde_json::Error) -> JsonReadError<E> {
    let message = e.to_string();
    // serde_json appends " at line L column C"; the location says it already.
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    };
    JsonReadError::Document(
        Location::LineColumn(e.line() as u64, e.column() as u64),
        message,
    )
}

struct State<'h, E> {
    handle: &'h mut dyn FnMut(Record, Location) -> Result<(), E>,
    stop: Option<JsonReadError<E>>,
}

impl<E> State<'_, E> {
    /// Records a stop and returns the error that unwinds serde.
    fn fail<D: de::Error>(&mut self, err: JsonReadError<E>) -> D {
        self.stop = Some(err);
        D::custom("import stopped")
    }

    fn document_error<D: de::Error>(&mut self, pointer: &str, message: impl Into<String>) -> D {
        self.fail(JsonReadError::Document(
            Location::Pointer(pointer.to_owned()),
            message.into(),
        ))
    }

    fn field_error<D: de::Error>(&mut self, e: FieldError) -> D {
        self.fail(JsonReadError::Document(
            Location::Pointer(e.pointer),
            e.message,
        ))
    }

    fn emit<D: de::Error>(&mut self, record: Record, location: Location) -> Result<(), D> {
        match (self.handle)(record, location) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(JsonReadError::Handler(e))),
        }
    }
}

struct DocVisitor<'s, 'h, E> {
    state: &'s mut State<'h, E>,
}

impl<'de, E> Visitor<'de> for DocVisitor<'_, '_, E> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an EPCIS document (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut doc_type: Option<String> = None;
        let mut has_body = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "@context" => {
                    let v: Value = map.next_value()?;
                    match DocContext::from_json(&v) {
                        Ok(ctx) => self.state.emit(
                            Record::Context(ctx.terms),
                            Location::Pointer("/@context".into()),
                        )?,
                        Err(m) => return Err(self.state.document_error("/@context", m)),
                    }
                }
                "type" => {
                    let t: String = map.next_value()?;
                    if t != "EPCISDocument" && t != "EPCISQueryDocument" {
                        return Err(self.state.document_error(
                            "/type",
                            format!("{t:?} is not EPCISDocument or EPCISQueryDocument"),
                        ));
                    }
                    doc_type = Some(t);
                }
                "schemaVersion" => {
                    let v: Value = map.next_value()?;
                    let text = v
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string());
                    if !text.starts_with('2') {
                        return Err(self.state.document_error(
                            "/schemaVersion",
                            format!("schema version {text} is not supported in JSON (EPCIS 2.0 JSON-LD; import EPCIS 1.x as XML)"),
                        ));
                    }
                }
                "epcisHeader" => {
                    let header: Value = map.next_value()?;
                    read_header(self.state, &header)?;
                }
                "epcisBody" => {
                    has_body = true;
                    map.next_value_seed(BodySeed {
                        state: &mut *self.state,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if doc_type.is_none() {
            return Err(self.state.document_error(
                "/type",
                "missing: an EPCIS document has \"type\": \"EPCISDocument\"",
            ));
        }
        if !has_body {
            return Err(self.state.document_error("/epcisBody", "missing"));
        }
        Ok(())
    }
}

fn read_header<E, D: de::Error>(state: &mut State<'_, E>, header: &Value) -> Result<(), D> {
    let Some(list) = header.pointer("/epcisMasterData/vocabularyList") else {
        return Ok(());
    };
    let Some(list) = list.as_array() else {
        return Err(state.document_error(
            "/epcisHeader/epcisMasterData/vocabularyList",
            "must be an array",
        ));
    };
    for (i, vocab) in list.iter().enumerate() {
        let ptr = format!("/epcisHeader/epcisMasterData/vocabularyList/{i}");
        match epcis::vocabulary_to_records(vocab, &ptr) {
            Ok(records) => {
                for (record, pointer) in records {
                    state.emit(record, Location::Pointer(pointer))?;
                }
            }
            Err(e) => return Err(state.field_error(e)),
        }
    }
    Ok(())
}

/// `epcisBody`: `eventList` directly, or `queryResults.resultsBody.eventList`.
struct BodySeed<'s, 'h, E> {
    state: &'s mut State<'h, E>,
}

impl<'de, E> DeserializeSeed<'de> for BodySeed<'_, '_, E> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(BodyVisitor {
            state: self.state,
            path: "/epcisBody",
        })
    }
}

struct BodyVisitor<'s, 'h, E> {
    state: &'s mut State<'h, E>,
    path: &'static str,
}

impl<'de, E> Visitor<'de> for BodyVisitor<'_, '_, E> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object at {}", self.path)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match (self.path, key.as_str()) {
                (_, "eventList") => {
                    let base = format!("{}/eventList", self.path);
                    map.next_value_seed(EventListSeed {
                        state: &mut *self.state,
                        base,
                    })?;
                }
                ("/epcisBody", "queryResults") => map.next_value_seed(NestedSeed {
                    state: &mut *self.state,
                    path: "/epcisBody/queryResults",
                })?,
                ("/epcisBody/queryResults", "resultsBody") => map.next_value_seed(NestedSeed {
                    state: &mut *self.state,
                    path: "/epcisBody/queryResults/resultsBody",
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct NestedSeed<'s, 'h, E> {
    state: &'s mut State<'h, E>,
    path: &'static str,
}

impl<'de, E> DeserializeSeed<'de> for NestedSeed<'_, '_, E> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(BodyVisitor {
            state: self.state,
            path: self.path,
        })
    }
}

struct EventListSeed<'s, 'h, E> {
    state: &'s mut State<'h, E>,
    base: String,
}

impl<'de, E> DeserializeSeed<'de> for EventListSeed<'_, '_, E> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, E> Visitor<'de> for EventListSeed<'_, '_, E> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of events at {}", self.base)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while let Some(event) = seq.next_element::<Value>()? {
            let pointer = format!("{}/{index}", self.base);
            match epcis::event_from_json(event, &pointer) {
                Ok(record) => self
                    .state
                    .emit(Record::Event(Box::new(record)), Location::Pointer(pointer))?,
                Err(e) => return Err(self.state.field_error(e)),
            }
            index += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn collect(text: &str) -> Result<Vec<(Record, Location)>, JsonReadError<Infallible>> {
        let mut out = Vec::new();
        read(text.as_bytes(), |r, l| {
            out.push((r, l));
            Ok::<(), Infallible>(())
        })?;
        Ok(out)
    }

    fn doc_error(text: &str) -> (Location, String) {
        match collect(text) {
            Err(JsonReadError::Document(l, m)) => (l, m),
            other => panic!("expected a document error, got {other:?}"),
        }
    }

    #[test]
    fn events_stream_with_their_pointers() {
        let text = r#"{"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2024-01-01T00:00:00Z",
            "epcisBody": {"eventList": [
              {"type": "ObjectEvent", "eventTime": "2024-01-01T00:00:00Z", "eventTimeZoneOffset": "+00:00", "action": "ADD", "epcList": ["urn:gsp:uid:A"]},
              {"type": "ObjectEvent", "eventTime": "2024-01-02T00:00:00Z", "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "epcList": ["urn:gsp:uid:A"]}
            ]}}"#;
        let recs: Vec<_> = collect(text)
            .unwrap()
            .into_iter()
            .filter(|(r, _)| matches!(r, Record::Event(_)))
            .collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            recs[1].1,
            Location::Pointer("/epcisBody/eventList/1".into())
        );
    }

    #[test]
    fn query_documents_are_read_too() {
        let text = r#"{"type": "EPCISQueryDocument", "schemaVersion": "2.0",
            "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": [
              {"type": "ObjectEvent", "eventTime": "2024-01-01T00:00:00Z", "eventTimeZoneOffset": "+00:00", "action": "OBSERVE"}
            ]}}}}"#;
        let events = collect(text)
            .unwrap()
            .into_iter()
            .filter(|(r, _)| matches!(r, Record::Event(_)))
            .count();
        assert_eq!(events, 1);
    }

    #[test]
    fn malformed_documents_are_located() {
        let (loc, msg) = doc_error(
            "{\"type\": \"EPCISDocument\",\n \"epcisBody\": {\"eventList\": [ {\"type\": } ]}}",
        );
        assert!(matches!(loc, Location::LineColumn(2, _)), "{loc:?} {msg}");
        let (loc, _) = doc_error(
            r#"{"type": "EPCISDocument", "epcisBody": {"eventList": [{"type": "ObjectEvent", "action": "ADD"}]}}"#,
        );
        assert_eq!(
            loc,
            Location::Pointer("/epcisBody/eventList/0/eventTime".into())
        );
        let (loc, _) = doc_error(r#"{"type": "Something", "epcisBody": {}}"#);
        assert_eq!(loc, Location::Pointer("/type".into()));
        let (loc, _) = doc_error(r#"{"type": "EPCISDocument"}"#);
        assert_eq!(loc, Location::Pointer("/epcisBody".into()));
        let (_, msg) = doc_error(r#"[1, 2]"#);
        assert!(msg.contains("EPCIS document"), "{msg}");
        let (_, msg) =
            doc_error(r#"{"type": "EPCISDocument", "epcisBody": {"eventList": []}} trailing"#);
        assert!(msg.contains("trailing"), "{msg}");
    }

    #[test]
    fn a_handler_error_stops_the_read() {
        let text = r#"{"type": "EPCISDocument", "epcisBody": {"eventList": [
              {"type": "ObjectEvent", "eventTime": "2024-01-01T00:00:00Z", "action": "OBSERVE"},
              {"type": "ObjectEvent", "eventTime": "2024-01-01T00:00:00Z", "action": "OBSERVE"}]}}"#;
        let mut seen = 0;
        let out = read(text.as_bytes(), |_, _| {
            seen += 1;
            Err("refused")
        });
        assert!(matches!(out, Err(JsonReadError::Handler("refused"))));
        assert_eq!(seen, 1);
    }
}
