//! GSP's CSV layout: one record per line, the first field naming the record
//! type. The layout is documented in `data/MODEL.md` ("CSV layout"); `gsp gen`
//! writes it.
//!
//! ```text
//! #gsp-csv,1
//! operator,ext_id,name,country,address,roles,licence,tax_id
//! facility,ext_id,operator,name,kind,country,address
//! machine,ext_id,facility,model,capacity_per_min
//! product,ext_id,operator,description,brand,gtin,intended_market,category
//! event,id,type,time,facility,machine,product,shift,parent,codes,counterparty,destination,route,transport,document,amount,currency,reason
//! code,code,level,product,applied_by,parent,aggregated_by
//! ```
//!
//! Lines starting with `#` are comments; trailing empty fields may be left out.

use super::record::{
    CodeRecord, EventRecord, Facility, Location, Machine, Operator, Product, Record,
};
use crate::data::epcis::{GSP_PREFIX, IdKind, MAX_CODE_LEN, id_to_uri, parse_time};
use crate::data::model::{EventKind, Level, Role};
use serde_json::{Map, Value, json};
use std::io::Read;

/// The first line of a GSP CSV file (used to recognise the format).
pub const MAGIC: &str = "#gsp-csv,1";

/// Column names of each record type, in order (the first column is the type).
pub const LAYOUT: &[(&str, &[&str])] = &[
    (
        "operator",
        &[
            "ext_id", "name", "country", "address", "roles", "licence", "tax_id",
        ],
    ),
    (
        "facility",
        &["ext_id", "operator", "name", "kind", "country", "address"],
    ),
    (
        "machine",
        &["ext_id", "facility", "model", "capacity_per_min"],
    ),
    (
        "product",
        &[
            "ext_id",
            "operator",
            "description",
            "brand",
            "gtin",
            "intended_market",
            "category",
        ],
    ),
    (
        "event",
        &[
            "id",
            "type",
            "time",
            "facility",
            "machine",
            "product",
            "shift",
            "parent",
            "codes",
            "counterparty",
            "destination",
            "route",
            "transport",
            "document",
            "amount",
            "currency",
            "reason",
        ],
    ),
    (
        "code",
        &[
            "code",
            "level",
            "product",
            "applied_by",
            "parent",
            "aggregated_by",
        ],
    ),
];

/// A CSV problem: the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// 1-based line.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

/// Reads a GSP CSV stream record by record, in constant memory.
pub struct CsvReader<R: Read> {
    inner: csv::Reader<CommentBlanker<R>>,
    record: csv::ByteRecord,
}

impl<R: Read> CsvReader<R> {
    /// A reader over `input`.
    pub fn new(input: R) -> Self {
        // Comments are blanked before the CSV parser sees them (rather than
        // using its comment option) so that line numbers count them, and a
        // quote in a comment cannot open a quoted field.
        let inner = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 20)
            .from_reader(CommentBlanker {
                inner: input,
                line_start: true,
                in_comment: false,
            });
        CsvReader {
            inner,
            record: csv::ByteRecord::new(),
        }
    }

    /// The next record and its line, or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<(Record, Location)>, CsvError> {
        loop {
            let more = self
                .inner
                .read_byte_record(&mut self.record)
                .map_err(|e| CsvError {
                    line: e.position().map(|p| p.line()).unwrap_or(0),
                    message: e.to_string(),
                })?;
            if !more {
                return Ok(None);
            }
            let line = self.record.position().map(|p| p.line()).unwrap_or(0);
            if self.record.len() == 1
                && self
                    .record
                    .get(0)
                    .is_some_and(|f| f.iter().all(u8::is_ascii_whitespace))
            {
                continue; // blank line
            }
            let record = parse_line(&self.record).map_err(|message| CsvError { line, message })?;
            return Ok(Some((record, Location::Line(line))));
        }
    }
}

/// Replaces every byte of a line that starts with `#` by a space, keeping
/// the newline, so comments become blank lines.
pub struct CommentBlanker<R> {
    inner: R,
    line_start: bool,
    in_comment: bool,
}

impl<R: Read> Read for CommentBlanker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for b in &mut buf[..n] {
            if self.line_start && *b == b'#' {
                self.in_comment = true;
            }
            self.line_start = *b == b'\n';
            if self.line_start {
                self.in_comment = false;
            } else if self.in_comment {
                *b = b' ';
            }
        }
        Ok(n)
    }
}

/// Fields of one line, by column name, with errors that name the column.
struct Fields<'a> {
    kind: &'static str,
    names: &'static [&'static str],
    values: Vec<&'a str>,
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        let i = self.names.iter().position(|n| *n == name)?;
        self.values
            .get(i)
            .copied()
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    fn required(&self, name: &str) -> Result<&'a str, String> {
        self.get(name)
            .ok_or_else(|| format!("{} record: column {name:?} is required", self.kind))
    }

    fn code(&self, name: &str) -> Result<Option<String>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(c) if c.len() > MAX_CODE_LEN => Err(format!(
                "{} record: {name} is longer than {MAX_CODE_LEN} characters",
                self.kind
            )),
            Some(c) => Ok(Some(c.to_owned())),
        }
    }
}

fn parse_line(rec: &csv::ByteRecord) -> Result<Record, String> {
    let mut values = Vec::with_capacity(rec.len());
    for (i, field) in rec.iter().enumerate() {
        values.push(
            std::str::from_utf8(field)
                .map_err(|_| format!("field {} is not valid UTF-8", i + 1))?,
        );
    }
    let type_name = values.first().copied().unwrap_or("").trim();
    let (kind, names) = LAYOUT
        .iter()
        .find(|(k, _)| *k == type_name)
        .ok_or_else(|| format!("unknown record type {type_name:?} (expected one of operator, facility, machine, product, event, code)"))?;
    if values.len() - 1 > names.len() {
        return Err(format!(
            "{kind} record has {} fields; its layout has {}: {}",
            values.len() - 1,
            names.len(),
            names.join(",")
        ));
    }
    let f = Fields {
        kind,
        names,
        values: values[1..].to_vec(),
    };
    Ok(match *kind {
        "operator" => Record::Operator(Operator {
            ext_id: f.required("ext_id")?.to_owned(),
            name: f.required("name")?.to_owned(),
            country: f.text("country"),
            address: f.text("address"),
            roles: f.text("roles"),
            licence: f.text("licence"),
            tax_id: f.text("tax_id"),
            extra: None,
        }),
        "facility" => Record::Facility(Facility {
            ext_id: f.required("ext_id")?.to_owned(),
            operator: f.text("operator"),
            name: f.required("name")?.to_owned(),
            kind: f.text("kind"),
            country: f.text("country"),
            address: f.text("address"),
            extra: None,
        }),
        "machine" => Record::Machine(Machine {
            ext_id: f.required("ext_id")?.to_owned(),
            facility: f.text("facility"),
            model: f.text("model"),
            capacity_per_min: match f.get("capacity_per_min") {
                None => None,
                Some(v) => Some(v.parse().map_err(|_| {
                    format!("machine record: capacity_per_min {v:?} is not a whole number")
                })?),
            },
            extra: None,
        }),
        "product" => Record::Product(Product {
            ext_id: f.required("ext_id")?.to_owned(),
            operator: f.text("operator"),
            description: f.required("description")?.to_owned(),
            brand: f.text("brand"),
            gtin: f.text("gtin"),
            intended_market: f.text("intended_market"),
            category: f.text("category"),
            extra: None,
        }),
        "code" => {
            let level = match f.get("level") {
                None => None,
                Some(l) => Some(Level::parse(l).ok_or_else(|| {
                    format!("code record: level {l:?} is not unit, carton, case or pallet")
                })?),
            };
            Record::Code(CodeRecord {
                code: f
                    .code("code")?
                    .ok_or("code record: column \"code\" is required")?,
                level,
                product: f.text("product"),
                applied_by: f.text("applied_by").map(|k| event_key(&k)),
                parent: f.code("parent")?,
                aggregated_by: f.text("aggregated_by").map(|k| event_key(&k)),
            })
        }
        _ => Record::Event(Box::new(parse_event(&f)?)),
    })
}

/// CSV event ids that are not URIs are namespaced so they can be EPCIS eventIDs.
fn event_key(id: &str) -> String {
    if crate::data::epcis::is_uri(id) {
        id.to_owned()
    } else {
        format!("urn:gsp:event:{id}")
    }
}

fn parse_event(f: &Fields<'_>) -> Result<EventRecord, String> {
    let type_text = f.required("type")?;
    let kind = EventKind::from_eu_code(type_text)
        .or_else(|| EventKind::parse(type_text).filter(|k| *k != EventKind::Other))
        .ok_or_else(|| format!("event record: type {type_text:?} is not an EU event code (EUA, EPA, EDP, ERP, ETL, EUD, IDA, EIV, EPO, EPR)"))?;
    let time = f.required("time")?;
    let (time_ms, tz_offset) = parse_time(time).map_err(|e| format!("event record: time {e}"))?;
    let (epcis_type, action, biz_step, disposition) = kind.epcis_shape();

    let codes_role = match kind {
        EventKind::Aggregation | EventKind::Disaggregation => Role::Child,
        _ => Role::Epc,
    };
    let mut codes = Vec::new();
    if let Some(list) = f.get("codes") {
        for code in list.split(';').map(str::trim).filter(|c| !c.is_empty()) {
            if code.len() > MAX_CODE_LEN {
                return Err(format!(
                    "event record: a code in \"codes\" is longer than {MAX_CODE_LEN} characters"
                ));
            }
            codes.push((codes_role, code.to_owned()));
        }
    }
    let parent = f.code("parent")?;
    if matches!(kind, EventKind::Aggregation | EventKind::Disaggregation) && parent.is_none() {
        return Err(format!(
            "event record: {} ({}) needs a parent code",
            kind.eu_code().unwrap_or(""),
            kind
        ));
    }

    let gsp = |field: &str| format!("{GSP_PREFIX}:{field}");
    let mut doc = Map::new();
    let facility = f.text("facility");
    let counterparty = f
        .get("counterparty")
        .map(|c| id_to_uri(IdKind::Operator, c));
    let destination = f.get("destination").map(|d| id_to_uri(IdKind::Facility, d));
    let document = f.get("document").map(|d| id_to_uri(IdKind::Document, d));
    match kind {
        EventKind::Dispatch | EventKind::Transloading => {
            if let Some(fac) = &facility {
                doc.insert(
                    "sourceList".into(),
                    json!([{"type": "location", "source": id_to_uri(IdKind::Facility, fac)}]),
                );
            }
            let mut dest = Vec::new();
            if let Some(c) = &counterparty {
                dest.push(json!({"type": "owning_party", "destination": c}));
            }
            if let Some(d) = &destination {
                dest.push(json!({"type": "location", "destination": d}));
            }
            if !dest.is_empty() {
                doc.insert("destinationList".into(), Value::Array(dest));
            }
            if let Some(d) = &document {
                doc.insert(
                    "bizTransactionList".into(),
                    json!([{"type": "desadv", "bizTransaction": d}]),
                );
            }
        }
        EventKind::Arrival => {
            if let Some(c) = &counterparty {
                doc.insert(
                    "sourceList".into(),
                    json!([{"type": "owning_party", "source": c}]),
                );
            }
            if let Some(d) = &document {
                doc.insert(
                    "bizTransactionList".into(),
                    json!([{"type": "recadv", "bizTransaction": d}]),
                );
            }
        }
        EventKind::Invoice | EventKind::Order | EventKind::Payment => {
            let btt = kind.biz_transaction_type().unwrap_or("inv");
            let d = document.ok_or_else(|| {
                format!(
                    "event record: {} needs a document number",
                    kind.eu_code().unwrap_or("")
                )
            })?;
            doc.insert(
                "bizTransactionList".into(),
                json!([{"type": btt, "bizTransaction": d}]),
            );
            if let Some(c) = &counterparty {
                doc.insert(
                    "destinationList".into(),
                    json!([{"type": "owning_party", "destination": c}]),
                );
            }
            if let Some(a) = f.get("amount") {
                let amount: f64 = a
                    .parse()
                    .map_err(|_| format!("event record: amount {a:?} is not a number"))?;
                doc.insert(gsp("amount"), json!(amount));
            }
            if let Some(c) = f.get("currency") {
                doc.insert(gsp("currency"), json!(c));
            }
        }
        _ => {}
    }
    if let Some(m) = f.get("machine") {
        doc.insert(gsp("machine"), json!(id_to_uri(IdKind::Machine, m)));
    }
    if let Some(p) = f.get("product") {
        doc.insert(gsp("product"), json!(id_to_uri(IdKind::Product, p)));
    }
    if let Some(s) = f.get("shift") {
        doc.insert(gsp("shift"), json!(s));
    }
    if let Some(r) = f.get("route") {
        doc.insert(gsp("route"), json!(r));
    }
    if let Some(t) = f.get("transport") {
        doc.insert(gsp("transportMode"), json!(t));
    }
    if let Some(r) = f.get("reason") {
        doc.insert(gsp("reason"), json!(r));
    }
    if matches!(
        kind,
        EventKind::Dispatch | EventKind::Transloading | EventKind::Arrival
    ) && let Some(d) = f.get("document")
    {
        doc.insert(gsp("document"), json!(d));
    }
    let id = f.required("id")?;
    Ok(EventRecord {
        key: event_key(id),
        kind,
        epcis_type,
        action: Some(action),
        time_ms,
        tz_offset,
        biz_step: Some(biz_step.to_owned()),
        disposition: disposition.map(str::to_owned),
        read_point: None,
        biz_location: facility.clone(),
        facility,
        machine: f.text("machine"),
        product: f.text("product"),
        parent,
        level: None,
        parent_level: None,
        codes,
        doc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> Result<Vec<(Record, Location)>, CsvError> {
        let mut r = CsvReader::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(x) = r.next_record()? {
            out.push(x);
        }
        Ok(out)
    }

    #[test]
    fn every_record_type_parses() {
        let text = "#gsp-csv,1\n\
            operator,KEN-EO-1,Acme Tobacco,KEN,Nairobi,manufacturer,L-1,T-1\n\
            facility,KEN-F-1,KEN-EO-1,Acme Factory,manufacturing,KEN,Nairobi\n\
            machine,KEN-M-1,KEN-F-1,Maker 9,400\n\
            product,KEN-P-1,KEN-EO-1,Acme Red 20,Acme,06141411073467,KEN,cigarettes\n\
            \n\
            event,e1,EUA,2026-01-05T06:00:00+03:00,KEN-F-1,KEN-M-1,KEN-P-1,A\n\
            code,KEN1AAAA,unit,,e1,KEN2BBBB,\n";
        let recs = read_all(text).unwrap();
        assert_eq!(recs.len(), 6);
        assert_eq!(recs[5].1, Location::Line(8));
        let Record::Event(ev) = &recs[4].0 else {
            panic!()
        };
        assert_eq!(ev.kind, EventKind::Application);
        assert_eq!(ev.key, "urn:gsp:event:e1");
        assert_eq!(ev.tz_offset, "+03:00");
        let Record::Code(c) = &recs[5].0 else {
            panic!()
        };
        assert_eq!(c.applied_by.as_deref(), Some("urn:gsp:event:e1"));
        assert_eq!(c.parent.as_deref(), Some("KEN2BBBB"));
    }

    #[test]
    fn errors_name_the_line_and_the_column() {
        let cases = [
            ("thing,1\n", 1, "unknown record type"),
            ("#c\noperator,,Name\n", 2, "\"ext_id\" is required"),
            ("code,A,box\n", 1, "level \"box\""),
            ("event,e,XYZ,2026-01-01T00:00:00Z\n", 1, "EU event code"),
            ("event,e,EUA,yesterday\n", 1, "time"),
            ("event,e,EPA,2026-01-01T00:00:00Z\n", 1, "parent"),
            ("machine,M,F,m,fast\n", 1, "capacity_per_min"),
            ("code,A,unit,,,,,,extra\n", 1, "fields"),
            ("event,e,EIV,2026-01-01T00:00:00Z\n", 1, "document"),
        ];
        for (text, line, words) in cases {
            let err = read_all(text).unwrap_err();
            assert_eq!(err.line, line, "{text}");
            assert!(err.message.contains(words), "{text}: {}", err.message);
        }
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let mut bytes = b"code,A".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
        let mut r = CsvReader::new(&bytes[..]);
        let err = r.next_record().unwrap_err();
        assert!(err.message.contains("UTF-8"));
    }
}
