//! What every input format is turned into before it reaches the database: master
//! data, events and facts about codes, each with the place in the file it came
//! from. The CSV, EPCIS JSON and EPCIS XML readers produce these; the sink
//! writes them.

use crate::data::model::{Action, EpcisType, EventKind, Level, Role};
use serde_json::{Map, Value};

/// Where in an input file something was found, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A 1-based line (CSV, XML).
    Line(u64),
    /// A line and column (JSON syntax errors).
    LineColumn(u64, u64),
    /// A JSON pointer into the document (EPCIS JSON-LD).
    Pointer(String),
    /// The file as a whole.
    File,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Line(l) => write!(f, "line {l}"),
            Location::LineColumn(l, c) => write!(f, "line {l}, column {c}"),
            Location::Pointer(p) => write!(f, "at {p}"),
            Location::File => f.write_str("file"),
        }
    }
}

/// An economic operator (manufacturer, importer, distributor, wholesaler, …).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Operator {
    /// The operator's identifier (e.g. an EU economic operator ID).
    pub ext_id: String,
    /// Registered name.
    pub name: String,
    /// Country (ISO 3166-1 alpha-3 or alpha-2).
    pub country: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Roles, comma-separated (manufacturer, importer, distributor, wholesaler, retailer).
    pub roles: Option<String>,
    /// Licence number (Art. 6).
    pub licence: Option<String>,
    /// Tax or VAT number.
    pub tax_id: Option<String>,
    /// Any further attributes, as JSON.
    pub extra: Option<Map<String, Value>>,
}

/// A facility (manufacturing site, warehouse, retail outlet, …).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facility {
    /// The facility's identifier (an EU facility ID or an SGLN).
    pub ext_id: String,
    /// The operator's identifier.
    pub operator: Option<String>,
    /// Name.
    pub name: String,
    /// Kind (manufacturing, warehouse, retail, …).
    pub kind: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Any further attributes, as JSON.
    pub extra: Option<Map<String, Value>>,
}

/// A manufacturing machine (Art. 8.4.1 (c)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Machine {
    /// The machine's identifier.
    pub ext_id: String,
    /// The facility's identifier.
    pub facility: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Rated capacity, packs per minute.
    pub capacity_per_min: Option<i64>,
    /// Any further attributes, as JSON.
    pub extra: Option<Map<String, Value>>,
}

/// A product (Art. 8.4.1 (f), (g)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Product {
    /// The product's identifier (e.g. an EU TP-ID or an EPC class).
    pub ext_id: String,
    /// The manufacturer's identifier.
    pub operator: Option<String>,
    /// Product description.
    pub description: String,
    /// Brand.
    pub brand: Option<String>,
    /// GTIN, when there is one.
    pub gtin: Option<String>,
    /// Intended market of retail sale (ISO 3166-1 alpha-3).
    pub intended_market: Option<String>,
    /// Category (cigarettes, cigars, …).
    pub category: Option<String>,
    /// Any further attributes, as JSON.
    pub extra: Option<Map<String, Value>>,
}

/// One tracking-and-tracing event in GSP's model, carrying everything needed
/// to write it back as EPCIS 2.0.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Unique key: the EPCIS eventID, or a content hash when there is none
    /// (then it starts with [`crate::data::epcis::HASH_KEY_PREFIX`]).
    pub key: String,
    /// GSP kind (EU event).
    pub kind: EventKind,
    /// EPCIS event type.
    pub epcis_type: EpcisType,
    /// EPCIS action (absent for TransformationEvent).
    pub action: Option<Action>,
    /// Event time, Unix milliseconds UTC.
    pub time_ms: i64,
    /// The time zone offset the event was recorded in, e.g. `+03:00`.
    pub tz_offset: String,
    /// CBV business step (bare word for CBV values, URI otherwise).
    pub biz_step: Option<String>,
    /// CBV disposition.
    pub disposition: Option<String>,
    /// Read point identifier.
    pub read_point: Option<String>,
    /// Business location identifier.
    pub biz_location: Option<String>,
    /// Facility identifier where it happened, when known.
    pub facility: Option<String>,
    /// Machine identifier (application events).
    pub machine: Option<String>,
    /// Product identifier that the event's application concerns (application events).
    pub product: Option<String>,
    /// The parent code (parentID).
    pub parent: Option<String>,
    /// Packaging level of the listed codes, when the source says (GSP's
    /// `gsp:level` extension; EPCIS itself has no such field).
    pub level: Option<Level>,
    /// Packaging level of the parent (`gsp:parentLevel`).
    pub parent_level: Option<Level>,
    /// Codes listed in the event with their role.
    pub codes: Vec<(Role, String)>,
    /// The remaining EPCIS fields, as EPCIS 2.0 JSON.
    pub doc: Map<String, Value>,
}

/// A statement about one code from a code line of a CSV file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodeRecord {
    /// The code.
    pub code: String,
    /// Its packaging level.
    pub level: Option<Level>,
    /// The product identifier.
    pub product: Option<String>,
    /// Key of the event that applied it (EUA or EPA).
    pub applied_by: Option<String>,
    /// Its parent code.
    pub parent: Option<String>,
    /// Key of the aggregation event that put it in `parent`.
    pub aggregated_by: Option<String>,
}

/// One item read from an input file.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// Master data: an economic operator.
    Operator(Operator),
    /// Master data: a facility.
    Facility(Facility),
    /// Master data: a machine.
    Machine(Machine),
    /// Master data: a product.
    Product(Product),
    /// An event.
    Event(Box<EventRecord>),
    /// A code line.
    Code(CodeRecord),
    /// The document's JSON-LD context terms (prefix → IRI) for extension
    /// fields, as far as known; a later one replaces an earlier one.
    Context(serde_json::Map<String, Value>),
}
