//! Streaming reader of GS1 EPCIS **XML** documents (EPCIS 1.2 and 2.0) that yields every event
//! already converted to the **EPCIS 2.0 JSON / JSON-LD** shape, so that the importer has one
//! semantic path for JSON and XML input.
//!
//! What it is for: turning `EPCISDocument`, `EPCISQueryDocument` (query results) and
//! `EPCISMasterDataDocument` XML into a stream of [`XmlItem`]s — one EPCIS 2.0 JSON event object
//! or one master-data vocabulary at a time — in constant memory with respect to the size of the
//! document (only the item being read is held, and every token, text and item is bounded by
//! [`Limits`]). Every rejection is an [`XmlError`] that names the line (and column) and what is
//! wrong.
//!
//! What it is not for: it does not validate the JSON it produces against the EPCIS JSON Schema
//! (the importer does that on the same path as for JSON input), it does not compute event hashes,
//! store anything or look at identifiers beyond the CBV normalisation described below, and it does
//! not read the SBDH header.
//!
//! # Mapping (XML → EPCIS 2.0 JSON)
//!
//! * Event elements become objects whose first member is `"type"` (`"ObjectEvent"`, …). Standard
//!   fields keep their names; simple values are XML-whitespace-trimmed strings; lists become arrays
//!   (`epcList` & co. of strings, `quantityList` & co. of `{"epcClass","quantity","uom"}`,
//!   `bizTransactionList` of `{"type","bizTransaction"}`, `sourceList`/`destinationList` of
//!   `{"type","source"}`/`{"type","destination"}`), `readPoint`/`bizLocation` become `{"id"}`,
//!   `persistentDisposition` becomes `{"set":[..],"unset":[..]}`, `errorDeclaration` becomes
//!   `{"declarationTime","reason","correctiveEventIDs":[..]}`, `certificationInfo` a string (an
//!   array when repeated), `sensorElementList` an array of
//!   `{"sensorMetadata":{..},"sensorReport":[{..}]}` whose XML attributes become members.
//! * Numbers: `quantity` (xsd:decimal) and the sensor `value`, `minValue`, `maxValue`,
//!   `meanValue`, `sDev`, `percRank`, `percValue` (xsd:double) become JSON numbers — an integral
//!   value within ±2^53 as a JSON integer (`25.0` → `25`), anything else as an `f64` (so decimals
//!   with more than ~15 significant digits lose precision). `INF`/`NaN` are rejected, `booleanValue`
//!   becomes a JSON boolean. `<quantity xsi:nil="true"/>` (allowed by the 2.0 XSD) omits `quantity`.
//! * Times (`eventTime`, `recordTime`, `declarationTime`, the sensor `time`, `startTime`,
//!   `endTime`, the root's `creationDate`) are checked to be `xsd:dateTimeStamp` values that are
//!   also RFC 3339 date-times (4-digit year, time zone required, no `24:00:00`, no leap second) and
//!   are passed through unchanged (no conversion to UTC). `eventTimeZoneOffset` must match `±hh:mm`
//!   (−14:00…+14:00).
//! * CBV values: `urn:epcglobal:cbv:bizstep:W`, `…:disp:W`, `…:btt:W`, `…:sdt:W`, `…:er:W` and the
//!   CBV 2.0 Web URIs (`https://ref.gs1.org/cbv/BizStep-W`, `cbv:BizStep-W`, …) become the bare word
//!   `W` when `W` is a standard value (the enums of the official JSON Schema); any other
//!   `urn:epcglobal:cbv:…` value is rejected, because EPCIS 2.0 JSON cannot carry it. Sensor `type`
//!   / `exception` values `gs1:W` or `https://gs1.org/voc/W` become `W` for the standard measurement
//!   and alert types, `component` values `cbv:Comp-W` become `W`. Other URIs are kept as they are.
//! * EPCIS 1.2 quirks are flattened: `<extension>` and `<baseExtension>` wrappers inside events
//!   (and inside `errorDeclaration`, `ilmd`, `readPoint`, `sensorElement`, …) are transparent, so
//!   `quantityList`, `sourceList`, `ilmd`, `eventID`, `errorDeclaration` … land on the event itself;
//!   `TransformationEvent` (and `AssociationEvent`) inside `<EventList><extension>` are events like
//!   any other. `QuantityEvent` (removed in 2.0) and event types of other namespaces are rejected.
//! * Which standard fields an event type may carry follows the official EPCIS 2.0 JSON Schema
//!   (e.g. `persistentDisposition` only on ObjectEvent and TransformationEvent); a misplaced or
//!   unknown element in the EPCIS namespace is an error. Required: `eventTime`,
//!   `eventTimeZoneOffset`; `action` (all but TransformationEvent); `parentID` (AssociationEvent);
//!   `bizTransactionList` (TransactionEvent); `id` of `readPoint`/`bizLocation`; `epcClass` of a
//!   quantity element; `type` of source/destination and of `sensorReport`; `declarationTime`.
//!   Empty lists are kept (`<epcList/>` → `"epcList": []`).
//! * **User extensions** (elements in any namespace other than the EPCIS ones) become members
//!   named `"prefix:localName"`, using the prefix the document declared for that namespace URI (see
//!   [`XmlDocumentInfo::namespaces`] for conflicts and default namespaces, and
//!   [`XmlDocumentInfo::json_ld_context`] for the matching `@context`). The value of an extension
//!   element is:
//!   - a string with its exact text when it has neither child elements nor attributes (an empty
//!     element gives `""`, `xsi:nil="true"` gives `null`);
//!   - otherwise an object: each attribute becomes a member (`"prefix:name"`, or the bare name for
//!     an attribute without namespace), each child element a member named as above (an unqualified
//!     child gets its bare local name), text next to attributes goes into `"#text"`;
//!   - repeated sibling names become an array, in document order.
//!
//!   Whitespace-only text between elements is ignored; non-whitespace text mixed with child
//!   elements is an error. `xsi:type` is ignored (values stay strings, as in GS1's own JSON
//!   examples); `xmlns` declarations never become members. Namespaced attributes on standard
//!   elements that map to JSON objects (the event, `readPoint`, `bizLocation`, `errorDeclaration`,
//!   `sensorElement`, `sensorMetadata`, `sensorReport`, vocabularies) become `"prefix:name"` string
//!   members; anywhere else they are an error.
//! * **Master data** (`EPCISHeader/extension/EPCISMasterData/VocabularyList/Vocabulary`, the body of
//!   an `EPCISMasterDataDocument`, or `VocabularyList` query results) is yielded one vocabulary at
//!   a time in the shape of the EPCIS 2.0 JSON `epcisHeader.epcisMasterData.vocabularyList` items:
//!   `{"type": vocabulary type URI, "vocabularyElementList": [{"id": .., "attributes": [{"id": attr
//!   URI, "attribute": value}], "children": [ids]}]}`. An attribute's value is its trimmed text as
//!   a string (never a number: `+18.0000` stays `"+18.0000"`), or, when it has child elements, an
//!   object built with the extension rules above; an empty attribute omits `"attribute"`, empty
//!   `attributes`/`children` are omitted.
//!
//! # Security and limits
//!
//! Entities are never expanded: only the five predefined entities and character references are
//! resolved. A `<!DOCTYPE>` with an internal subset or an external identifier is refused (so no
//! billion-laughs or external entity can be smuggled in); a bare `<!DOCTYPE name>` — which declares
//! nothing and appears in several of GS1's own example files — is tolerated before the root. Only
//! UTF-8 (and its ASCII subset) is accepted. Element depth, the size of a single token, the text of
//! one element, the source size of one item and the number of namespace prefixes are bounded by
//! [`Limits`]. The reader never panics.
//!
//! # Skipped content
//!
//! Content that has no place in an event or vocabulary is skipped, never half-imported: the SBDH
//! (`sbdh:StandardBusinessDocumentHeader`), `queryName`/`subscriptionID` of query results, and
//! elements of other namespaces at document, header, body and query-result level. The
//! `<extension>` points of the document, header, body and query results (reserved for future EPCIS
//! content) must be empty: content there is an error, like any unknown EPCIS element. Events and
//! vocabularies are never dropped silently: an event that cannot be converted is an error
//! ([`XmlErrorKind::Event`]) after which [`EpcisXmlReader::next_item`] continues with the next one,
//! so that the caller can report all bad events at once (and decide not to import the document).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, Read};

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use serde_json::{Map, Number, Value};

/// The JSON-LD context every EPCIS 2.0 JSON document starts with.
pub const EPCIS_CONTEXT_URL: &str =
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";

const NS_EPCIS_1: &str = "urn:epcglobal:epcis:xsd:1";
const NS_EPCIS_2: &str = "urn:epcglobal:epcis:xsd:2";
const NS_QUERY_1: &str = "urn:epcglobal:epcis-query:xsd:1";
const NS_QUERY_2: &str = "urn:epcglobal:epcis-query:xsd:2";
const NS_MASTERDATA_1: &str = "urn:epcglobal:epcis-masterdata:xsd:1";
const NS_MASTERDATA_2: &str = "urn:epcglobal:epcis-masterdata:xsd:2";
const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const NS_XSD: &str = "http://www.w3.org/2001/XMLSchema";
const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";
const NS_SBDH: &str = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader";

/// Namespaces whose elements are "EPCIS elements" (the XSDs use unqualified local elements, but a
/// document that qualifies them, e.g. through a default namespace, is read the same way).
const EPCIS_NAMESPACES: [&str; 6] = [
    NS_EPCIS_1,
    NS_EPCIS_2,
    NS_QUERY_1,
    NS_QUERY_2,
    NS_MASTERDATA_1,
    NS_MASTERDATA_2,
];

// ------------------------------------------------------------------------------------------------
// Public API
// ------------------------------------------------------------------------------------------------

/// Bounds that keep a hostile or broken document from exhausting memory or the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum element nesting depth, the root element counting as 1.
    pub max_depth: usize,
    /// Maximum size in bytes of one XML token (a text run, a tag with its attributes, a comment)
    /// and of the text content of one element.
    pub max_text_bytes: usize,
    /// Maximum size in bytes of the XML source of one event or vocabulary.
    pub max_item_bytes: u64,
    /// Maximum number of distinct namespace prefixes recorded for the document.
    pub max_namespaces: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 64,
            max_text_bytes: 1024 * 1024,
            max_item_bytes: 64 * 1024 * 1024,
            max_namespaces: 256,
        }
    }
}

/// Which EPCIS document the root element announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// `EPCISDocument` (events, possibly master data in the header).
    Events,
    /// `EPCISQueryDocument` carrying `QueryResults` (events or vocabularies).
    QueryResults,
    /// `EPCISMasterDataDocument` (vocabularies only).
    MasterData,
}

/// Document-level facts. Everything but [`namespaces`](Self::namespaces) is known once the root
/// element has been read (by [`EpcisXmlReader::read_prolog`] or the first
/// [`EpcisXmlReader::next_item`]); before that the fields are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XmlDocumentInfo {
    /// The kind of document, `None` until the root element has been read.
    pub kind: Option<DocumentKind>,
    /// Namespace URI of the root element (`urn:epcglobal:epcis:xsd:1`, `…:2`, …).
    pub namespace: String,
    /// The root's `schemaVersion` attribute as written (`"1.2"`, `"2.0"`, …).
    pub schema_version: String,
    /// The root's `creationDate` attribute as written (checked to be an `xsd:dateTime`).
    pub creation_date: String,
    /// Namespace prefix → URI for every prefix the document declared so far (on any element) plus
    /// the prefixes this reader minted. It grows while the document is read; after `next_item`
    /// returns an item it contains every prefix that item uses. When a prefix is re-declared for a
    /// different URI, or a namespace is only used as a default namespace, extension members of
    /// that namespace get a minted prefix (`p2`, `ns1`, …) recorded here, so that one JSON-LD
    /// `@context` built from this map is valid for the whole document.
    pub namespaces: BTreeMap<String, String>,
}

impl XmlDocumentInfo {
    /// A JSON-LD `@context` for the items of this document: the EPCIS 2.0 context followed by one
    /// object with the extension prefixes of [`namespaces`](Self::namespaces). XML infrastructure
    /// namespaces (xsi, xsd, xml, EPCIS, SBDH) and prefixes the standard context already defines
    /// with the same meaning (`cbvmda` for `urn:epcglobal:cbv:mda`, `gs1`, `cbv`) are left out. A
    /// namespace URI that does not end with `/` or `#` is declared as `{"@id": uri, "@prefix": true}`
    /// so that JSON-LD 1.1 still expands `prefix:name` with it.
    pub fn json_ld_context(&self) -> Value {
        let mut prefixes = Map::new();
        for (prefix, uri) in &self.namespaces {
            if is_infrastructure_namespace(uri) || is_standard_context_prefix(prefix, uri) {
                continue;
            }
            let value = if uri.ends_with('/') || uri.ends_with('#') {
                Value::String(uri.clone())
            } else {
                let mut term = Map::new();
                term.insert("@id".into(), Value::String(uri.clone()));
                term.insert("@prefix".into(), Value::Bool(true));
                Value::Object(term)
            };
            prefixes.insert(prefix.clone(), value);
        }
        let mut context = vec![Value::String(EPCIS_CONTEXT_URL.into())];
        if !prefixes.is_empty() {
            context.push(Value::Object(prefixes));
        }
        Value::Array(context)
    }
}

/// One item of the document, in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum XmlItem {
    /// One event as an EPCIS 2.0 JSON object (`"type": "ObjectEvent" | "AggregationEvent" |
    /// "TransactionEvent" | "TransformationEvent" | "AssociationEvent"`, …), without `@context`.
    Event {
        /// The event object.
        value: Value,
        /// 1-based line of the event's start tag.
        line: u64,
        /// 0-based position of the event in its `EventList` (events inside 1.2 `<extension>`
        /// wrappers and events that failed to convert count too).
        index: usize,
    },
    /// One master-data vocabulary (see the module documentation for its shape).
    MasterData {
        /// The vocabulary object.
        value: Value,
        /// 1-based line of the `<Vocabulary>` start tag.
        line: u64,
    },
}

/// What kind of problem an [`XmlError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmlErrorKind {
    /// The input is not well-formed UTF-8 XML (or uses a refused feature such as a DTD). Fatal.
    Syntax,
    /// A [`Limits`] bound was exceeded. Fatal.
    Limit,
    /// The document structure outside events is not EPCIS (wrong root, unknown element). Fatal.
    Document,
    /// One event or vocabulary cannot be converted. The reader has skipped it: the next call to
    /// [`EpcisXmlReader::next_item`] continues with the following item.
    Event,
}

/// A located error: `line 17, column 9: <eventTime> is not an xsd:dateTime …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {message}", column_suffix(*.column))]
pub struct XmlError {
    /// 1-based line where the offending element or token starts.
    pub line: u64,
    /// 1-based column (in characters) where it starts, when known.
    pub column: Option<u64>,
    /// What is wrong.
    pub message: String,
    /// Whether reading can continue.
    pub kind: XmlErrorKind,
}

impl XmlError {
    /// Whether [`EpcisXmlReader::next_item`] can be called again to read the following items.
    pub fn is_recoverable(&self) -> bool {
        self.kind == XmlErrorKind::Event
    }
}

fn column_suffix(column: Option<u64>) -> String {
    column.map(|c| format!(", column {c}")).unwrap_or_default()
}

/// Streaming reader: constant memory in the size of the document (only the current item is
/// held). See the module documentation for the mapping.
pub struct EpcisXmlReader<R: BufRead> {
    lex: Lexer<R>,
    frames: Vec<Frame>,
    state: State,
    /// Position of the next event in the current `EventList`.
    event_index: usize,
}

impl<R: BufRead> EpcisXmlReader<R> {
    /// A reader with the default [`Limits`]. Nothing is read until
    /// [`read_prolog`](Self::read_prolog) or [`next_item`](Self::next_item) is called.
    pub fn new(reader: R) -> Self {
        Self::with_limits(reader, Limits::default())
    }

    /// A reader with explicit [`Limits`].
    pub fn with_limits(reader: R, limits: Limits) -> Self {
        Self {
            lex: Lexer::new(reader, limits),
            frames: Vec::new(),
            state: State::NotStarted,
            event_index: 0,
        }
    }

    /// Document-level facts: empty until the root element has been read, then schema version,
    /// creation date and the namespace declarations seen so far.
    pub fn document(&self) -> &XmlDocumentInfo {
        &self.lex.info
    }

    /// Reads up to and including the root element (if not done yet) and returns the document
    /// facts. Fails if the document does not start with an EPCIS root element.
    pub fn read_prolog(&mut self) -> Result<&XmlDocumentInfo, XmlError> {
        match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::NotStarted => {
                if let Err(e) = self.read_root() {
                    self.state = State::Failed(e.clone());
                    return Err(e);
                }
                self.state = State::Reading;
            }
            State::Reading | State::Finished => {}
        }
        Ok(&self.lex.info)
    }

    /// The next item in document order; `None` at the end of a well-formed document. After an
    /// error of kind [`XmlErrorKind::Event`] the reader can be called again; after any other error
    /// it keeps returning that error.
    pub fn next_item(&mut self) -> Result<Option<XmlItem>, XmlError> {
        self.read_prolog()?;
        match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::Finished => return Ok(None),
            State::NotStarted | State::Reading => {}
        }
        let result = self.next_item_inner();
        match &result {
            Err(e) if !e.is_recoverable() => self.state = State::Failed(e.clone()),
            Ok(None) => self.state = State::Finished,
            _ => {}
        }
        result
    }
}

// ------------------------------------------------------------------------------------------------
// Counting reader: line/column tracking and the per-token size bound
// ------------------------------------------------------------------------------------------------

/// Wraps the input to count lines and columns of everything the XML parser consumed, and to stop
/// a single token from growing without bound (quick-xml buffers a whole token before returning it).
struct Counting<R> {
    inner: R,
    consumed: u64,
    line: u64,
    /// Characters consumed on the current line.
    col: u64,
    token_start: u64,
    token_line: u64,
    token_col: u64,
    token_limit: u64,
    over_limit: bool,
}

impl<R: BufRead> Counting<R> {
    fn new(inner: R, token_limit: u64) -> Self {
        Self {
            inner,
            consumed: 0,
            line: 1,
            col: 0,
            token_start: 0,
            token_line: 1,
            token_col: 1,
            token_limit,
            over_limit: false,
        }
    }

    fn start_token(&mut self) {
        self.token_start = self.consumed;
        self.token_line = self.line;
        self.token_col = self.col + 1;
    }
}

impl<R: BufRead> Read for Counting<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(out.len());
            out[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.consumed.saturating_sub(self.token_start) > self.token_limit {
            self.over_limit = true;
            return Err(io::Error::other("token too long"));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Ok(available) = self.inner.fill_buf() {
            let taken = &available[..amt.min(available.len())];
            let skip_bom = self.consumed == 0 && taken.starts_with(&[0xEF, 0xBB, 0xBF]);
            for (i, &b) in taken.iter().enumerate() {
                if skip_bom && i < 3 {
                    continue;
                }
                if b == b'\n' {
                    self.line += 1;
                    self.col = 0;
                } else if b & 0xC0 != 0x80 {
                    self.col += 1;
                }
            }
        }
        self.consumed += amt as u64;
        self.inner.consume(amt);
    }
}

// ------------------------------------------------------------------------------------------------
// Lexer: quick-xml events → owned, namespace-resolved tokens
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Attr {
    ns: Option<String>,
    prefix: Option<String>,
    local: String,
    value: String,
}

impl Attr {
    fn qname(&self) -> String {
        match &self.prefix {
            Some(p) => format!("{p}:{}", self.local),
            None => self.local.clone(),
        }
    }

    fn is_xsi(&self, local: &str) -> bool {
        self.ns.as_deref() == Some(NS_XSI) && self.local == local
    }
}

#[derive(Debug, Clone)]
struct Elem {
    ns: Option<String>,
    prefix: Option<String>,
    local: String,
    attrs: Vec<Attr>,
    line: u64,
    col: u64,
}

impl Elem {
    fn tag(&self) -> String {
        match &self.prefix {
            Some(p) => format!("<{p}:{}>", self.local),
            None => format!("<{}>", self.local),
        }
    }

    /// An element of the EPCIS vocabulary (unqualified or qualified with an EPCIS namespace).
    fn is_epcis(&self) -> bool {
        match &self.ns {
            None => true,
            Some(ns) => EPCIS_NAMESPACES.contains(&ns.as_str()),
        }
    }

    fn error(&self, kind: XmlErrorKind, message: impl Into<String>) -> XmlError {
        XmlError {
            line: self.line,
            column: Some(self.col),
            message: message.into(),
            kind,
        }
    }

    fn event_error(&self, message: impl Into<String>) -> XmlError {
        self.error(XmlErrorKind::Event, message)
    }

    fn attr(&self, local: &str) -> Option<&Attr> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_none() && a.local == local)
    }

    fn is_nil(&self) -> bool {
        self.attrs
            .iter()
            .any(|a| a.is_xsi("nil") && matches!(collapse(&a.value), "true" | "1"))
    }
}

#[derive(Debug)]
enum Tok {
    Start(Elem),
    End,
    Text(String),
    Eof,
}

/// Prefix bookkeeping for extension member names (see [`XmlDocumentInfo::namespaces`]).
#[derive(Debug, Default)]
struct PrefixTable {
    /// Output prefix chosen for each namespace URI.
    by_uri: HashMap<String, String>,
}

struct Lexer<R> {
    reader: NsReader<Counting<R>>,
    buf: Vec<u8>,
    limits: Limits,
    info: XmlDocumentInfo,
    prefixes: PrefixTable,
    /// Qualified names of the open elements (bounded by `limits.max_depth`).
    open: Vec<String>,
    pending_end: bool,
    root_closed: bool,
    item_start: Option<u64>,
}

impl<R: BufRead> Lexer<R> {
    fn new(reader: R, limits: Limits) -> Self {
        let mut reader = NsReader::from_reader(Counting::new(reader, limits.max_text_bytes as u64));
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Self {
            reader,
            buf: Vec::new(),
            limits,
            info: XmlDocumentInfo::default(),
            prefixes: PrefixTable::default(),
            open: Vec::new(),
            pending_end: false,
            root_closed: false,
            item_start: None,
        }
    }

    fn depth(&self) -> usize {
        self.open.len()
    }

    fn counter(&mut self) -> &mut Counting<R> {
        self.reader.get_mut()
    }

    /// Error located at the start of the last token read.
    fn error_here(&mut self, kind: XmlErrorKind, message: impl Into<String>) -> XmlError {
        let counter = self.counter();
        XmlError {
            line: counter.token_line,
            column: Some(counter.token_col),
            message: message.into(),
            kind,
        }
    }

    fn begin_item(&mut self) {
        let consumed = self.counter().consumed;
        self.item_start = Some(consumed);
    }

    fn end_item(&mut self) {
        self.item_start = None;
    }

    fn next(&mut self) -> Result<Tok, XmlError> {
        loop {
            if self.pending_end {
                self.pending_end = false;
                self.close_element();
                return Ok(Tok::End);
            }
            let counter = self.reader.get_mut();
            counter.start_token();
            if let Some(start) = self.item_start {
                let size = counter.consumed.saturating_sub(start);
                if size > self.limits.max_item_bytes {
                    let max = self.limits.max_item_bytes;
                    return Err(self.error_here(
                        XmlErrorKind::Limit,
                        format!("one event or vocabulary is longer than {max} bytes of XML"),
                    ));
                }
            }
            self.buf.clear();
            let read = self.reader.read_resolved_event_into(&mut self.buf);
            let (ns, event) = match read {
                Ok((resolved, event)) => {
                    let ns = match resolved {
                        ResolveResult::Unbound => Ok(None),
                        ResolveResult::Bound(ns) => Ok(Some(ns.into_inner().to_owned())),
                        ResolveResult::Unknown(prefix) => Err(prefix),
                    };
                    (ns, event.into_owned())
                }
                Err(e) => return Err(self.map_xml_error(&e)),
            };
            // The reader may have had the whole token in one buffer: check its size afterwards too.
            let counter = self.counter();
            if counter.consumed.saturating_sub(counter.token_start) > counter.token_limit {
                counter.over_limit = true;
                let max = self.limits.max_text_bytes;
                return Err(self.error_here(
                    XmlErrorKind::Limit,
                    format!("a single XML token (text, tag or comment) is longer than {max} bytes"),
                ));
            }
            match event {
                Event::Start(start) | Event::Empty(start) if ns.is_err() => {
                    let prefix = ns.err().unwrap_or_default();
                    let name = start.name().into_inner().to_owned();
                    return Err(self.error_here(
                        XmlErrorKind::Syntax,
                        format!("namespace prefix '{prefix}' of <{name}> is not declared"),
                    ));
                }
                Event::Start(start) => {
                    let elem = self.element(ns.ok().flatten(), &start)?;
                    return self.open_element(elem, false);
                }
                Event::Empty(start) => {
                    let elem = self.element(ns.ok().flatten(), &start)?;
                    return self.open_element(elem, true);
                }
                Event::End(_) => {
                    self.close_element();
                    return Ok(Tok::End);
                }
                Event::Text(text) => {
                    let text = text.xml10_content().into_owned();
                    if let Some(tok) = self.text(text)? {
                        return Ok(tok);
                    }
                }
                Event::CData(data) => {
                    let text = data.xml10_content().into_owned();
                    if let Some(tok) = self.text(text)? {
                        return Ok(tok);
                    }
                }
                Event::GeneralRef(reference) => {
                    let text = match reference.resolve_char_ref() {
                        Ok(Some(c)) if is_xml_char(c) => c.to_string(),
                        Ok(Some(c)) => {
                            return Err(self.error_here(
                                XmlErrorKind::Syntax,
                                format!(
                                    "character reference to U+{:04X} is not allowed in XML",
                                    c as u32
                                ),
                            ));
                        }
                        Ok(None) => match predefined_entity(&reference) {
                            Some(s) => s.to_owned(),
                            None => {
                                let name = reference.to_string();
                                return Err(self.error_here(
                                    XmlErrorKind::Syntax,
                                    format!(
                                        "undefined entity &{}; (DTD entities are not supported)",
                                        truncate(&name)
                                    ),
                                ));
                            }
                        },
                        Err(e) => {
                            return Err(self.error_here(
                                XmlErrorKind::Syntax,
                                format!("invalid character reference: {e}"),
                            ));
                        }
                    };
                    if let Some(tok) = self.text(text)? {
                        return Ok(tok);
                    }
                }
                Event::Decl(decl) => {
                    if let Some(encoding) = decl.encoding() {
                        let encoding = match encoding {
                            Ok(e) => e.into_owned(),
                            Err(e) => {
                                return Err(self.error_here(
                                    XmlErrorKind::Syntax,
                                    format!("invalid XML declaration: {e}"),
                                ));
                            }
                        };
                        let lower = encoding.to_ascii_lowercase();
                        if !matches!(lower.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
                            return Err(self.error_here(
                                XmlErrorKind::Syntax,
                                format!(
                                    "declared encoding '{}' is not supported; convert the document to UTF-8",
                                    truncate(&encoding)
                                ),
                            ));
                        }
                    }
                }
                Event::DocType(doctype) => {
                    let content = doctype.xml10_content().into_owned();
                    self.doctype(&content)?;
                }
                Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => {
                    if let Some(name) = self.open.last() {
                        let message = format!("unexpected end of document inside <{name}>");
                        return Err(self.error_here(XmlErrorKind::Syntax, message));
                    }
                    return Ok(Tok::Eof);
                }
            }
        }
    }

    fn text(&mut self, text: String) -> Result<Option<Tok>, XmlError> {
        if self.open.is_empty() {
            if text.chars().all(is_xml_space) {
                return Ok(None);
            }
            let message = if self.root_closed {
                "text after the end of the root element"
            } else {
                "text before the root element"
            };
            return Err(self.error_here(XmlErrorKind::Syntax, message));
        }
        Ok(Some(Tok::Text(text)))
    }

    fn doctype(&mut self, content: &str) -> Result<(), XmlError> {
        let name = collapse(content);
        let bare = !name.is_empty()
            && name.chars().all(|c| {
                !is_xml_space(c) && !matches!(c, '[' | ']' | '"' | '\'' | '<' | '>' | '%')
            });
        if !bare {
            return Err(self.error_here(
                XmlErrorKind::Syntax,
                "a DOCTYPE with an internal subset or external DTD is refused (entity expansion is not supported)",
            ));
        }
        if !self.open.is_empty() || self.root_closed || self.info.kind.is_some() {
            return Err(self.error_here(XmlErrorKind::Syntax, "DOCTYPE after the root element"));
        }
        Ok(())
    }

    fn open_element(&mut self, elem: Elem, empty: bool) -> Result<Tok, XmlError> {
        if self.open.is_empty() && self.root_closed {
            return Err(elem.error(
                XmlErrorKind::Syntax,
                format!("{} after the end of the root element", elem.tag()),
            ));
        }
        if self.open.len() >= self.limits.max_depth {
            let max = self.limits.max_depth;
            return Err(elem.error(
                XmlErrorKind::Limit,
                format!("elements are nested deeper than {max} levels"),
            ));
        }
        let qname = match &elem.prefix {
            Some(p) => format!("{p}:{}", elem.local),
            None => elem.local.clone(),
        };
        self.open.push(qname);
        self.pending_end = empty;
        Ok(Tok::Start(elem))
    }

    fn close_element(&mut self) {
        self.open.pop();
        if self.open.is_empty() {
            self.root_closed = true;
        }
    }

    fn element(&mut self, ns: Option<String>, start: &BytesStart<'_>) -> Result<Elem, XmlError> {
        let (local, prefix) = start.name().decompose();
        let local = local.into_inner().to_owned();
        let prefix = prefix.map(|p| p.into_inner().to_owned());
        let mut attrs = Vec::new();
        let mut declarations = Vec::new();
        for attribute in start.attributes() {
            let attribute = match attribute {
                Ok(a) => a,
                Err(e) => {
                    return Err(
                        self.error_here(XmlErrorKind::Syntax, format!("invalid attribute: {e}"))
                    );
                }
            };
            let value = match attribute.normalized_value(XmlVersion::Implicit1_0) {
                Ok(v) => v.into_owned(),
                Err(e) => {
                    let key = attribute.key.into_inner().to_owned();
                    return Err(self.error_here(
                        XmlErrorKind::Syntax,
                        format!("invalid value of attribute {}: {e}", truncate(&key)),
                    ));
                }
            };
            if let Some(binding) = attribute.key.as_namespace_binding() {
                if let quick_xml::name::PrefixDeclaration::Named(p) = binding {
                    declarations.push((p.to_owned(), value));
                }
                continue;
            }
            let (resolved, attr_local) = self.reader.resolver().resolve_attribute(attribute.key);
            let attr_ns = match resolved {
                ResolveResult::Unbound => None,
                ResolveResult::Bound(ns) => Some(ns.into_inner().to_owned()),
                ResolveResult::Unknown(p) => {
                    let key = attribute.key.into_inner().to_owned();
                    return Err(self.error_here(
                        XmlErrorKind::Syntax,
                        format!("namespace prefix '{p}' of attribute {key} is not declared"),
                    ));
                }
            };
            attrs.push(Attr {
                ns: attr_ns,
                prefix: attribute.key.prefix().map(|p| p.into_inner().to_owned()),
                local: attr_local.into_inner().to_owned(),
                value,
            });
        }
        for (p, uri) in declarations {
            self.declare(&p, &uri)?;
        }
        let counter = self.counter();
        Ok(Elem {
            ns,
            prefix,
            local,
            attrs,
            line: counter.token_line,
            col: counter.token_col,
        })
    }

    /// Records `xmlns:prefix="uri"`.
    fn declare(&mut self, prefix: &str, uri: &str) -> Result<(), XmlError> {
        if uri.is_empty() || prefix == "xml" || prefix == "xmlns" {
            return Ok(());
        }
        match self.info.namespaces.get(prefix) {
            Some(existing) if existing == uri => Ok(()),
            Some(_) => {
                if self.prefixes.by_uri.contains_key(uri) {
                    return Ok(());
                }
                let minted = self.mint_prefix(prefix)?;
                self.insert_prefix(&minted, uri)
            }
            None => self.insert_prefix(prefix, uri),
        }
    }

    fn insert_prefix(&mut self, prefix: &str, uri: &str) -> Result<(), XmlError> {
        if self.info.namespaces.len() >= self.limits.max_namespaces {
            let max = self.limits.max_namespaces;
            return Err(self.error_here(
                XmlErrorKind::Limit,
                format!("the document declares more than {max} namespace prefixes"),
            ));
        }
        self.info
            .namespaces
            .insert(prefix.to_owned(), uri.to_owned());
        self.prefixes
            .by_uri
            .entry(uri.to_owned())
            .or_insert_with(|| prefix.to_owned());
        Ok(())
    }

    fn mint_prefix(&mut self, base: &str) -> Result<String, XmlError> {
        for n in 1..=self.limits.max_namespaces + 1 {
            let candidate = if base.is_empty() {
                format!("ns{n}")
            } else {
                format!("{base}{}", n + 1)
            };
            if !self.info.namespaces.contains_key(&candidate) {
                return Ok(candidate);
            }
        }
        let max = self.limits.max_namespaces;
        Err(self.error_here(
            XmlErrorKind::Limit,
            format!("the document declares more than {max} namespace prefixes"),
        ))
    }

    /// The prefix extension members of namespace `uri` are named with (`written` is the prefix the
    /// element or attribute used).
    fn output_prefix(&mut self, written: Option<&str>, uri: &str) -> Result<String, XmlError> {
        if uri == NS_XML {
            return Ok("xml".into());
        }
        if let Some(p) = written
            && self.info.namespaces.get(p).map(String::as_str) == Some(uri)
        {
            return Ok(p.to_owned());
        }
        if let Some(p) = self.prefixes.by_uri.get(uri) {
            return Ok(p.clone());
        }
        let minted = self.mint_prefix("")?;
        self.insert_prefix(&minted, uri)?;
        Ok(minted)
    }

    fn map_xml_error(&mut self, error: &quick_xml::Error) -> XmlError {
        if self.counter().over_limit {
            let max = self.limits.max_text_bytes;
            return self.error_here(
                XmlErrorKind::Limit,
                format!("a single XML token (text, tag or comment) is longer than {max} bytes"),
            );
        }
        let message = match error {
            quick_xml::Error::Io(e) => format!("cannot read the document: {e}"),
            other => format!("not well-formed XML: {other}"),
        };
        self.error_here(XmlErrorKind::Syntax, message)
    }
}

fn predefined_entity(name: &str) -> Option<&'static str> {
    match name {
        "lt" => Some("<"),
        "gt" => Some(">"),
        "amp" => Some("&"),
        "apos" => Some("'"),
        "quot" => Some("\""),
        _ => None,
    }
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// XML Schema `whiteSpace="collapse"` edges: strips leading and trailing XML whitespace.
fn collapse(s: &str) -> &str {
    s.trim_matches(is_xml_space)
}

fn is_blank(s: &str) -> bool {
    s.chars().all(is_xml_space)
}

/// A value quoted in an error message, cut to a readable length.
fn truncate(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut cut: String = s.chars().take(MAX).collect();
        cut.push('…');
        cut
    }
}

fn is_infrastructure_namespace(uri: &str) -> bool {
    EPCIS_NAMESPACES.contains(&uri) || matches!(uri, NS_XSI | NS_XSD | NS_XML | NS_SBDH)
}

fn is_standard_context_prefix(prefix: &str, uri: &str) -> bool {
    matches!(
        (prefix, uri),
        ("cbvmda", "urn:epcglobal:cbv:mda")
            | ("cbvmda", "urn:epcglobal:cbv:mda#")
            | ("gs1", "https://gs1.org/voc/")
            | ("cbv", "https://ref.gs1.org/cbv/")
    )
}

// ------------------------------------------------------------------------------------------------
// Document structure outside items
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum State {
    NotStarted,
    Reading,
    Finished,
    Failed(XmlError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Document,
    Header,
    HeaderExtension,
    MasterData,
    VocabularyList,
    Body,
    QueryResults,
    ResultsBody,
    EventList,
}

impl<R: BufRead> EpcisXmlReader<R> {
    fn read_root(&mut self) -> Result<(), XmlError> {
        let root = loop {
            match self.lex.next()? {
                Tok::Start(elem) => break elem,
                Tok::Eof => {
                    return Err(self.lex.error_here(
                        XmlErrorKind::Syntax,
                        "not an EPCIS document: the document has no root element",
                    ));
                }
                Tok::End | Tok::Text(_) => {}
            }
        };
        let ns = root.ns.clone().unwrap_or_default();
        let kind = match (ns.as_str(), root.local.as_str()) {
            (NS_EPCIS_1 | NS_EPCIS_2, "EPCISDocument") => DocumentKind::Events,
            (NS_QUERY_1 | NS_QUERY_2, "EPCISQueryDocument") => DocumentKind::QueryResults,
            (NS_MASTERDATA_1 | NS_MASTERDATA_2, "EPCISMasterDataDocument") => {
                DocumentKind::MasterData
            }
            _ => {
                let detail = match &root.ns {
                    Some(ns) => format!(" in namespace '{}'", truncate(ns)),
                    None => " without namespace".to_owned(),
                };
                return Err(root.error(
                    XmlErrorKind::Document,
                    format!(
                        "not an EPCIS document: root element is {}{detail} (expected EPCISDocument, \
                         EPCISQueryDocument or EPCISMasterDataDocument in an EPCIS 1.x/2.x namespace)",
                        truncate(&root.tag())
                    ),
                ));
            }
        };
        let schema_version = root
            .attr("schemaVersion")
            .map(|a| collapse(&a.value).to_owned());
        let creation_date = root
            .attr("creationDate")
            .map(|a| collapse(&a.value).to_owned());
        let Some(schema_version) = schema_version else {
            return Err(root.error(
                XmlErrorKind::Document,
                format!("{} has no schemaVersion attribute", root.tag()),
            ));
        };
        let Some(creation_date) = creation_date else {
            return Err(root.error(
                XmlErrorKind::Document,
                format!("{} has no creationDate attribute", root.tag()),
            ));
        };
        if !is_date_time_stamp(&creation_date) {
            return Err(root.error(
                XmlErrorKind::Document,
                format!(
                    "creationDate is not an xsd:dateTime with a time zone: '{}'",
                    truncate(&creation_date)
                ),
            ));
        }
        let info = &mut self.lex.info;
        info.kind = Some(kind);
        info.namespace = ns;
        info.schema_version = schema_version;
        info.creation_date = creation_date;
        self.frames.push(Frame::Document);
        Ok(())
    }

    fn next_item_inner(&mut self) -> Result<Option<XmlItem>, XmlError> {
        loop {
            match self.lex.next()? {
                Tok::Eof => return Ok(None),
                Tok::End => {
                    self.frames.pop();
                }
                Tok::Text(text) => {
                    if !is_blank(&text) {
                        let message = format!("unexpected text '{}'", truncate(collapse(&text)));
                        return Err(self.lex.error_here(XmlErrorKind::Document, message));
                    }
                }
                Tok::Start(elem) => {
                    let Some(&frame) = self.frames.last() else {
                        return Err(elem.error(XmlErrorKind::Syntax, "element outside the root"));
                    };
                    if let Some(item) = self.outer_start(frame, elem)? {
                        return Ok(Some(item));
                    }
                }
            }
        }
    }

    fn outer_start(&mut self, frame: Frame, elem: Elem) -> Result<Option<XmlItem>, XmlError> {
        let kind = self.lex.info.kind;
        let push = |frames: &mut Vec<Frame>, f: Frame| {
            frames.push(f);
            Ok(None)
        };
        if !elem.is_epcis() {
            // Foreign content outside events has no place in EPCIS 2.0 JSON items.
            if frame == Frame::EventList {
                self.event_index += 1;
                self.skip_element()?;
                return Err(elem.event_error(format!(
                    "user-defined event type {} (namespace '{}') is not supported",
                    elem.tag(),
                    truncate(elem.ns.as_deref().unwrap_or_default())
                )));
            }
            if frame == Frame::VocabularyList || frame == Frame::ResultsBody {
                return Err(self.unexpected(&elem, frame));
            }
            self.skip_element()?;
            return Ok(None);
        }
        match (frame, elem.local.as_str()) {
            (Frame::Document, "EPCISHeader") => push(&mut self.frames, Frame::Header),
            (Frame::Document, "EPCISBody") => push(&mut self.frames, Frame::Body),
            (
                Frame::Document
                | Frame::Body
                | Frame::QueryResults
                | Frame::MasterData
                | Frame::HeaderExtension,
                "extension",
            ) => {
                self.empty_extension_point(&elem, frame)?;
                Ok(None)
            }
            (Frame::QueryResults, "queryName" | "subscriptionID") => {
                self.skip_element()?;
                Ok(None)
            }
            (Frame::Header, "extension") => push(&mut self.frames, Frame::HeaderExtension),
            (Frame::Header | Frame::HeaderExtension, "EPCISMasterData") => {
                push(&mut self.frames, Frame::MasterData)
            }
            (Frame::MasterData, "VocabularyList") => push(&mut self.frames, Frame::VocabularyList),
            (Frame::Body, "EventList") if kind == Some(DocumentKind::Events) => {
                self.event_index = 0;
                push(&mut self.frames, Frame::EventList)
            }
            (Frame::Body, "VocabularyList") if kind == Some(DocumentKind::MasterData) => {
                push(&mut self.frames, Frame::VocabularyList)
            }
            (Frame::Body, "QueryResults") if kind == Some(DocumentKind::QueryResults) => {
                push(&mut self.frames, Frame::QueryResults)
            }
            (Frame::Body, other) if kind == Some(DocumentKind::QueryResults) => Err(elem.error(
                XmlErrorKind::Document,
                format!(
                    "this EPCISQueryDocument carries <{}>; only QueryResults can be imported",
                    truncate(other)
                ),
            )),
            (Frame::QueryResults, "resultsBody") => push(&mut self.frames, Frame::ResultsBody),
            (Frame::ResultsBody, "EventList") => {
                self.event_index = 0;
                push(&mut self.frames, Frame::EventList)
            }
            (Frame::ResultsBody, "VocabularyList") => push(&mut self.frames, Frame::VocabularyList),
            (Frame::VocabularyList, "Vocabulary") => self.read_vocabulary(elem).map(Some),
            // EPCIS 1.2 puts TransformationEvent (and GS1's 1.2 back-port AssociationEvent) into
            // <EventList><extension>; treat the wrapper as part of the list.
            (Frame::EventList, "extension") => push(&mut self.frames, Frame::EventList),
            (Frame::EventList, name) => match EventType::from_local(name) {
                Some(ty) => self.read_event(elem, ty).map(Some),
                None => {
                    self.event_index += 1;
                    self.skip_element()?;
                    let message = if name == "QuantityEvent" {
                        "QuantityEvent (deprecated in EPCIS 1.1, removed in 2.0) has no EPCIS 2.0 JSON representation"
                            .to_owned()
                    } else {
                        format!("unknown event type {}", elem.tag())
                    };
                    Err(elem.event_error(message))
                }
            },
            _ => Err(self.unexpected(&elem, frame)),
        }
    }

    /// The `<extension>` points of the document, header, body and query results are reserved for
    /// future EPCIS content that EPCIS 2.0 JSON cannot represent: accept them only when empty.
    fn empty_extension_point(&mut self, elem: &Elem, frame: Frame) -> Result<(), XmlError> {
        loop {
            match self.lex.next()? {
                Tok::End | Tok::Eof => return Ok(()),
                Tok::Text(text) if is_blank(&text) => {}
                Tok::Text(text) => {
                    let message = format!("unexpected text '{}'", truncate(collapse(&text)));
                    return Err(self.lex.error_here(XmlErrorKind::Document, message));
                }
                Tok::Start(child) => {
                    return Err(child.error(
                        XmlErrorKind::Document,
                        format!(
                            "{} inside {} of {} has no EPCIS 2.0 JSON representation",
                            truncate(&child.tag()),
                            elem.tag(),
                            frame_name(frame)
                        ),
                    ));
                }
            }
        }
    }

    fn unexpected(&self, elem: &Elem, frame: Frame) -> XmlError {
        elem.error(
            XmlErrorKind::Document,
            format!(
                "unexpected element {} in {}",
                truncate(&elem.tag()),
                frame_name(frame)
            ),
        )
    }

    /// Consumes the rest of the element whose start tag was just read.
    fn skip_element(&mut self) -> Result<(), XmlError> {
        let target = self.lex.depth().saturating_sub(1);
        self.skip_to_depth(target)
    }

    fn skip_to_depth(&mut self, target: usize) -> Result<(), XmlError> {
        while self.lex.depth() > target {
            if let Tok::Eof = self.lex.next()? {
                break;
            }
        }
        Ok(())
    }

    /// Runs `parse` on the item whose start tag was just read, bounding its size and skipping the
    /// rest of it when its content is invalid.
    fn with_item<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, XmlError>,
    ) -> Result<T, XmlError> {
        let outer = self.lex.depth().saturating_sub(1);
        self.lex.begin_item();
        let result = parse(self);
        self.lex.end_item();
        match result {
            Err(e) if e.kind == XmlErrorKind::Event => {
                self.skip_to_depth(outer)?;
                Err(e)
            }
            other => other,
        }
    }

    fn read_event(&mut self, elem: Elem, ty: EventType) -> Result<XmlItem, XmlError> {
        let index = self.event_index;
        self.event_index += 1;
        let line = elem.line;
        let value = self.with_item(|r| r.event(&elem, ty))?;
        Ok(XmlItem::Event { value, line, index })
    }

    fn read_vocabulary(&mut self, elem: Elem) -> Result<XmlItem, XmlError> {
        let line = elem.line;
        let value = self.with_item(|r| r.vocabulary(&elem))?;
        Ok(XmlItem::MasterData { value, line })
    }
}

fn frame_name(frame: Frame) -> &'static str {
    match frame {
        Frame::Document => "the document element",
        Frame::Header => "<EPCISHeader>",
        Frame::HeaderExtension => "<EPCISHeader><extension>",
        Frame::MasterData => "<EPCISMasterData>",
        Frame::VocabularyList => "<VocabularyList>",
        Frame::Body => "<EPCISBody>",
        Frame::QueryResults => "<QueryResults>",
        Frame::ResultsBody => "<resultsBody>",
        Frame::EventList => "<EventList>",
    }
}

// ------------------------------------------------------------------------------------------------
// Events
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventType {
    Object,
    Aggregation,
    Transaction,
    Transformation,
    Association,
}

/// Members every event type may carry (besides `type` and extensions).
const COMMON_FIELDS: [&str; 6] = [
    "eventTime",
    "recordTime",
    "eventTimeZoneOffset",
    "eventID",
    "certificationInfo",
    "errorDeclaration",
];

impl EventType {
    fn from_local(name: &str) -> Option<Self> {
        match name {
            "ObjectEvent" => Some(Self::Object),
            "AggregationEvent" => Some(Self::Aggregation),
            "TransactionEvent" => Some(Self::Transaction),
            "TransformationEvent" => Some(Self::Transformation),
            "AssociationEvent" => Some(Self::Association),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Object => "ObjectEvent",
            Self::Aggregation => "AggregationEvent",
            Self::Transaction => "TransactionEvent",
            Self::Transformation => "TransformationEvent",
            Self::Association => "AssociationEvent",
        }
    }

    /// The type-specific members of the official EPCIS 2.0 JSON Schema (`propertyNames`).
    fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Object => &[
                "action",
                "epcList",
                "quantityList",
                "bizStep",
                "disposition",
                "persistentDisposition",
                "readPoint",
                "bizLocation",
                "bizTransactionList",
                "sourceList",
                "destinationList",
                "sensorElementList",
                "ilmd",
            ],
            Self::Aggregation | Self::Association => &[
                "parentID",
                "childEPCs",
                "childQuantityList",
                "action",
                "bizStep",
                "disposition",
                "readPoint",
                "bizLocation",
                "bizTransactionList",
                "sourceList",
                "destinationList",
                "sensorElementList",
            ],
            Self::Transaction => &[
                "bizTransactionList",
                "parentID",
                "epcList",
                "quantityList",
                "action",
                "bizStep",
                "disposition",
                "readPoint",
                "bizLocation",
                "sourceList",
                "destinationList",
                "sensorElementList",
            ],
            Self::Transformation => &[
                "inputEPCList",
                "inputQuantityList",
                "outputEPCList",
                "outputQuantityList",
                "transformationID",
                "bizStep",
                "disposition",
                "persistentDisposition",
                "readPoint",
                "bizLocation",
                "bizTransactionList",
                "sourceList",
                "destinationList",
                "sensorElementList",
                "ilmd",
            ],
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Self::Object | Self::Aggregation => &["eventTime", "eventTimeZoneOffset", "action"],
            Self::Transaction => &[
                "eventTime",
                "eventTimeZoneOffset",
                "action",
                "bizTransactionList",
            ],
            Self::Transformation => &["eventTime", "eventTimeZoneOffset"],
            Self::Association => &["eventTime", "eventTimeZoneOffset", "action", "parentID"],
        }
    }
}

/// Every standard field name of any event type, to tell "misplaced" from "unknown".
const ALL_EVENT_FIELDS: [&str; 27] = [
    "eventTime",
    "recordTime",
    "eventTimeZoneOffset",
    "eventID",
    "certificationInfo",
    "errorDeclaration",
    "action",
    "epcList",
    "quantityList",
    "bizStep",
    "disposition",
    "persistentDisposition",
    "readPoint",
    "bizLocation",
    "bizTransactionList",
    "sourceList",
    "destinationList",
    "sensorElementList",
    "ilmd",
    "parentID",
    "childEPCs",
    "childQuantityList",
    "inputEPCList",
    "inputQuantityList",
    "outputEPCList",
    "outputQuantityList",
    "transformationID",
];

impl<R: BufRead> EpcisXmlReader<R> {
    fn event(&mut self, elem: &Elem, ty: EventType) -> Result<Value, XmlError> {
        let mut obj = Map::new();
        obj.insert("type".into(), Value::String(ty.name().into()));
        self.namespaced_attrs(elem, &[], &mut obj)?;
        self.event_children(elem, ty, &mut obj)?;
        for &field in ty.required() {
            if !obj.contains_key(field) {
                return Err(elem.event_error(format!("{} has no <{field}>", elem.tag())));
            }
        }
        Ok(Value::Object(obj))
    }

    /// Children of an event or of one of its (1.2) `<extension>`/`<baseExtension>` wrappers.
    fn event_children(
        &mut self,
        parent: &Elem,
        ty: EventType,
        obj: &mut Map<String, Value>,
    ) -> Result<(), XmlError> {
        loop {
            match self.lex.next()? {
                Tok::End | Tok::Eof => return Ok(()),
                Tok::Text(text) => self.blank_text(parent, &text)?,
                Tok::Start(child) if !child.is_epcis() => self.extension_member(&child, obj)?,
                Tok::Start(child)
                    if matches!(child.local.as_str(), "extension" | "baseExtension") =>
                {
                    self.no_attrs(&child)?;
                    self.event_children(&child, ty, obj)?;
                }
                Tok::Start(child) => self.event_field(&child, ty, obj)?,
            }
        }
    }

    fn event_field(
        &mut self,
        child: &Elem,
        ty: EventType,
        obj: &mut Map<String, Value>,
    ) -> Result<(), XmlError> {
        let name = child.local.as_str();
        if !COMMON_FIELDS.contains(&name) && !ty.fields().contains(&name) {
            let message = if ALL_EVENT_FIELDS.contains(&name) {
                format!(
                    "{} is not a field of {} in EPCIS 2.0",
                    child.tag(),
                    ty.name()
                )
            } else if name == "QuantityEvent" || EventType::from_local(name).is_some() {
                format!("{} nested inside {}", child.tag(), ty.name())
            } else {
                format!("unknown element {} in {}", child.tag(), ty.name())
            };
            return Err(child.event_error(message));
        }
        if name == "certificationInfo" {
            let value = Value::String(self.uri_leaf(child)?);
            insert_repeated(obj, name, value);
            return Ok(());
        }
        if obj.contains_key(name) {
            return Err(child.event_error(format!(
                "{} appears twice in {}",
                child.tag(),
                ty.name()
            )));
        }
        let value = match name {
            "eventTime" | "recordTime" => Value::String(self.date_time_leaf(child)?),
            "eventTimeZoneOffset" => {
                let text = self.leaf(child)?;
                let text = collapse(&text);
                if !is_time_zone_offset(text) {
                    return Err(child.event_error(format!(
                        "{} is not a time zone offset (±hh:mm between -14:00 and +14:00): '{}'",
                        child.tag(),
                        truncate(text)
                    )));
                }
                Value::String(text.to_owned())
            }
            "eventID" | "parentID" | "transformationID" => Value::String(self.uri_leaf(child)?),
            "action" => {
                let text = self.leaf(child)?;
                let text = collapse(&text);
                if !matches!(text, "ADD" | "OBSERVE" | "DELETE") {
                    return Err(child.event_error(format!(
                        "{} must be ADD, OBSERVE or DELETE, not '{}'",
                        child.tag(),
                        truncate(text)
                    )));
                }
                Value::String(text.to_owned())
            }
            "bizStep" => Value::String(self.cbv_leaf(child, &BIZ_STEP)?),
            "disposition" => Value::String(self.cbv_leaf(child, &DISPOSITION)?),
            "epcList" | "childEPCs" | "inputEPCList" | "outputEPCList" => self.epc_list(child)?,
            "quantityList" | "childQuantityList" | "inputQuantityList" | "outputQuantityList" => {
                self.quantity_list(child)?
            }
            "readPoint" | "bizLocation" => self.location(child)?,
            "bizTransactionList" => self.biz_transaction_list(child)?,
            "sourceList" => self.source_dest_list(child, "source")?,
            "destinationList" => self.source_dest_list(child, "destination")?,
            "persistentDisposition" => self.persistent_disposition(child)?,
            "sensorElementList" => self.sensor_element_list(child)?,
            "ilmd" => self.ilmd(child)?,
            "errorDeclaration" => self.error_declaration(child)?,
            _ => return Err(child.event_error(format!("unknown element {}", child.tag()))),
        };
        obj.insert(name.to_owned(), value);
        Ok(())
    }

    fn blank_text(&mut self, parent: &Elem, text: &str) -> Result<(), XmlError> {
        if is_blank(text) {
            return Ok(());
        }
        let message = format!(
            "unexpected text '{}' in {}",
            truncate(collapse(text)),
            parent.tag()
        );
        Err(self.lex.error_here(XmlErrorKind::Event, message))
    }

    fn push_text(&mut self, buffer: &mut String, text: &str) -> Result<(), XmlError> {
        if buffer.len() + text.len() > self.lex.limits.max_text_bytes {
            let max = self.lex.limits.max_text_bytes;
            return Err(self.lex.error_here(
                XmlErrorKind::Limit,
                format!("the text of one element is longer than {max} bytes"),
            ));
        }
        buffer.push_str(text);
        Ok(())
    }

    /// Rejects attributes other than `xmlns`/`xsi:*` on a standard element.
    fn no_attrs(&self, elem: &Elem) -> Result<(), XmlError> {
        self.allowed_attrs(elem, &[])
    }

    fn allowed_attrs(&self, elem: &Elem, allowed: &[&str]) -> Result<(), XmlError> {
        for attr in &elem.attrs {
            let ok = match attr.ns.as_deref() {
                None => allowed.contains(&attr.local.as_str()),
                Some(ns) => ns == NS_XSI,
            };
            if !ok {
                return Err(elem.event_error(format!(
                    "unexpected attribute {} on {}",
                    truncate(&attr.qname()),
                    elem.tag()
                )));
            }
        }
        Ok(())
    }

    /// Adds the namespaced attributes (except xsi) of a standard element that maps to an object as
    /// `"prefix:name"` members; unqualified attributes must be in `allowed` (handled by the caller).
    fn namespaced_attrs(
        &mut self,
        elem: &Elem,
        allowed: &[&str],
        obj: &mut Map<String, Value>,
    ) -> Result<(), XmlError> {
        for attr in &elem.attrs {
            match attr.ns.as_deref() {
                Some(NS_XSI) => {}
                Some(ns) => {
                    let key = self.qualified_key(attr.prefix.as_deref(), ns, &attr.local)?;
                    insert_repeated(obj, &key, Value::String(attr.value.clone()));
                }
                None if allowed.contains(&attr.local.as_str()) => {}
                None => {
                    return Err(elem.event_error(format!(
                        "unexpected attribute {} on {}",
                        truncate(&attr.local),
                        elem.tag()
                    )));
                }
            }
        }
        Ok(())
    }

    fn qualified_key(
        &mut self,
        prefix: Option<&str>,
        ns: &str,
        local: &str,
    ) -> Result<String, XmlError> {
        let prefix = self.lex.output_prefix(prefix, ns)?;
        Ok(format!("{prefix}:{local}"))
    }

    /// Text content of a standard simple-typed element (no child elements, no attributes).
    fn leaf(&mut self, elem: &Elem) -> Result<String, XmlError> {
        self.no_attrs(elem)?;
        self.text_content(elem)
    }

    fn text_content(&mut self, elem: &Elem) -> Result<String, XmlError> {
        let mut text = String::new();
        loop {
            match self.lex.next()? {
                Tok::Text(t) => self.push_text(&mut text, &t)?,
                Tok::End | Tok::Eof => return Ok(text),
                Tok::Start(child) => {
                    return Err(child.event_error(format!(
                        "{} must contain only text, but contains {}",
                        elem.tag(),
                        truncate(&child.tag())
                    )));
                }
            }
        }
    }

    fn uri_leaf(&mut self, elem: &Elem) -> Result<String, XmlError> {
        let text = self.leaf(elem)?;
        Ok(collapse(&text).to_owned())
    }

    fn date_time_leaf(&mut self, elem: &Elem) -> Result<String, XmlError> {
        let text = self.leaf(elem)?;
        let text = collapse(&text);
        if !is_date_time_stamp(text) {
            return Err(elem.event_error(format!(
                "{} is not an xsd:dateTime with a time zone: '{}'",
                elem.tag(),
                truncate(text)
            )));
        }
        Ok(text.to_owned())
    }

    fn cbv_leaf(&mut self, elem: &Elem, vocabulary: &CbvVocabulary) -> Result<String, XmlError> {
        let text = self.leaf(elem)?;
        normalize_cbv(collapse(&text), vocabulary)
            .map_err(|m| elem.event_error(format!("{}: {m}", elem.tag())))
    }

    /// Iterates over the child elements of a standard list/container element: `each` is called for
    /// every EPCIS child, `<extension>` wrappers are transparent, blank text is ignored, foreign
    /// children go to `foreign` (or are an error when it is `None`).
    fn children(
        &mut self,
        parent: &Elem,
        obj: Option<&mut Map<String, Value>>,
        each: &mut dyn FnMut(&mut Self, Elem) -> Result<(), XmlError>,
    ) -> Result<(), XmlError> {
        let mut obj = obj;
        loop {
            match self.lex.next()? {
                Tok::End | Tok::Eof => return Ok(()),
                Tok::Text(text) => self.blank_text(parent, &text)?,
                Tok::Start(child) if !child.is_epcis() => match obj.as_deref_mut() {
                    Some(target) => self.extension_member(&child, target)?,
                    None => {
                        return Err(child.event_error(format!(
                            "extension element {} is not allowed in {}",
                            truncate(&child.tag()),
                            parent.tag()
                        )));
                    }
                },
                Tok::Start(child) if child.local == "extension" => {
                    self.no_attrs(&child)?;
                    self.children(&child, obj.as_deref_mut(), each)?;
                }
                Tok::Start(child) => each(self, child)?,
            }
        }
    }

    fn epc_list(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        self.no_attrs(elem)?;
        let mut list = Vec::new();
        self.children(elem, None, &mut |r, child| {
            if child.local != "epc" {
                return Err(unexpected_child(&child, elem));
            }
            list.push(Value::String(r.uri_leaf(&child)?));
            Ok(())
        })?;
        Ok(Value::Array(list))
    }

    fn quantity_list(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        self.no_attrs(elem)?;
        let mut list = Vec::new();
        self.children(elem, None, &mut |r, child| {
            if child.local != "quantityElement" {
                return Err(unexpected_child(&child, elem));
            }
            list.push(r.quantity_element(&child)?);
            Ok(())
        })?;
        Ok(Value::Array(list))
    }

    fn quantity_element(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        self.no_attrs(elem)?;
        let mut epc_class = None;
        let mut quantity = None;
        let mut uom = None;
        self.children(elem, None, &mut |r, child| {
            let slot = match child.local.as_str() {
                "epcClass" => &mut epc_class,
                "quantity" => &mut quantity,
                "uom" => &mut uom,
                _ => return Err(unexpected_child(&child, elem)),
            };
            if slot.is_some() {
                return Err(child.event_error(format!(
                    "{} appears twice in {}",
                    child.tag(),
                    elem.tag()
                )));
            }
            let nil = child.is_nil();
            let text = r.leaf(&child)?;
            let text = collapse(&text);
            *slot = Some(if child.local == "quantity" {
                if nil && text.is_empty() {
                    Value::Null
                } else {
                    let number = decimal_number(text).ok_or_else(|| {
                        child.event_error(format!(
                            "{} is not an xsd:decimal: '{}'",
                            child.tag(),
                            truncate(text)
                        ))
                    })?;
                    Value::Number(number)
                }
            } else {
                Value::String(text.to_owned())
            });
            Ok(())
        })?;
        let Some(epc_class) = epc_class else {
            return Err(elem.event_error(format!("{} has no <epcClass>", elem.tag())));
        };
        let mut obj = Map::new();
        obj.insert("epcClass".into(), epc_class);
        if let Some(q) = quantity.filter(|q| !q.is_null()) {
            obj.insert("quantity".into(), q);
        }
        if let Some(u) = uom {
            obj.insert("uom".into(), u);
        }
        Ok(Value::Object(obj))
    }

    fn location(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        let mut obj = Map::new();
        let mut extensions = Map::new();
        self.namespaced_attrs(elem, &[], &mut extensions)?;
        let mut id = None;
        self.children(elem, Some(&mut extensions), &mut |r, child| {
            if child.local != "id" {
                return Err(unexpected_child(&child, elem));
            }
            if id.is_some() {
                return Err(child.event_error(format!(
                    "{} appears twice in {}",
                    child.tag(),
                    elem.tag()
                )));
            }
            id = Some(r.uri_leaf(&child)?);
            Ok(())
        })?;
        let Some(id) = id else {
            return Err(elem.event_error(format!("{} has no <id>", elem.tag())));
        };
        obj.insert("id".into(), Value::String(id));
        obj.extend(extensions);
        Ok(Value::Object(obj))
    }

    fn biz_transaction_list(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        self.no_attrs(elem)?;
        let mut list = Vec::new();
        self.children(elem, None, &mut |r, child| {
            if child.local != "bizTransaction" {
                return Err(unexpected_child(&child, elem));
            }
            r.allowed_attrs(&child, &["type"])?;
            let mut obj = Map::new();
            if let Some(ty) = child.attr("type") {
                let ty = normalize_cbv(collapse(&ty.value), &BIZ_TRANSACTION_TYPE)
                    .map_err(|m| child.event_error(format!("type of {}: {m}", child.tag())))?;
                obj.insert("type".into(), Value::String(ty));
            }
            let text = r.text_content(&child)?;
            obj.insert(
                "bizTransaction".into(),
                Value::String(collapse(&text).to_owned()),
            );
            list.push(Value::Object(obj));
            Ok(())
        })?;
        Ok(Value::Array(list))
    }

    fn source_dest_list(&mut self, elem: &Elem, item: &str) -> Result<Value, XmlError> {
        self.no_attrs(elem)?;
        let mut list = Vec::new();
        self.children(elem, None, &mut |r, child| {
            if child.local != item {
                return Err(unexpected_child(&child, elem));
            }
            r.allowed_attrs(&child, &["type"])?;
            let Some(ty) = child.attr("type") else {
                return Err(child.event_error(format!("{} has no type attribute", child.tag())));
            };
            let ty = normalize_cbv(collapse(&ty.value), &SOURCE_DEST_TYPE)
                .map_err(|m| child.event_error(format!("type of {}: {m}", child.tag())))?;
            let text = r.text_content(&child)?;
            let mut obj = Map::new();
            obj.insert("type".into(), Value::String(ty));
            obj.insert(item.to_owned(), Value::String(collapse(&text).to_owned()));
            list.push(Value::Object(obj));
            Ok(())
        })?;
        Ok(Value::Array(list))
    }

    fn persistent_disposition(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        self.no_attrs(elem)?;
        let mut obj = Map::new();
        self.children(elem, None, &mut |r, child| {
            if !matches!(child.local.as_str(), "set" | "unset") {
                return Err(unexpected_child(&child, elem));
            }
            let value = r.cbv_leaf(&child, &DISPOSITION)?;
            if let Value::Array(list) = obj
                .entry(child.local.clone())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                list.push(Value::String(value));
            }
            Ok(())
        })?;
        Ok(Value::Object(obj))
    }

    fn ilmd(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        self.no_attrs(elem)?;
        let mut obj = Map::new();
        self.children(elem, Some(&mut obj), &mut |_, child| {
            Err(unexpected_child(&child, elem))
        })?;
        Ok(Value::Object(obj))
    }

    fn error_declaration(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        let mut obj = Map::new();
        let mut extensions = Map::new();
        self.namespaced_attrs(elem, &[], &mut extensions)?;
        self.children(elem, Some(&mut extensions), &mut |r, child| {
            let name = child.local.as_str();
            if obj.contains_key(name) {
                return Err(child.event_error(format!(
                    "{} appears twice in {}",
                    child.tag(),
                    elem.tag()
                )));
            }
            let value = match name {
                "declarationTime" => Value::String(r.date_time_leaf(&child)?),
                "reason" => Value::String(r.cbv_leaf(&child, &ERROR_REASON)?),
                "correctiveEventIDs" => {
                    r.no_attrs(&child)?;
                    let mut ids = Vec::new();
                    r.children(&child, None, &mut |r, id| {
                        if id.local != "correctiveEventID" {
                            return Err(unexpected_child(&id, &child));
                        }
                        ids.push(Value::String(r.uri_leaf(&id)?));
                        Ok(())
                    })?;
                    Value::Array(ids)
                }
                _ => return Err(unexpected_child(&child, elem)),
            };
            obj.insert(name.to_owned(), value);
            Ok(())
        })?;
        if !obj.contains_key("declarationTime") {
            return Err(elem.event_error(format!("{} has no <declarationTime>", elem.tag())));
        }
        obj.extend(extensions);
        Ok(Value::Object(obj))
    }

    fn sensor_element_list(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        self.no_attrs(elem)?;
        let mut list = Vec::new();
        self.children(elem, None, &mut |r, child| {
            if child.local != "sensorElement" {
                return Err(unexpected_child(&child, elem));
            }
            list.push(r.sensor_element(&child)?);
            Ok(())
        })?;
        Ok(Value::Array(list))
    }

    fn sensor_element(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        let mut obj = Map::new();
        let mut extensions = Map::new();
        self.namespaced_attrs(elem, &[], &mut extensions)?;
        let mut metadata = None;
        let mut reports = Vec::new();
        self.children(elem, Some(&mut extensions), &mut |r, child| {
            match child.local.as_str() {
                "sensorMetadata" => {
                    if metadata.is_some() {
                        return Err(child.event_error(format!(
                            "{} appears twice in {}",
                            child.tag(),
                            elem.tag()
                        )));
                    }
                    metadata = Some(r.sensor_attributes(&child, SensorPart::Metadata)?);
                }
                "sensorReport" => reports.push(r.sensor_attributes(&child, SensorPart::Report)?),
                _ => return Err(unexpected_child(&child, elem)),
            }
            Ok(())
        })?;
        if reports.is_empty() {
            return Err(elem.event_error(format!("{} has no <sensorReport>", elem.tag())));
        }
        if let Some(m) = metadata {
            obj.insert("sensorMetadata".into(), m);
        }
        obj.insert("sensorReport".into(), Value::Array(reports));
        obj.extend(extensions);
        Ok(Value::Object(obj))
    }

    fn sensor_attributes(&mut self, elem: &Elem, part: SensorPart) -> Result<Value, XmlError> {
        let mut obj = Map::new();
        for attr in &elem.attrs {
            match attr.ns.as_deref() {
                Some(NS_XSI) => continue,
                Some(ns) => {
                    let key = self.qualified_key(attr.prefix.as_deref(), ns, &attr.local)?;
                    insert_repeated(&mut obj, &key, Value::String(attr.value.clone()));
                    continue;
                }
                None => {}
            }
            let name = attr.local.as_str();
            let value = collapse(&attr.value);
            let kind = part.attribute_kind(name).ok_or_else(|| {
                elem.event_error(format!(
                    "unknown attribute {} on {}",
                    truncate(name),
                    elem.tag()
                ))
            })?;
            let bad = |what: &str| {
                elem.event_error(format!(
                    "attribute {name} of {} is not {what}: '{}'",
                    elem.tag(),
                    truncate(value)
                ))
            };
            let json = match kind {
                SensorAttr::Text => Value::String(value.to_owned()),
                SensorAttr::Time => {
                    if !is_date_time_stamp(value) {
                        return Err(bad("an xsd:dateTime with a time zone"));
                    }
                    Value::String(value.to_owned())
                }
                SensorAttr::Double => {
                    Value::Number(double_number(value).ok_or_else(|| bad("a finite xsd:double"))?)
                }
                SensorAttr::Boolean => Value::Bool(match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad("an xsd:boolean")),
                }),
                SensorAttr::Vocabulary(vocabulary) => {
                    Value::String(normalize_cbv(value, vocabulary).map_err(|m| {
                        elem.event_error(format!("attribute {name} of {}: {m}", elem.tag()))
                    })?)
                }
            };
            obj.insert(name.to_owned(), json);
        }
        loop {
            match self.lex.next()? {
                Tok::End | Tok::Eof => break,
                Tok::Text(text) => self.blank_text(elem, &text)?,
                Tok::Start(child) => return Err(unexpected_child(&child, elem)),
            }
        }
        if part == SensorPart::Report && !obj.contains_key("type") {
            return Err(elem.event_error(format!(
                "{} has no type attribute (the EPCIS 2.0 JSON schema requires one)",
                elem.tag()
            )));
        }
        Ok(Value::Object(obj))
    }

    // --------------------------------------------------------------------------------------------
    // Extensions
    // --------------------------------------------------------------------------------------------

    /// Adds a foreign element as `"prefix:localName"` member of `obj`.
    fn extension_member(
        &mut self,
        elem: &Elem,
        obj: &mut Map<String, Value>,
    ) -> Result<(), XmlError> {
        let key = self.element_key(elem)?;
        let value = self.extension_value(elem)?;
        insert_repeated(obj, &key, value);
        Ok(())
    }

    fn element_key(&mut self, elem: &Elem) -> Result<String, XmlError> {
        match elem.ns.as_deref() {
            Some(ns) if !elem.is_epcis() => {
                self.qualified_key(elem.prefix.as_deref(), ns, &elem.local)
            }
            _ => Ok(elem.local.clone()),
        }
    }

    /// The JSON value of an extension element (see the module documentation).
    fn extension_value(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        let mut obj = Map::new();
        for attr in &elem.attrs {
            let key = match attr.ns.as_deref() {
                Some(NS_XSI) => continue,
                Some(ns) => self.qualified_key(attr.prefix.as_deref(), ns, &attr.local)?,
                None => attr.local.clone(),
            };
            insert_repeated(&mut obj, &key, Value::String(attr.value.clone()));
        }
        let mut text = String::new();
        let mut has_children = false;
        loop {
            match self.lex.next()? {
                Tok::End | Tok::Eof => break,
                Tok::Text(t) => self.push_text(&mut text, &t)?,
                Tok::Start(child) => {
                    has_children = true;
                    let key = self.element_key(&child)?;
                    let value = self.extension_value(&child)?;
                    insert_repeated(&mut obj, &key, value);
                }
            }
        }
        if has_children {
            if !is_blank(&text) {
                return Err(elem.event_error(format!(
                    "extension element {} mixes text '{}' with child elements",
                    elem.tag(),
                    truncate(collapse(&text))
                )));
            }
            return Ok(Value::Object(obj));
        }
        let text = if is_blank(&text) { String::new() } else { text };
        if obj.is_empty() {
            if elem.is_nil() && text.is_empty() {
                return Ok(Value::Null);
            }
            return Ok(Value::String(text));
        }
        if !text.is_empty() {
            insert_repeated(&mut obj, "#text", Value::String(text));
        }
        Ok(Value::Object(obj))
    }

    // --------------------------------------------------------------------------------------------
    // Master data
    // --------------------------------------------------------------------------------------------

    fn vocabulary(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        let Some(ty) = elem.attr("type") else {
            return Err(elem.event_error(format!("{} has no type attribute", elem.tag())));
        };
        let mut obj = Map::new();
        obj.insert("type".into(), Value::String(collapse(&ty.value).to_owned()));
        let mut extensions = Map::new();
        self.namespaced_attrs(elem, &["type"], &mut extensions)?;
        let mut elements = None;
        self.children(elem, Some(&mut extensions), &mut |r, child| {
            if child.local != "VocabularyElementList" || elements.is_some() {
                return Err(unexpected_child(&child, elem));
            }
            r.no_attrs(&child)?;
            let mut list = Vec::new();
            r.children(&child, None, &mut |r, element| {
                if element.local != "VocabularyElement" {
                    return Err(unexpected_child(&element, &child));
                }
                list.push(r.vocabulary_element(&element)?);
                Ok(())
            })?;
            elements = Some(list);
            Ok(())
        })?;
        obj.insert(
            "vocabularyElementList".into(),
            Value::Array(elements.unwrap_or_default()),
        );
        obj.extend(extensions);
        Ok(Value::Object(obj))
    }

    fn vocabulary_element(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        let Some(id) = elem.attr("id") else {
            return Err(elem.event_error(format!("{} has no id attribute", elem.tag())));
        };
        let mut obj = Map::new();
        obj.insert("id".into(), Value::String(collapse(&id.value).to_owned()));
        let mut extensions = Map::new();
        self.namespaced_attrs(elem, &["id"], &mut extensions)?;
        let mut attributes = Vec::new();
        let mut children: Option<Vec<Value>> = None;
        self.children(elem, Some(&mut extensions), &mut |r, child| {
            match child.local.as_str() {
                "attribute" => attributes.push(r.master_data_attribute(&child)?),
                "children" if children.is_none() => {
                    r.no_attrs(&child)?;
                    let mut ids = Vec::new();
                    r.children(&child, None, &mut |r, id| {
                        if id.local != "id" {
                            return Err(unexpected_child(&id, &child));
                        }
                        ids.push(Value::String(r.uri_leaf(&id)?));
                        Ok(())
                    })?;
                    children = Some(ids);
                }
                _ => return Err(unexpected_child(&child, elem)),
            }
            Ok(())
        })?;
        if !attributes.is_empty() {
            obj.insert("attributes".into(), Value::Array(attributes));
        }
        if let Some(ids) = children.filter(|c| !c.is_empty()) {
            obj.insert("children".into(), Value::Array(ids));
        }
        obj.extend(extensions);
        Ok(Value::Object(obj))
    }

    fn master_data_attribute(&mut self, elem: &Elem) -> Result<Value, XmlError> {
        self.allowed_attrs(elem, &["id"])?;
        let Some(id) = elem.attr("id") else {
            return Err(elem.event_error(format!("{} has no id attribute", elem.tag())));
        };
        let mut obj = Map::new();
        obj.insert("id".into(), Value::String(collapse(&id.value).to_owned()));
        let mut content = Map::new();
        let mut text = String::new();
        loop {
            match self.lex.next()? {
                Tok::End | Tok::Eof => break,
                Tok::Text(t) => self.push_text(&mut text, &t)?,
                Tok::Start(child) => {
                    let key = self.element_key(&child)?;
                    let value = self.extension_value(&child)?;
                    insert_repeated(&mut content, &key, value);
                }
            }
        }
        if !content.is_empty() {
            if !is_blank(&text) {
                return Err(elem.event_error(format!(
                    "{} mixes text '{}' with child elements",
                    elem.tag(),
                    truncate(collapse(&text))
                )));
            }
            obj.insert("attribute".into(), Value::Object(content));
        } else if !is_blank(&text) {
            obj.insert(
                "attribute".into(),
                Value::String(collapse(&text).to_owned()),
            );
        }
        Ok(Value::Object(obj))
    }
}

fn unexpected_child(child: &Elem, parent: &Elem) -> XmlError {
    child.event_error(format!(
        "unexpected element {} in {}",
        truncate(&child.tag()),
        parent.tag()
    ))
}

/// Inserts `value` under `key`; a repeated key turns the member into an array (document order).
fn insert_repeated(obj: &mut Map<String, Value>, key: &str, value: Value) {
    match obj.get_mut(key) {
        None => {
            obj.insert(key.to_owned(), value);
        }
        Some(Value::Array(list)) => list.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Sensor attributes
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SensorPart {
    Metadata,
    Report,
}

#[derive(Clone, Copy)]
enum SensorAttr {
    Text,
    Time,
    Double,
    Boolean,
    Vocabulary(&'static CbvVocabulary),
}

impl SensorPart {
    fn attribute_kind(self, name: &str) -> Option<SensorAttr> {
        match (self, name) {
            (_, "time") | (Self::Metadata, "startTime" | "endTime") => Some(SensorAttr::Time),
            (
                _,
                "deviceID" | "deviceMetadata" | "rawData" | "dataProcessingMethod" | "bizRules",
            ) => Some(SensorAttr::Text),
            (Self::Report, "type") => Some(SensorAttr::Vocabulary(&MEASUREMENT_TYPE)),
            (Self::Report, "exception") => Some(SensorAttr::Vocabulary(&SENSOR_ALERT_TYPE)),
            (Self::Report, "component") => Some(SensorAttr::Vocabulary(&COMPONENT)),
            (
                Self::Report,
                "value" | "minValue" | "maxValue" | "meanValue" | "sDev" | "percRank" | "percValue",
            ) => Some(SensorAttr::Double),
            (Self::Report, "booleanValue") => Some(SensorAttr::Boolean),
            (
                Self::Report,
                "stringValue"
                | "hexBinaryValue"
                | "uriValue"
                | "uom"
                | "microorganism"
                | "chemicalSubstance"
                | "coordinateReferenceSystem",
            ) => Some(SensorAttr::Text),
            _ => None,
        }
    }
}

// ------------------------------------------------------------------------------------------------
// CBV and GS1 vocabulary normalisation
// ------------------------------------------------------------------------------------------------

/// A standard vocabulary whose values EPCIS 2.0 JSON writes as bare words.
struct CbvVocabulary {
    what: &'static str,
    /// `urn:epcglobal:cbv:…:` prefix of the EPCIS 1.x URN form, if any.
    urn: Option<&'static str>,
    /// Lower-cased `Word-` prefix of the CBV 2.0 Web URI form (`BizStep-`), if any.
    web: Option<&'static str>,
    /// Whether the `gs1:` / `https://gs1.org/voc/` forms apply (sensor vocabularies).
    gs1_voc: bool,
    /// The bare words of the official JSON Schema's enum.
    words: &'static [&'static str],
}

static BIZ_STEP: CbvVocabulary = CbvVocabulary {
    what: "CBV business step",
    urn: Some("urn:epcglobal:cbv:bizstep:"),
    web: Some("bizstep-"),
    gs1_voc: false,
    words: &[
        "accepting",
        "arriving",
        "assembling",
        "collecting",
        "commissioning",
        "consigning",
        "creating_class_instance",
        "cycle_counting",
        "decommissioning",
        "departing",
        "destroying",
        "disassembling",
        "dispensing",
        "encoding",
        "entering_exiting",
        "holding",
        "inspecting",
        "installing",
        "killing",
        "loading",
        "other",
        "packing",
        "picking",
        "receiving",
        "removing",
        "repackaging",
        "repairing",
        "replacing",
        "reserving",
        "retail_selling",
        "shipping",
        "staging_outbound",
        "stock_taking",
        "stocking",
        "storing",
        "transporting",
        "unloading",
        "unpacking",
        "void_shipping",
        "sensor_reporting",
        "sampling",
    ],
};

static DISPOSITION: CbvVocabulary = CbvVocabulary {
    what: "CBV disposition",
    urn: Some("urn:epcglobal:cbv:disp:"),
    web: Some("disp-"),
    gs1_voc: false,
    words: &[
        "active",
        "container_closed",
        "damaged",
        "destroyed",
        "dispensed",
        "disposed",
        "encoded",
        "expired",
        "in_progress",
        "in_transit",
        "inactive",
        "no_pedigree_match",
        "non_sellable_other",
        "partially_dispensed",
        "recalled",
        "reserved",
        "retail_sold",
        "returned",
        "sellable_accessible",
        "sellable_not_accessible",
        "stolen",
        "unknown",
        "available",
        "completeness_verified",
        "completeness_inferred",
        "conformant",
        "container_open",
        "mismatch_instance",
        "mismatch_class",
        "mismatch_quantity",
        "needs_replacement",
        "non_conformant",
        "unavailable",
    ],
};

static BIZ_TRANSACTION_TYPE: CbvVocabulary = CbvVocabulary {
    what: "CBV business transaction type",
    urn: Some("urn:epcglobal:cbv:btt:"),
    web: Some("btt-"),
    gs1_voc: false,
    words: &[
        "bol",
        "cert",
        "desadv",
        "inv",
        "pedigree",
        "po",
        "poc",
        "prodorder",
        "recadv",
        "rma",
        "testprd",
        "testres",
        "upevt",
    ],
};

static SOURCE_DEST_TYPE: CbvVocabulary = CbvVocabulary {
    what: "CBV source/destination type",
    urn: Some("urn:epcglobal:cbv:sdt:"),
    web: Some("sdt-"),
    gs1_voc: false,
    words: &["owning_party", "possessing_party", "location"],
};

static ERROR_REASON: CbvVocabulary = CbvVocabulary {
    what: "CBV error reason",
    urn: Some("urn:epcglobal:cbv:er:"),
    web: Some("er-"),
    gs1_voc: false,
    words: &["did_not_occur", "incorrect_data"],
};

static COMPONENT: CbvVocabulary = CbvVocabulary {
    what: "CBV component",
    urn: Some("urn:epcglobal:cbv:comp:"),
    web: Some("comp-"),
    gs1_voc: false,
    words: &[
        "x",
        "y",
        "z",
        "axial_distance",
        "azimuth",
        "height",
        "spherical_radius",
        "polar_angle",
        "elevation_angle",
        "easting",
        "northing",
        "latitude",
        "longitude",
        "altitude",
    ],
};

static SENSOR_ALERT_TYPE: CbvVocabulary = CbvVocabulary {
    what: "GS1 sensor alert type",
    urn: None,
    web: None,
    gs1_voc: true,
    words: &["ALARM_CONDITION", "ERROR_CONDITION"],
};

static MEASUREMENT_TYPE: CbvVocabulary = CbvVocabulary {
    what: "GS1 measurement type",
    urn: None,
    web: None,
    gs1_voc: true,
    words: &[
        "AbsoluteHumidity",
        "AbsorbedDose",
        "AbsorbedDoseRate",
        "Acceleration",
        "Radioactivity",
        "Altitude",
        "AmountOfSubstance",
        "AmountOfSubstancePerUnitVolume",
        "Angle",
        "AngularAcceleration",
        "AngularMomentum",
        "AngularVelocity",
        "Area",
        "Capacitance",
        "Conductance",
        "Conductivity",
        "Count",
        "Density",
        "Dimensionless",
        "DoseEquivalent",
        "DoseEquivalentRate",
        "DynamicViscosity",
        "ElectricCharge",
        "ElectricCurrent",
        "ElectricCurrentDensity",
        "ElectricFieldStrength",
        "Energy",
        "Exposure",
        "Force",
        "Frequency",
        "Illuminance",
        "Inductance",
        "Irradiance",
        "KinematicViscosity",
        "Length",
        "LinearMomentum",
        "Luminance",
        "LuminousFlux",
        "LuminousIntensity",
        "MagneticFlux",
        "MagneticFluxDensity",
        "MagneticVectorPotential",
        "Mass",
        "MassConcentration",
        "MassFlowRate",
        "MassPerAreaTime",
        "MemoryCapacity",
        "MolalityOfSolute",
        "MolarEnergy",
        "MolarMass",
        "MolarVolume",
        "Power",
        "Pressure",
        "RadiantFlux",
        "RadiantIntensity",
        "RelativeHumidity",
        "Resistance",
        "Resistivity",
        "SolidAngle",
        "SpecificVolume",
        "Speed",
        "SurfaceDensity",
        "SurfaceTension",
        "Temperature",
        "Time",
        "Torque",
        "Voltage",
        "Volume",
        "VolumeFlowRate",
        "VolumeFraction",
        "VolumetricFlux",
        "Wavenumber",
    ],
};

/// Bases of the CBV 2.0 Web URI form; the `ns.gs1.org` ones are reserved by the JSON Schema.
const CBV_WEB_BASES: [(&str, bool); 5] = [
    ("https://ref.gs1.org/cbv/", false),
    ("http://ref.gs1.org/cbv/", false),
    ("cbv:", false),
    ("https://ns.gs1.org/cbv/", true),
    ("http://ns.gs1.org/cbv/", true),
];

/// Bases of the GS1 Web vocabulary; the `gs1.org/voc` URIs are reserved by the JSON Schema.
const GS1_VOC_BASES: [(&str, bool); 5] = [
    ("gs1:", false),
    ("https://gs1.org/voc/", true),
    ("http://gs1.org/voc/", true),
    ("https://www.gs1.org/voc/", true),
    ("http://www.gs1.org/voc/", true),
];

/// The EPCIS 2.0 JSON form of a standard vocabulary value (see the module documentation).
fn normalize_cbv(value: &str, vocabulary: &CbvVocabulary) -> Result<String, String> {
    let known = |word: &str| vocabulary.words.contains(&word);
    let reject = || format!("'{}' is not a {} value", truncate(value), vocabulary.what);
    if known(value) {
        return Ok(value.to_owned());
    }
    if let Some(urn) = vocabulary.urn
        && let Some(word) = value.strip_prefix(urn)
    {
        return if known(word) {
            Ok(word.to_owned())
        } else {
            Err(reject())
        };
    }
    if let Some(web) = vocabulary.web {
        for (base, reserved) in CBV_WEB_BASES {
            let Some(rest) = value.strip_prefix(base) else {
                continue;
            };
            let word = rest
                .get(..web.len())
                .filter(|p| p.eq_ignore_ascii_case(web))
                .and_then(|_| rest.get(web.len()..));
            match word {
                Some(word) if known(word) => return Ok(word.to_owned()),
                _ if reserved => return Err(reject()),
                _ => {}
            }
        }
    }
    if vocabulary.gs1_voc {
        for (base, reserved) in GS1_VOC_BASES {
            if let Some(word) = value.strip_prefix(base) {
                if known(word) {
                    return Ok(word.to_owned());
                }
                if reserved {
                    return Err(reject());
                }
            }
        }
    }
    if value.starts_with("urn:epcglobal:cbv:") {
        return Err(format!(
            "'{}' is a CBV URI that EPCIS 2.0 JSON cannot carry as a {}",
            truncate(value),
            vocabulary.what
        ));
    }
    Ok(value.to_owned())
}

// ------------------------------------------------------------------------------------------------
// Lexical checks
// ------------------------------------------------------------------------------------------------

/// `xsd:dateTimeStamp` restricted to what RFC 3339 (JSON Schema `date-time`) also accepts:
/// `YYYY-MM-DDThh:mm:ss(.s+)?(Z|±hh:mm)`.
fn is_date_time_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            part.iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')),
        )
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return false;
    };
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days || hour > 23 || minute > 59 || second > 59 {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => s.get(i..).is_some_and(is_time_zone_offset),
        _ => false,
    }
}

/// `±hh:mm` between −14:00 and +14:00 (the pattern of the EPCIS JSON Schema).
fn is_time_zone_offset(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 6 || !matches!(b[0], b'+' | b'-') || b[3] != b':' {
        return false;
    }
    if ![1, 2, 4, 5].iter().all(|&i| b[i].is_ascii_digit()) {
        return false;
    }
    let hours = u32::from(b[1] - b'0') * 10 + u32::from(b[2] - b'0');
    let minutes = u32::from(b[4] - b'0') * 10 + u32::from(b[5] - b'0');
    minutes <= 59 && (hours <= 13 || (hours == 14 && minutes == 0))
}

/// `xsd:decimal` lexical form: `[+-]?(\d+(\.\d*)?|\.\d+)`.
fn is_decimal(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let all_digits = |p: &str| p.bytes().all(|c| c.is_ascii_digit());
    all_digits(int)
        && frac.is_none_or(all_digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()))
}

fn decimal_number(s: &str) -> Option<Number> {
    if !is_decimal(s) {
        return None;
    }
    json_number(s)
}

/// `xsd:double` lexical form, finite values only (JSON has no INF/NaN).
fn double_number(s: &str) -> Option<Number> {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit())
    });
    if !is_decimal(mantissa) || !exponent_ok {
        return None;
    }
    json_number(s)
}

/// An integral value within ±2^53 becomes a JSON integer, anything else an `f64`.
fn json_number(s: &str) -> Option<Number> {
    const MAX_EXACT: f64 = 9_007_199_254_740_992.0;
    let unsigned = s.strip_prefix('+').unwrap_or(s);
    if !unsigned.contains(['.', 'e', 'E'])
        && let Ok(i) = unsigned.parse::<i64>()
    {
        return Some(Number::from(i));
    }
    let f: f64 = unsigned.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    if f.fract() == 0.0 && f.abs() <= MAX_EXACT {
        // Exact: integral and within the range where f64 represents every integer.
        return Some(Number::from(f as i64));
    }
    Number::from_f64(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    // --------------------------------------------------------------------------------------------
    // Helpers
    // --------------------------------------------------------------------------------------------

    /// `…/shared/fixtures/gs1-epcis`, found by walking up from the crate directory.
    fn fixtures() -> PathBuf {
        let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        loop {
            let candidate = dir.join("shared/fixtures/gs1-epcis");
            if candidate.is_dir() {
                return candidate;
            }
            assert!(
                dir.pop(),
                "no shared/fixtures/gs1-epcis above {}",
                env!("CARGO_MANIFEST_DIR")
            );
        }
    }

    #[derive(Debug, Default)]
    struct Outcome {
        events: Vec<(Value, u64, usize)>,
        vocabularies: Vec<(Value, u64)>,
        errors: Vec<XmlError>,
        info: XmlDocumentInfo,
    }

    fn read_with<R: BufRead>(mut reader: EpcisXmlReader<R>) -> Outcome {
        let mut outcome = Outcome::default();
        // Every call consumes input, so this bound is never reached by a terminating reader.
        for _ in 0..1_000_000 {
            match reader.next_item() {
                Ok(Some(XmlItem::Event { value, line, index })) => {
                    outcome.events.push((value, line, index))
                }
                Ok(Some(XmlItem::MasterData { value, line })) => {
                    outcome.vocabularies.push((value, line))
                }
                Ok(None) => break,
                Err(e) => {
                    let fatal = !e.is_recoverable();
                    outcome.errors.push(e);
                    if fatal {
                        // A fatal error sticks.
                        let again = reader.next_item();
                        assert_eq!(again.err(), outcome.errors.last().cloned());
                        break;
                    }
                }
            }
        }
        outcome.info = reader.document().clone();
        outcome
    }

    fn read_bytes(bytes: &[u8]) -> Outcome {
        read_with(EpcisXmlReader::new(bytes))
    }

    fn read_str(xml: &str) -> Outcome {
        read_bytes(xml.as_bytes())
    }

    fn read_fixture(relative: &str) -> Outcome {
        let path = fixtures().join("xml").join(relative);
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        read_with(EpcisXmlReader::new(std::io::BufReader::new(file)))
    }

    fn json_fixture(relative: &str) -> Value {
        let path = fixtures().join("json").join(relative);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// A minimal 2.0 document around converted events (with a one-line EPCIS header).
    fn doc(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?>\n<epcis:EPCISDocument xmlns:epcis=\"urn:epcglobal:epcis:xsd:2\" \
             xmlns:ex=\"http://ex.example/ns/\" schemaVersion=\"2.0\" creationDate=\"2024-01-01T00:00:00Z\">\n\
             <EPCISBody><EventList>\n{body}\n</EventList></EPCISBody></epcis:EPCISDocument>\n"
        )
    }

    /// Minimal ObjectEvent with `inner` appended to its required fields.
    fn object_event(inner: &str) -> String {
        format!(
            "<ObjectEvent><eventTime>2024-01-01T10:00:00Z</eventTime>\
             <eventTimeZoneOffset>+00:00</eventTimeZoneOffset><epcList/><action>OBSERVE</action>{inner}</ObjectEvent>"
        )
    }

    fn only_event(outcome: &Outcome) -> &Value {
        assert!(
            outcome.errors.is_empty(),
            "unexpected errors: {:?}",
            outcome.errors
        );
        assert_eq!(outcome.events.len(), 1, "{outcome:?}");
        &outcome.events[0].0
    }

    fn single_error(outcome: &Outcome) -> &XmlError {
        assert_eq!(outcome.errors.len(), 1, "{outcome:?}");
        &outcome.errors[0]
    }

    // --------------------------------------------------------------------------------------------
    // Every GS1 fixture: read to the end, expected outcome per file
    // --------------------------------------------------------------------------------------------

    /// (file under xml/, events, vocabularies, errors as (line, message fragment)).
    /// One row of [`FIXTURES`].
    type FixtureRow = (&'static str, usize, usize, &'static [(u64, &'static str)]);

    const FIXTURES: &[FixtureRow] = &[
        ("AssociationEvent/AssociationEventExamples.xml", 8, 0, &[]),
        (
            "Example-PersistentDisposition.xml",
            0,
            0,
            // GS1's example puts persistentDisposition on AggregationEvents, which neither the
            // 2.0 XSD nor the official JSON Schema allow (its JSON twin uses ObjectEvents).
            &[
                (
                    46,
                    "<persistentDisposition> is not a field of AggregationEvent",
                ),
                (
                    91,
                    "<persistentDisposition> is not a field of AggregationEvent",
                ),
            ],
        ),
        ("Example-TransactionEvent-2020_07_03y.xml", 2, 0, &[]),
        ("Example_9.6.1-ObjectEvent-2020_06_18a.xml", 2, 0, &[]),
        ("Mimasu/Example-associatonEvent-sensor.xml", 8, 0, &[]),
        ("Mimasu/Example-masterData.xml", 0, 2, &[]),
        ("Mimasu/Example1.xml", 2, 0, &[]),
        ("Mimasu/Example2.xml", 1, 0, &[]),
        ("Mimasu/Example3.xml", 1, 0, &[]),
        ("Mimasu/Example4.xml", 1, 0, &[]),
        (
            "WithErrorDeclaration/ErrorDeclarationAndCorrectiveEvent.xml",
            2,
            0,
            &[],
        ),
        (
            "WithEventHashID/event_with_identical_hash_id_1.xml",
            1,
            0,
            &[],
        ),
        (
            "WithEventHashID/event_with_identical_hash_id_2.xml",
            1,
            0,
            &[],
        ),
        (
            "WithEventHashID/event_with_identical_hash_id_3.xml",
            1,
            0,
            &[],
        ),
        (
            "WithEventHashID/event_with_identical_hash_id_4.xml",
            1,
            0,
            &[],
        ),
        (
            "WithEventHashID/event_with_identical_hash_id_5.xml",
            1,
            0,
            &[],
        ),
        (
            "WithEventHashID/event_with_identical_hash_id_6.xml",
            1,
            0,
            &[],
        ),
        ("WithExtension/AggregationEvent.xml", 1, 0, &[]),
        ("WithExtension/AssociationEvent.xml", 1, 0, &[]),
        ("WithExtension/ObjectEvent.xml", 2, 0, &[]),
        ("WithExtension/TransactionEvent.xml", 1, 0, &[]),
        ("WithExtension/TransformationEvent.xml", 1, 0, &[]),
        (
            "WithFullCombinationOfFields/aggregation_event_all_possible_fields.xml",
            1,
            0,
            &[],
        ),
        (
            "WithFullCombinationOfFields/association_event_all_possible_fields.xml",
            1,
            0,
            &[],
        ),
        (
            "WithFullCombinationOfFields/masterdata_all_possible_fields.xml",
            0,
            2,
            &[],
        ),
        (
            "WithFullCombinationOfFields/object_event_all_possible_fields.xml",
            1,
            0,
            &[],
        ),
        (
            "WithFullCombinationOfFields/transaction_event_all_possible_fields.xml",
            1,
            0,
            &[],
        ),
        (
            "WithFullCombinationOfFields/transformation_event_all_possible_fields.xml",
            1,
            0,
            &[],
        ),
        (
            "WithSensorData/SensorDataExamples.xml",
            13,
            0,
            // Case 9 reports exceptions without a measurement type; the JSON Schema requires
            // sensorReport.type (GS1's JSON twin invents "Temperature"/"AbsoluteHumidity").
            &[(241, "<sensorReport> has no type attribute")],
        ),
    ];

    fn xml_fixture_files() -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .unwrap_or_default();
            entries.sort();
            for path in entries {
                if path.is_dir() {
                    walk(&path, base, out);
                } else if path.extension().is_some_and(|e| e == "xml") {
                    let relative = path.strip_prefix(base).unwrap_or(&path);
                    out.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let base = fixtures().join("xml");
        let mut out = Vec::new();
        walk(&base, &base, &mut out);
        out
    }

    #[test]
    fn every_gs1_xml_fixture_has_its_expected_outcome() {
        let files = xml_fixture_files();
        let listed: Vec<String> = FIXTURES.iter().map(|f| f.0.to_owned()).collect();
        assert_eq!(
            files, listed,
            "the fixture table must list every XML file under xml/"
        );
        for &(file, events, vocabularies, errors) in FIXTURES {
            let outcome = read_fixture(file);
            assert_eq!(
                outcome.events.len(),
                events,
                "{file}: events; errors {:?}",
                outcome.errors
            );
            assert_eq!(
                outcome.vocabularies.len(),
                vocabularies,
                "{file}: vocabularies"
            );
            assert_eq!(
                outcome.errors.len(),
                errors.len(),
                "{file}: errors {:?}",
                outcome.errors
            );
            for (error, &(line, fragment)) in outcome.errors.iter().zip(errors) {
                assert_eq!(error.line, line, "{file}: {error}");
                assert!(error.message.contains(fragment), "{file}: {error}");
                assert!(error.is_recoverable(), "{file}: {error}");
            }
            let info = &outcome.info;
            assert_eq!(info.schema_version, "2.0", "{file}");
            assert!(!info.creation_date.is_empty(), "{file}");
            // Events are numbered by their position in the EventList and come in order.
            for pair in outcome.events.windows(2) {
                assert!(pair[0].2 < pair[1].2 && pair[0].1 < pair[1].1, "{file}");
            }
        }
    }

    #[test]
    fn document_facts_and_namespaces_are_exposed() {
        let outcome = read_fixture("Example-TransactionEvent-2020_07_03y.xml");
        let info = &outcome.info;
        assert_eq!(info.kind, Some(DocumentKind::Events));
        assert_eq!(info.namespace, NS_EPCIS_2);
        assert_eq!(info.schema_version, "2.0");
        assert_eq!(info.creation_date, "2020-07-03T09:00:00.0Z");
        assert_eq!(
            info.namespaces.get("rail").map(String::as_str),
            Some("urn:gs1:epcisapp:rail:")
        );
        assert_eq!(
            info.namespaces.get("epcis").map(String::as_str),
            Some(NS_EPCIS_2)
        );
        assert_eq!(
            info.json_ld_context(),
            serde_json::json!([
                EPCIS_CONTEXT_URL,
                {"rail": {"@id": "urn:gs1:epcisapp:rail:", "@prefix": true}}
            ])
        );
        // The UTF-8 BOM does not shift columns, lines count from 1.
        assert_eq!(outcome.events[0].1, 11);

        let md = read_fixture("Mimasu/Example-masterData.xml");
        assert_eq!(md.info.kind, Some(DocumentKind::MasterData));
        let reader = EpcisXmlReader::new(&b""[..]);
        assert_eq!(reader.document(), &XmlDocumentInfo::default());
    }

    #[test]
    fn extension_members_use_the_document_prefixes() {
        let outcome = read_fixture("Example-TransactionEvent-2020_07_03y.xml");
        let event = &outcome.events[1].0;
        assert_eq!(event["rail:trainAxleCount"], "12");
        assert_eq!(event["rail:vehicle"].as_array().map(Vec::len), Some(3));
        assert_eq!(event["rail:vehicle"][1]["rail:vehicleMasterGIAI"], "");
        assert_eq!(
            event["rail:vehicle"][2]["rail:vehicleUniquelyIdentified"],
            "true"
        );
        // URI values are whitespace-collapsed (the XML has a line break before the URI).
        assert_eq!(
            event["bizTransactionList"][0]["bizTransaction"],
            "http://transaction.examplerail.com/passage/xyz12345"
        );
        assert_eq!(
            event["bizTransactionList"][0]["type"],
            "urn:gs1:epcisapp:rail:btt:passage"
        );
        assert_eq!(event["bizStep"], "transporting");

        let outcome = read_fixture("WithExtension/TransformationEvent.xml");
        let event = &outcome.events[0].0;
        assert_eq!(
            event["example2:furtherData"],
            serde_json::json!({"example2:assemblyLine": "2", "example2:workingShift": "1"})
        );
        assert_eq!(
            event["errorDeclaration"]["example:field"],
            serde_json::json!({"example:furtherData": "abcd1234"})
        );
        assert_eq!(
            event["example:extension"],
            serde_json::json!({"moreExtensions": {"futureExtension": {"tag1": "1", "tag2": "2", "tag3": "3"}}})
        );
        assert_eq!(event["readPoint"]["example:gs1ES"], "(414)4023333000000");
        assert_eq!(event["ilmd"]["cbvmda:lotNumber"], "LOTABC");
        // cbvmda is defined by the EPCIS context (as urn:epcglobal:cbv:mda#) and is not redefined.
        let context = outcome.info.json_ld_context();
        assert!(
            context[1].get("cbvmda").is_none() && context[1].get("example3").is_some(),
            "{context}"
        );

        // Repeated elements become arrays in document order, nested objects nest.
        let outcome = read_fixture(
            "WithFullCombinationOfFields/transformation_event_all_possible_fields.xml",
        );
        let ilmd = &outcome.events[0].0["ilmd"];
        assert_eq!(
            ilmd["cbvmda:netWeight"],
            serde_json::json!({"measurementUnitCode": "KGM", "#text": "3.5"})
        );
        assert_eq!(
            ilmd["ext1:array"],
            serde_json::json!([
                "12", "22", "2013-06-08T14:58:56.591Z", "true", "stringInArray",
                {"ext1:object": {
                    "ext2:int": "13",
                    "ext2:string": "stringInObjectInArray",
                    "ext2:array": ["14", "23.0", "stringInArrayInObjectInArray"],
                    "ext2:object": {"ext3:string": "stringInObjectInObjectInArray"}
                }}
            ])
        );
    }

    // --------------------------------------------------------------------------------------------
    // Converted items validate against GS1's official EPCIS 2.0 JSON Schema
    // --------------------------------------------------------------------------------------------

    /// Serves `https://gs1.github.io/EPCIS/JSON-Schema/…` from the local copy of GS1's schemas, so
    /// that the modular schemas' relative `$ref`s resolve offline.
    struct LocalSchemas(PathBuf);

    impl jsonschema::Retrieve for LocalSchemas {
        fn retrieve(
            &self,
            uri: &jsonschema::Uri<String>,
        ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
            let path = uri.path().as_str();
            let relative = path
                .strip_prefix("/EPCIS/JSON-Schema/")
                .ok_or_else(|| format!("not a local GS1 schema: {uri}"))?;
            let text = std::fs::read_to_string(self.0.join(relative))?;
            Ok(serde_json::from_str(&text)?)
        }
    }

    fn schema_file(name: &str) -> Value {
        let path = fixtures().join("schema").join(name);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The single-file schema (`EPCIS-JSON-Schema.json`, self-contained `#/definitions` refs).
    fn document_validator() -> jsonschema::Validator {
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(true)
            .with_retriever(LocalSchemas(fixtures().join("schema")))
            .build(&schema_file("EPCIS-JSON-Schema.json"))
            .unwrap_or_else(|e| panic!("EPCIS-JSON-Schema.json: {e}"))
    }

    /// The modular event schema (`EPCIS-Event-JSON-Schema.json` → `schemas/*.json`), resolved
    /// through [`LocalSchemas`].
    fn event_validator() -> jsonschema::Validator {
        let schema = serde_json::json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$ref": "https://gs1.github.io/EPCIS/JSON-Schema/EPCIS-Event-JSON-Schema.json#/definitions/EPCIS-Document-Event"
        });
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(true)
            .with_retriever(LocalSchemas(fixtures().join("schema")))
            .build(&schema)
            .unwrap_or_else(|e| panic!("EPCIS-Event-JSON-Schema.json: {e}"))
    }

    fn wrap_document(outcome: &Outcome) -> Value {
        let events: Vec<Value> = outcome.events.iter().map(|e| e.0.clone()).collect();
        let vocabularies: Vec<Value> = outcome.vocabularies.iter().map(|v| v.0.clone()).collect();
        let mut document = serde_json::json!({
            "@context": outcome.info.json_ld_context(),
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": outcome.info.creation_date,
            "epcisBody": {"eventList": events},
        });
        if !vocabularies.is_empty() {
            document["epcisHeader"] =
                serde_json::json!({"epcisMasterData": {"vocabularyList": vocabularies}});
        }
        document
    }

    fn schema_errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
        validator
            .iter_errors(instance)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    #[test]
    fn converted_fixtures_validate_against_the_official_json_schema() {
        let document_schema = document_validator();
        let event_schema = event_validator();
        // The schemas do reject: a sanity check that validation is actually on.
        let bad = serde_json::json!({"@context": [EPCIS_CONTEXT_URL], "type": "ObjectEvent", "eventTime": "yesterday"});
        assert!(!schema_errors(&document_schema, &bad).is_empty());
        assert!(!schema_errors(&event_schema, &bad).is_empty());
        let mut unknown_step = read_fixture("Mimasu/Example1.xml").events[0].0.clone();
        assert!(schema_errors(&event_schema, &unknown_step).is_empty());
        unknown_step["bizStep"] = Value::String("urn:epcglobal:cbv:bizstep:foo".into());
        assert!(!schema_errors(&event_schema, &unknown_step).is_empty());
        for &(file, ..) in FIXTURES {
            let outcome = read_fixture(file);
            let document = wrap_document(&outcome);
            let errors = schema_errors(&document_schema, &document);
            assert!(errors.is_empty(), "{file}: {errors:#?}\n{document:#}");
            for (event, line, _) in &outcome.events {
                let errors = schema_errors(&event_schema, event);
                assert!(
                    errors.is_empty(),
                    "{file} line {line}: {errors:#?}\n{event:#}"
                );
            }
        }
    }

    // --------------------------------------------------------------------------------------------
    // Same example in XML and JSON: semantic equality
    // --------------------------------------------------------------------------------------------

    /// Seconds since the Unix epoch and the fractional digits of an RFC 3339 time, so that the
    /// same instant written with different offsets or precision compares equal.
    fn instant(s: &str) -> Option<String> {
        if !is_date_time_stamp(s) {
            return None;
        }
        let n = |r: std::ops::Range<usize>| s.get(r).and_then(|p| p.parse::<i64>().ok());
        let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
        // Days from civil (Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let mut seconds = days * 86_400 + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?;
        let rest = &s[19..];
        let (fraction, zone) = match rest.strip_prefix('.') {
            Some(f) => {
                let end = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
                (f[..end].trim_end_matches('0'), &f[end..])
            }
            None => ("", rest),
        };
        if zone != "Z" {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let offset = zone.get(1..3)?.parse::<i64>().ok()? * 3600
                + zone.get(4..6)?.parse::<i64>().ok()? * 60;
            seconds -= sign * offset;
        }
        Some(format!("{seconds}.{fraction}"))
    }

    /// Removes the representation differences between GS1's XML and JSON examples that carry no
    /// meaning: hash event IDs GS1 computed for the JSON files only (`ni:///…`), the offset or
    /// precision used to write a time, number formatting (compared as f64), the case of an
    /// `xsd:hexBinary` value, and empty lists (`<epcList/>` versus no `epcList`).
    fn semantic(value: &Value) -> Value {
        const TIMES: [&str; 6] = [
            "eventTime",
            "recordTime",
            "declarationTime",
            "time",
            "startTime",
            "endTime",
        ];
        match value {
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, v) in map {
                    match v {
                        Value::String(s) if key == "eventID" && s.starts_with("ni:///") => continue,
                        Value::Array(a) if a.is_empty() => continue,
                        Value::String(s) if key == "hexBinaryValue" => {
                            out.insert(key.clone(), Value::String(s.to_ascii_uppercase()));
                        }
                        Value::String(s) if TIMES.contains(&key.as_str()) => {
                            let normalized = instant(s).unwrap_or_else(|| s.clone());
                            out.insert(key.clone(), Value::String(normalized));
                        }
                        other => {
                            out.insert(key.clone(), semantic(other));
                        }
                    }
                }
                Value::Object(out)
            }
            Value::Array(list) => Value::Array(list.iter().map(semantic).collect()),
            Value::Number(n) => n
                .as_f64()
                .and_then(Number::from_f64)
                .map_or_else(|| value.clone(), Value::Number),
            other => other.clone(),
        }
    }

    /// JSON pointers where `a` (from XML) and `b` (from JSON) differ; key order is ignored.
    fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (key, value) in x {
                    match y.get(key) {
                        Some(other) => differences(value, other, &format!("{path}/{key}"), out),
                        None => out.push(format!("{path}/{key} (only in XML)")),
                    }
                }
                for key in y.keys().filter(|k| !x.contains_key(*k)) {
                    out.push(format!("{path}/{key} (only in JSON)"));
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    differences(p, q, &format!("{path}/{i}"), out);
                }
            }
            _ if a == b => {}
            _ => out.push(path.to_owned()),
        }
    }

    /// Where GS1's own XML and JSON versions of an example say different things (found by this
    /// test, kept here as documentation).
    const CERT_AND_ERROR_ONLY_IN_JSON: [&str; 2] = [
        "/certificationInfo (only in JSON)",
        "/errorDeclaration (only in JSON)",
    ];
    /// GS1's JSON nests `ext2:object` in itself and `ext1:object` in itself where the XML has one
    /// level (a conversion bug in GS1's example).
    const DOUBLED_OBJECTS_IN_JSON: [&str; 2] =
        ["*ext1:object/ext2:object/", "*ext1:array/5/ext1:object/"];

    /// One row of [`PAIRS`].
    type PairRow = (
        &'static str,
        usize,
        &'static str,
        usize,
        &'static [&'static str],
    );

    /// (XML file, event index, JSON file, event index, expected differences). A difference is a
    /// JSON pointer (with "only in XML/JSON" when one side lacks it); a pattern starting with `*`
    /// matches every difference containing the rest. Empty: the two are semantically equal.
    const PAIRS: &[PairRow] = &[
        (
            "Example_9.6.1-ObjectEvent-2020_06_18a.xml",
            0,
            "Example_9.6.1-ObjectEvent.jsonld",
            0,
            &[],
        ),
        (
            "Example_9.6.1-ObjectEvent-2020_06_18a.xml",
            1,
            "Example_9.6.1-ObjectEvent.jsonld",
            1,
            &[],
        ),
        (
            "Mimasu/Example1.xml",
            0,
            "Example_9.6.1-ObjectEvent.jsonld",
            0,
            &[],
        ),
        (
            "Mimasu/Example1.xml",
            1,
            "Example_9.6.1-ObjectEvent.jsonld",
            1,
            &[],
        ),
        (
            "Mimasu/Example2.xml",
            0,
            "Example_9.6.2-ObjectEvent.jsonld",
            0,
            &[],
        ),
        (
            "Mimasu/Example3.xml",
            0,
            "Example_9.6.3-AggregationEvent.jsonld",
            0,
            &[],
        ),
        (
            "Mimasu/Example4.xml",
            0,
            "Example_9.6.4-TransformationEvent.jsonld",
            0,
            &[],
        ),
        (
            "Example-TransactionEvent-2020_07_03y.xml",
            0,
            "Example-TransactionEvents-2020_07_03y.jsonld",
            0,
            &[],
        ),
        (
            "Example-TransactionEvent-2020_07_03y.xml",
            1,
            "Example-TransactionEvents-2020_07_03y.jsonld",
            1,
            // The JSON drops the empty <rail:vehicleMasterGIAI/> and writes one of three
            // vehicleUniquelyIdentified values as a boolean (the other two stay strings).
            &[
                "/rail:vehicle/1/rail:vehicleMasterGIAI (only in XML)",
                "/rail:vehicle/2/rail:vehicleUniquelyIdentified",
            ],
        ),
        (
            "AssociationEvent/AssociationEventExamples.xml",
            0,
            "AssociationEvent/AssociationEvent-a.jsonld",
            0,
            &[],
        ),
        (
            "AssociationEvent/AssociationEventExamples.xml",
            1,
            "AssociationEvent/AssociationEvent-b.jsonld",
            0,
            &[],
        ),
        (
            "AssociationEvent/AssociationEventExamples.xml",
            2,
            "AssociationEvent/AssociationEvent-c.jsonld",
            0,
            &[],
        ),
        (
            "AssociationEvent/AssociationEventExamples.xml",
            3,
            "AssociationEvent/AssociationEvent-d.jsonld",
            0,
            &[],
        ),
        (
            "AssociationEvent/AssociationEventExamples.xml",
            4,
            "AssociationEvent/AssociationEvent-e.jsonld",
            0,
            &[],
        ),
        (
            "AssociationEvent/AssociationEventExamples.xml",
            5,
            "AssociationEvent/AssociationEvent-f.jsonld",
            0,
            &[],
        ),
        // The corrective event is a urn:uuid in XML and a ni:/// hash ID in JSON.
        (
            "AssociationEvent/AssociationEventExamples.xml",
            6,
            "AssociationEvent/AssociationEvent-g.jsonld",
            0,
            &["/errorDeclaration/correctiveEventIDs/0"],
        ),
        (
            "AssociationEvent/AssociationEventExamples.xml",
            7,
            "AssociationEvent/AssociationEvent-h.jsonld",
            0,
            &[],
        ),
        // The XML has <quantity xsi:nil="true"/> and another read point; the JSON 500 KGM.
        (
            "WithErrorDeclaration/ErrorDeclarationAndCorrectiveEvent.xml",
            0,
            "WithErrorDeclaration/ErrorDeclarationAndCorrectiveEvent.jsonld",
            0,
            &[
                "/inputQuantityList/0/quantity (only in JSON)",
                "/inputQuantityList/0/uom (only in JSON)",
                "/readPoint/id",
            ],
        ),
        (
            "WithErrorDeclaration/ErrorDeclarationAndCorrectiveEvent.xml",
            1,
            "WithErrorDeclaration/ErrorDeclarationAndCorrectiveEvent.jsonld",
            1,
            &[
                "/inputQuantityList/0/quantity (only in JSON)",
                "/inputQuantityList/0/uom (only in JSON)",
                "/readPoint/id",
            ],
        ),
        // The "all possible fields" JSON files add certificationInfo and an errorDeclaration the
        // XML lacks, and double nested extension objects; the aggregation's component is
        // example:x in XML and cbv:Comp-latitude in JSON.
        (
            "WithFullCombinationOfFields/aggregation_event_all_possible_fields.xml",
            0,
            "WithFullCombinationOfFields/aggregation_event_all_possible_fields.jsonld",
            0,
            &[
                CERT_AND_ERROR_ONLY_IN_JSON[0],
                CERT_AND_ERROR_ONLY_IN_JSON[1],
                DOUBLED_OBJECTS_IN_JSON[0],
                DOUBLED_OBJECTS_IN_JSON[1],
                "/sensorElementList/0/sensorReport/0/component",
            ],
        ),
        (
            "WithFullCombinationOfFields/association_event_all_possible_fields.xml",
            0,
            "WithFullCombinationOfFields/association_event_all_possible_fields.jsonld",
            0,
            &[
                CERT_AND_ERROR_ONLY_IN_JSON[0],
                CERT_AND_ERROR_ONLY_IN_JSON[1],
                DOUBLED_OBJECTS_IN_JSON[0],
                DOUBLED_OBJECTS_IN_JSON[1],
            ],
        ),
        // The object-event XML is a cut-down version: OBSERVE instead of ADD, no ilmd, fewer
        // extension fields than its JSON twin, which also carries an explicit eventID.
        (
            "WithFullCombinationOfFields/object_event_all_possible_fields.xml",
            0,
            "WithFullCombinationOfFields/object_event_all_possible_fields.jsonld",
            0,
            &[
                CERT_AND_ERROR_ONLY_IN_JSON[0],
                CERT_AND_ERROR_ONLY_IN_JSON[1],
                DOUBLED_OBJECTS_IN_JSON[0],
                "/action",
                "/eventID (only in JSON)",
                "/ilmd (only in JSON)",
                "/sensorElementList/0/ext1:object/ext2:array",
                "*/ext1:float (only in JSON)",
                "*/ext1:time (only in JSON)",
                "*/ext1:array (only in JSON)",
                "*/ext1:int (only in JSON)",
                "/ext1:boolean (only in JSON)",
                "/ext1:object (only in JSON)",
                "/ext1:default (only in JSON)",
                "/ext1:string (only in JSON)",
            ],
        ),
        (
            "WithFullCombinationOfFields/transaction_event_all_possible_fields.xml",
            0,
            "WithFullCombinationOfFields/transaction_event_all_possible_fields.jsonld",
            0,
            &[
                CERT_AND_ERROR_ONLY_IN_JSON[0],
                CERT_AND_ERROR_ONLY_IN_JSON[1],
                DOUBLED_OBJECTS_IN_JSON[0],
                DOUBLED_OBJECTS_IN_JSON[1],
            ],
        ),
        // Also: the JSON drops the measurementUnitCode attribute of the cbvmda weights, which this
        // reader keeps ({"measurementUnitCode": "KGM", "#text": "3.5"}).
        (
            "WithFullCombinationOfFields/transformation_event_all_possible_fields.xml",
            0,
            "WithFullCombinationOfFields/transformation_event_all_possible_fields.jsonld",
            0,
            &[
                CERT_AND_ERROR_ONLY_IN_JSON[0],
                CERT_AND_ERROR_ONLY_IN_JSON[1],
                DOUBLED_OBJECTS_IN_JSON[0],
                DOUBLED_OBJECTS_IN_JSON[1],
                "/ilmd/cbvmda:drainedWeight",
                "/ilmd/cbvmda:grossWeight",
                "/ilmd/cbvmda:netWeight",
            ],
        ),
        // SensorDataExamples.xml holds cases 1–15 (13 missing, 9 rejected, see FIXTURES);
        // SensorDataExampleN.jsonld is case N.
        (
            "WithSensorData/SensorDataExamples.xml",
            0,
            "WithSensorData/SensorDataExample1.jsonld",
            0,
            &[],
        ),
        (
            "WithSensorData/SensorDataExamples.xml",
            1,
            "WithSensorData/SensorDataExample2.jsonld",
            0,
            &[],
        ),
        (
            "WithSensorData/SensorDataExamples.xml",
            2,
            "WithSensorData/SensorDataExample3.jsonld",
            0,
            &[],
        ),
        // Different rawData URIs per report.
        (
            "WithSensorData/SensorDataExamples.xml",
            3,
            "WithSensorData/SensorDataExample4.jsonld",
            0,
            &["*/rawData"],
        ),
        (
            "WithSensorData/SensorDataExamples.xml",
            4,
            "WithSensorData/SensorDataExample5.jsonld",
            0,
            &[],
        ),
        // The JSON has an EPC and a quantity the XML lacks, and splits furtherSensorData into
        // an array of one-member objects.
        (
            "WithSensorData/SensorDataExamples.xml",
            5,
            "WithSensorData/SensorDataExample6.jsonld",
            0,
            &[
                "/sensorElementList/0/example:furtherSensorData",
                "/epcList (only in JSON)",
                "/quantityList (only in JSON)",
            ],
        ),
        (
            "WithSensorData/SensorDataExamples.xml",
            6,
            "WithSensorData/SensorDataExample7.jsonld",
            0,
            &[],
        ),
        // gs1:Molar_concentration (not a GS1 measurement type) became
        // AmountOfSubstancePerUnitVolume in JSON; furtherSensorData split as in case 6.
        (
            "WithSensorData/SensorDataExamples.xml",
            7,
            "WithSensorData/SensorDataExample8.jsonld",
            0,
            &[
                "/sensorElementList/0/sensorReport/1/type",
                "/sensorElementList/0/sensorReport/2/type",
                "/sensorElementList/1/example:furtherSensorData",
            ],
        ),
        // example:x/y/z components in XML, CBV x/y/z plus an ex:feature in JSON.
        (
            "WithSensorData/SensorDataExamples.xml",
            9,
            "WithSensorData/SensorDataExample10.jsonld",
            0,
            &["*/component", "*/ex:feature (only in JSON)"],
        ),
        // gs1:EffectiveDoseRate (not a GS1 measurement type) is DoseEquivalentRate in JSON.
        (
            "WithSensorData/SensorDataExamples.xml",
            10,
            "WithSensorData/SensorDataExample11.jsonld",
            0,
            &["/sensorElementList/0/sensorReport/0/type"],
        ),
        // The JSON drops the readPoint/bizLocation/event extensions with attributes-only content
        // and replaces <example:field example:furtherData="abcd1234"/> by "foo bar".
        (
            "WithSensorData/SensorDataExamples.xml",
            11,
            "WithSensorData/SensorDataExample12.jsonld",
            0,
            &[
                "/errorDeclaration/example:field",
                "/readPoint/example:gs1ES (only in XML)",
                "/bizLocation/example:gs1ES (only in XML)",
                "/example2:furtherData (only in XML)",
            ],
        ),
        (
            "WithSensorData/SensorDataExamples.xml",
            12,
            "WithSensorData/SensorDataExample14.jsonld",
            0,
            &[],
        ),
        (
            "WithSensorData/SensorDataExamples.xml",
            13,
            "WithSensorData/SensorDataExample15.jsonld",
            0,
            &[],
        ),
    ];

    fn matches_pattern(found: &str, pattern: &str) -> bool {
        match pattern.strip_prefix('*') {
            Some(fragment) => found.contains(fragment),
            None => found == pattern,
        }
    }

    #[test]
    fn xml_events_equal_their_gs1_json_twins() {
        let mut report = Vec::new();
        for &(xml, xml_index, json, json_index, expected) in PAIRS {
            let outcome = read_fixture(xml);
            let converted = outcome
                .events
                .iter()
                .find(|e| e.2 == xml_index)
                .unwrap_or_else(|| panic!("{xml}: no event #{xml_index}"));
            let twin = &json_fixture(json)["epcisBody"]["eventList"][json_index];
            assert!(twin.is_object(), "{json}: no event #{json_index}");
            let mut found = Vec::new();
            differences(&semantic(&converted.0), &semantic(twin), "", &mut found);
            let unexplained: Vec<&String> = found
                .iter()
                .filter(|f| !expected.iter().any(|p| matches_pattern(f, p)))
                .collect();
            let unused: Vec<&&str> = expected
                .iter()
                .filter(|p| !found.iter().any(|f| matches_pattern(f, p)))
                .collect();
            if !unexplained.is_empty() || !unused.is_empty() {
                report.push(format!(
                    "{xml}#{xml_index} vs {json}#{json_index}: unexplained {unexplained:?}, not found {unused:?}"
                ));
            }
        }
        assert!(report.is_empty(), "{}", report.join("\n"));
    }

    // --------------------------------------------------------------------------------------------
    // EPCIS 1.2 quirks, query documents, master data
    // --------------------------------------------------------------------------------------------

    const EPCIS_1_2: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:1"
    xmlns:sbdh="http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
    xmlns:ex="http://ex.example/ns/" schemaVersion="1.2" creationDate="2016-01-01T00:00:00Z">
  <EPCISHeader>
    <sbdh:StandardBusinessDocumentHeader><sbdh:HeaderVersion>1.0</sbdh:HeaderVersion></sbdh:StandardBusinessDocumentHeader>
    <extension>
      <EPCISMasterData>
        <VocabularyList>
          <Vocabulary type="urn:epcglobal:epcis:vtype:BusinessLocation">
            <VocabularyElementList>
              <VocabularyElement id="urn:epc:id:sgln:0614141.00001.0">
                <attribute id="urn:epcglobal:cbv:mda#name">Factory &amp; Warehouse</attribute>
                <attribute id="urn:epcglobal:cbv:mda#sst"/>
                <children/>
              </VocabularyElement>
            </VocabularyElementList>
          </Vocabulary>
        </VocabularyList>
      </EPCISMasterData>
    </extension>
  </EPCISHeader>
  <EPCISBody>
    <EventList>
      <ObjectEvent>
        <eventTime>2016-01-01T10:00:00.000+01:00</eventTime>
        <eventTimeZoneOffset>+01:00</eventTimeZoneOffset>
        <baseExtension>
          <eventID>urn:uuid:6a0c1c8e-8b3c-4c1e-9a52-000000000001</eventID>
          <errorDeclaration>
            <declarationTime>2016-01-02T10:00:00Z</declarationTime>
            <reason>urn:epcglobal:cbv:er:did_not_occur</reason>
          </errorDeclaration>
        </baseExtension>
        <epcList><epc>urn:epc:id:sgtin:0614141.107346.1</epc></epcList>
        <action>ADD</action>
        <bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep>
        <disposition>urn:epcglobal:cbv:disp:active</disposition>
        <readPoint><id>urn:epc:id:sgln:0614141.00001.0</id></readPoint>
        <extension>
          <quantityList>
            <quantityElement>
              <epcClass>urn:epc:class:lgtin:0614141.107346.L1</epcClass>
              <quantity>2.50</quantity><uom>KGM</uom>
            </quantityElement>
          </quantityList>
          <sourceList><source type="urn:epcglobal:cbv:sdt:owning_party">urn:epc:id:pgln:0614141.00001</source></sourceList>
          <ilmd><ex:lot>L1</ex:lot></ilmd>
        </extension>
        <ex:note>made with <![CDATA[<1.2>]]> &#x2713;</ex:note>
      </ObjectEvent>
      <extension>
        <TransformationEvent>
          <eventTime>2016-01-03T10:00:00Z</eventTime>
          <eventTimeZoneOffset>+00:00</eventTimeZoneOffset>
          <inputEPCList><epc>urn:epc:id:sgtin:0614141.107346.1</epc></inputEPCList>
          <outputEPCList><epc>urn:epc:id:sgtin:0614141.107347.1</epc></outputEPCList>
          <transformationID>urn:epc:id:gdti:0614141.12345.1</transformationID>
          <bizStep>https://ref.gs1.org/cbv/BizStep-repackaging</bizStep>
        </TransformationEvent>
      </extension>
      <AggregationEvent>
        <eventTime>2016-01-04T10:00:00Z</eventTime>
        <eventTimeZoneOffset>-05:30</eventTimeZoneOffset>
        <parentID>urn:epc:id:sscc:0614141.1234567890</parentID>
        <childEPCs/>
        <action>ADD</action>
        <bizStep>urn:epcglobal:cbv:bizstep:packing</bizStep>
        <extension>
          <childQuantityList>
            <quantityElement><epcClass>urn:epc:class:lgtin:0614141.107346.L1</epcClass><quantity>10</quantity></quantityElement>
          </childQuantityList>
        </extension>
      </AggregationEvent>
    </EventList>
  </EPCISBody>
</epcis:EPCISDocument>
"#;

    #[test]
    fn epcis_1_2_extension_wrappers_are_flattened() {
        let outcome = read_str(EPCIS_1_2);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(outcome.info.schema_version, "1.2");
        assert_eq!(outcome.info.namespace, NS_EPCIS_1);
        assert_eq!(outcome.vocabularies.len(), 1);
        assert_eq!(
            outcome.vocabularies[0].0,
            serde_json::json!({
                "type": "urn:epcglobal:epcis:vtype:BusinessLocation",
                "vocabularyElementList": [{
                    "id": "urn:epc:id:sgln:0614141.00001.0",
                    "attributes": [
                        {"id": "urn:epcglobal:cbv:mda#name", "attribute": "Factory & Warehouse"},
                        {"id": "urn:epcglobal:cbv:mda#sst"}
                    ]
                }]
            })
        );
        let events: Vec<&Value> = outcome.events.iter().map(|e| &e.0).collect();
        assert_eq!(
            outcome.events.iter().map(|e| e.2).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(
            events[0],
            &serde_json::json!({
                "type": "ObjectEvent",
                "eventTime": "2016-01-01T10:00:00.000+01:00",
                "eventTimeZoneOffset": "+01:00",
                "eventID": "urn:uuid:6a0c1c8e-8b3c-4c1e-9a52-000000000001",
                "errorDeclaration": {"declarationTime": "2016-01-02T10:00:00Z", "reason": "did_not_occur"},
                "epcList": ["urn:epc:id:sgtin:0614141.107346.1"],
                "action": "ADD",
                "bizStep": "commissioning",
                "disposition": "active",
                "readPoint": {"id": "urn:epc:id:sgln:0614141.00001.0"},
                "quantityList": [{"epcClass": "urn:epc:class:lgtin:0614141.107346.L1", "quantity": 2.5, "uom": "KGM"}],
                "sourceList": [{"type": "owning_party", "source": "urn:epc:id:pgln:0614141.00001"}],
                "ilmd": {"ex:lot": "L1"},
                "ex:note": "made with <1.2> \u{2713}"
            })
        );
        assert_eq!(events[1]["type"], "TransformationEvent");
        assert_eq!(events[1]["bizStep"], "repackaging");
        assert_eq!(
            events[1]["transformationID"],
            "urn:epc:id:gdti:0614141.12345.1"
        );
        assert_eq!(events[2]["childQuantityList"][0]["quantity"], 10);
        assert_eq!(events[2]["childEPCs"], serde_json::json!([]));
        let errors = schema_errors(&document_validator(), &wrap_document(&outcome));
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(
            outcome.info.json_ld_context(),
            serde_json::json!([EPCIS_CONTEXT_URL, {"ex": "http://ex.example/ns/"}])
        );
    }

    #[test]
    fn query_results_are_read_and_other_query_messages_refused() {
        let query = format!(
            "<epcisq:EPCISQueryDocument xmlns:epcisq=\"urn:epcglobal:epcis-query:xsd:2\" schemaVersion=\"2.0\" \
             creationDate=\"2024-01-01T00:00:00+02:00\"><EPCISBody><epcisq:QueryResults>\
             <queryName>SimpleEventQuery</queryName><subscriptionID>s1</subscriptionID>\
             <resultsBody><EventList>{}{}</EventList></resultsBody></epcisq:QueryResults></EPCISBody>\
             </epcisq:EPCISQueryDocument>",
            object_event(""),
            object_event("")
        );
        let outcome = read_str(&query);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(outcome.info.kind, Some(DocumentKind::QueryResults));
        assert_eq!(
            outcome.events.iter().map(|e| e.2).collect::<Vec<_>>(),
            [0, 1]
        );

        let vocabularies = "<q:EPCISQueryDocument xmlns:q=\"urn:epcglobal:epcis-query:xsd:1\" schemaVersion=\"1.2\" \
             creationDate=\"2024-01-01T00:00:00Z\"><EPCISBody><q:QueryResults><queryName>SimpleMasterDataQuery</queryName>\
             <resultsBody><VocabularyList><Vocabulary type=\"urn:epcglobal:epcis:vtype:ReadPoint\"><VocabularyElementList>\
             <VocabularyElement id=\"urn:epc:id:sgln:0614141.00001.0\"/></VocabularyElementList></Vocabulary>\
             </VocabularyList></resultsBody></q:QueryResults></EPCISBody></q:EPCISQueryDocument>";
        let outcome = read_str(vocabularies);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(
            outcome.vocabularies[0].0,
            serde_json::json!({"type": "urn:epcglobal:epcis:vtype:ReadPoint",
                               "vocabularyElementList": [{"id": "urn:epc:id:sgln:0614141.00001.0"}]})
        );

        let exception = "<q:EPCISQueryDocument xmlns:q=\"urn:epcglobal:epcis-query:xsd:2\" schemaVersion=\"2.0\" \
             creationDate=\"2024-01-01T00:00:00Z\">\n<EPCISBody>\n  <q:QueryTooLargeException><reason>big</reason>\
             </q:QueryTooLargeException></EPCISBody></q:EPCISQueryDocument>";
        let error = single_error(&read_str(exception)).clone();
        assert_eq!(
            (error.line, error.column, error.kind),
            (3, Some(3), XmlErrorKind::Document)
        );
        assert!(error.message.contains("QueryTooLargeException"), "{error}");
    }

    // --------------------------------------------------------------------------------------------
    // Namespaces
    // --------------------------------------------------------------------------------------------

    #[test]
    fn rebound_and_default_namespaces_get_unambiguous_prefixes() {
        let xml = doc(&object_event(
            "<ex:a>1</ex:a><ex:b xmlns:ex=\"http://other.example/\">2</ex:b>\
             <note xmlns=\"http://default.example/\"><inner>x</inner></note>\
             <o:c xmlns:o=\"http://ex.example/ns/\" o:att=\"v\">3</o:c>\
             <q:e xmlns:q=\"urn:q:\" q:a=\"1\" plain=\"2\"/>",
        ));
        let outcome = read_str(&xml);
        let event = only_event(&outcome);
        assert_eq!(event["ex:a"], "1");
        assert_eq!(event["ex2:b"], "2");
        assert_eq!(event["ns1:note"], serde_json::json!({"ns1:inner": "x"}));
        assert_eq!(
            event["o:c"],
            serde_json::json!({"o:att": "v", "#text": "3"})
        );
        assert_eq!(event["q:e"], serde_json::json!({"q:a": "1", "plain": "2"}));
        let ns = &outcome.info.namespaces;
        assert_eq!(
            ns.get("ex").map(String::as_str),
            Some("http://ex.example/ns/")
        );
        assert_eq!(
            ns.get("ex2").map(String::as_str),
            Some("http://other.example/")
        );
        assert_eq!(
            ns.get("ns1").map(String::as_str),
            Some("http://default.example/")
        );
        assert_eq!(
            ns.get("o").map(String::as_str),
            Some("http://ex.example/ns/")
        );
    }

    #[test]
    fn epcis_elements_in_a_default_epcis_namespace_are_read_like_unqualified_ones() {
        let xml = "<EPCISDocument xmlns=\"urn:epcglobal:epcis:xsd:1\" schemaVersion=\"1.2\" \
                   creationDate=\"2024-01-01T00:00:00Z\"><EPCISBody><EventList>"
            .to_owned()
            + &object_event("")
            + "</EventList></EPCISBody></EPCISDocument>";
        let outcome = read_str(&xml);
        assert_eq!(only_event(&outcome)["action"], "OBSERVE");
    }

    // --------------------------------------------------------------------------------------------
    // Errors: located, typed, recoverable per event
    // --------------------------------------------------------------------------------------------

    #[test]
    fn error_display_names_line_and_column() {
        let with_column = XmlError {
            line: 17,
            column: Some(9),
            message: "bad".into(),
            kind: XmlErrorKind::Event,
        };
        assert_eq!(with_column.to_string(), "line 17, column 9: bad");
        let without = XmlError {
            line: 40,
            column: None,
            message: "bad".into(),
            kind: XmlErrorKind::Syntax,
        };
        assert_eq!(without.to_string(), "line 40: bad");
    }

    #[test]
    fn an_invalid_date_time_is_located_and_the_next_event_still_read() {
        let bad = "<ObjectEvent>\n        <eventTime>2005-13-03T20:33:31.116-06:00</eventTime>\
                   <eventTimeZoneOffset>-06:00</eventTimeZoneOffset><epcList/><action>OBSERVE</action></ObjectEvent>";
        let xml = doc(&format!("{bad}\n{}", object_event("")));
        let outcome = read_str(&xml);
        let error = single_error(&outcome);
        assert_eq!(
            error.to_string(),
            "line 5, column 9: <eventTime> is not an xsd:dateTime with a time zone: '2005-13-03T20:33:31.116-06:00'"
        );
        assert!(error.is_recoverable());
        assert_eq!(outcome.events.len(), 1);
        assert_eq!((outcome.events[0].1, outcome.events[0].2), (6, 1));
    }

    #[test]
    fn invalid_event_content_is_rejected_with_its_location() {
        let cases: &[(&str, &str)] = &[
            (
                "<ObjectEvent><eventTime>2024-01-01T00:00:00Z</eventTime><epcList/><action>ADD</action></ObjectEvent>",
                "<ObjectEvent> has no <eventTimeZoneOffset>",
            ),
            (
                "<AggregationEvent><eventTime>2024-01-01T00:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset></AggregationEvent>",
                "<AggregationEvent> has no <action>",
            ),
            (
                "<AssociationEvent><eventTime>2024-01-01T00:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset><action>ADD</action></AssociationEvent>",
                "<AssociationEvent> has no <parentID>",
            ),
            (
                "<TransactionEvent><eventTime>2024-01-01T00:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset><epcList/><action>ADD</action></TransactionEvent>",
                "<TransactionEvent> has no <bizTransactionList>",
            ),
            (
                &object_event_owned("<frobnicate>1</frobnicate>"),
                "unknown element <frobnicate> in ObjectEvent",
            ),
            (
                &object_event_owned("<childEPCs/>"),
                "<childEPCs> is not a field of ObjectEvent",
            ),
            (
                &object_event_owned("<action>ADD</action>"),
                "<action> appears twice",
            ),
            (
                "<ObjectEvent><eventTime>2024-01-01T00:00:00</eventTime></ObjectEvent>",
                "<eventTime> is not an xsd:dateTime with a time zone: '2024-01-01T00:00:00'",
            ),
            (
                "<ObjectEvent><eventTime>2024-01-01T00:00:00Z</eventTime><eventTimeZoneOffset>+15:00</eventTimeZoneOffset></ObjectEvent>",
                "<eventTimeZoneOffset> is not a time zone offset",
            ),
            (
                "<ObjectEvent><eventTime>2024-01-01T00:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset><action>MOVE</action></ObjectEvent>",
                "<action> must be ADD, OBSERVE or DELETE, not 'MOVE'",
            ),
            (
                &object_event_owned("<bizStep>urn:epcglobal:cbv:bizstep:teleporting</bizStep>"),
                "'urn:epcglobal:cbv:bizstep:teleporting' is not a CBV business step value",
            ),
            (
                &object_event_owned(
                    "<disposition>urn:epcglobal:cbv:bizstep:shipping</disposition>",
                ),
                "is a CBV URI that EPCIS 2.0 JSON cannot carry",
            ),
            (
                &object_event_owned(
                    "<quantityList><quantityElement><quantity>1</quantity></quantityElement></quantityList>",
                ),
                "<quantityElement> has no <epcClass>",
            ),
            (
                &object_event_owned(
                    "<quantityList><quantityElement><epcClass>urn:x:y</epcClass><quantity>1e3</quantity></quantityElement></quantityList>",
                ),
                "<quantity> is not an xsd:decimal: '1e3'",
            ),
            (
                &object_event_owned("<sourceList><source>urn:x:y</source></sourceList>"),
                "<source> has no type attribute",
            ),
            (
                &object_event_owned("<readPoint><ex:x>1</ex:x></readPoint>"),
                "<readPoint> has no <id>",
            ),
            (&object_event_owned("<epcList/>"), "<epcList> appears twice"),
            (
                &object_event_owned("<ex:a>text<ex:b/></ex:a>"),
                "mixes text 'text' with child elements",
            ),
            (
                &object_event_owned(
                    "<sensorElementList><sensorElement><sensorReport type=\"gs1:Temperature\" value=\"INF\"/></sensorElement></sensorElementList>",
                ),
                "attribute value of <sensorReport> is not a finite xsd:double: 'INF'",
            ),
            (
                &object_event_owned(
                    "<sensorElementList><sensorElement><sensorReport type=\"gs1:Temperature\" colour=\"red\"/></sensorElement></sensorElementList>",
                ),
                "unknown attribute colour on <sensorReport>",
            ),
            (
                &object_event_owned(
                    "<sensorElementList><sensorElement><sensorMetadata/></sensorElement></sensorElementList>",
                ),
                "<sensorElement> has no <sensorReport>",
            ),
            (
                &object_event_owned(
                    "<errorDeclaration><reason>urn:epcglobal:cbv:er:incorrect_data</reason></errorDeclaration>",
                ),
                "<errorDeclaration> has no <declarationTime>",
            ),
            (
                &object_event_owned("<bizLocation foo=\"bar\"><id>urn:x:y</id></bizLocation>"),
                "unexpected attribute foo on <bizLocation>",
            ),
            (
                &object_event_owned("<quantityList ex:foo=\"bar\"/>"),
                "unexpected attribute ex:foo on <quantityList>",
            ),
            (
                &object_event_owned(
                    "<bizTransactionList><bizTransaction>a</bizTransaction><ex:b>b</ex:b></bizTransactionList>",
                ),
                "extension element <ex:b> is not allowed in <bizTransactionList>",
            ),
            (
                &object_event_owned("<quantityList>stray text</quantityList>"),
                "unexpected text 'stray text' in <quantityList>",
            ),
            (
                &object_event_owned("<eventID><b>x</b></eventID>"),
                "<eventID> must contain only text, but contains <b>",
            ),
            (
                "<QuantityEvent><eventTime>2024-01-01T00:00:00Z</eventTime></QuantityEvent>",
                "QuantityEvent (deprecated in EPCIS 1.1, removed in 2.0)",
            ),
            (
                "<ex:CustomEvent/>",
                "user-defined event type <ex:CustomEvent>",
            ),
            ("<Frobnication/>", "unknown event type <Frobnication>"),
        ];
        for &(event, fragment) in cases {
            // The broken event sits on line 4, followed by a good one that must still be read.
            let xml = doc(&format!("{event}\n{}", object_event("")));
            let outcome = read_str(&xml);
            assert_eq!(outcome.errors.len(), 1, "{event}: {:?}", outcome.errors);
            let error = &outcome.errors[0];
            assert!(
                error.message.contains(fragment),
                "{event}: got '{error}', want '{fragment}'"
            );
            assert_eq!(error.line, 4, "{event}: {error}");
            assert!(error.column.is_some_and(|c| c >= 1), "{event}: {error}");
            assert_eq!(error.kind, XmlErrorKind::Event, "{event}: {error}");
            assert_eq!(
                outcome.events.len(),
                1,
                "{event}: the following event is still read"
            );
            assert_eq!(
                outcome.events[0].2, 1,
                "{event}: the bad event keeps its index"
            );
        }
    }

    fn object_event_owned(inner: &str) -> String {
        object_event(inner)
    }

    #[test]
    fn values_are_normalised_as_documented() {
        let xml = doc(&object_event(
            "<bizStep>cbv:BizStep-shipping</bizStep><disposition>https://example.org/disp/lost</disposition>\
             <bizTransactionList><bizTransaction type=\"https://ref.gs1.org/cbv/BTT-po\"> urn:x:po:1 </bizTransaction>\
             <bizTransaction>urn:x:po:2</bizTransaction></bizTransactionList>\
             <quantityList><quantityElement><epcClass>urn:x:c</epcClass><quantity>+.50</quantity></quantityElement>\
             <quantityElement><epcClass>urn:x:d</epcClass><quantity>-7</quantity></quantityElement></quantityList>\
             <sensorElementList><sensorElement><sensorReport type=\"https://gs1.org/voc/Temperature\" value=\"1.5E2\" \
             booleanValue=\"0\" exception=\"gs1:ALARM_CONDITION\" component=\"https://ref.gs1.org/cbv/Comp-x\"/>\
             </sensorElement></sensorElementList><certificationInfo>urn:c:1</certificationInfo>\
             <certificationInfo>urn:c:2</certificationInfo><ex:nil xsi:nil=\"true\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"/><ex:empty/><ex:blank>  </ex:blank>",
        ));
        let outcome = read_str(&xml);
        let event = only_event(&outcome);
        assert_eq!(event["bizStep"], "shipping");
        assert_eq!(event["disposition"], "https://example.org/disp/lost");
        assert_eq!(
            event["bizTransactionList"],
            serde_json::json!([{"type": "po", "bizTransaction": "urn:x:po:1"}, {"bizTransaction": "urn:x:po:2"}])
        );
        assert_eq!(event["quantityList"][0]["quantity"], 0.5);
        assert_eq!(event["quantityList"][1]["quantity"], -7);
        assert_eq!(
            event["sensorElementList"][0]["sensorReport"][0],
            serde_json::json!({"type": "Temperature", "value": 150, "booleanValue": false,
                               "exception": "ALARM_CONDITION", "component": "x"})
        );
        assert_eq!(
            event["certificationInfo"],
            serde_json::json!(["urn:c:1", "urn:c:2"])
        );
        assert_eq!(event["ex:nil"], Value::Null);
        assert_eq!(event["ex:empty"], "");
        assert_eq!(event["ex:blank"], "");
    }

    // --------------------------------------------------------------------------------------------
    // Hostile and broken input
    // --------------------------------------------------------------------------------------------

    fn fatal(outcome: &Outcome) -> &XmlError {
        let error = outcome
            .errors
            .last()
            .unwrap_or_else(|| panic!("no error: {outcome:?}"));
        assert!(!error.is_recoverable(), "{error}");
        error
    }

    #[test]
    fn wrong_or_missing_root_is_refused() {
        let outcome = read_str("<?xml version=\"1.0\"?>\n<!-- a comment -->\n<foo/>");
        assert_eq!(
            fatal(&outcome).to_string(),
            "line 3, column 1: not an EPCIS document: root element is <foo> without namespace (expected \
             EPCISDocument, EPCISQueryDocument or EPCISMasterDataDocument in an EPCIS 1.x/2.x namespace)"
        );
        let outcome = read_str(
            "<x:EPCISDocument xmlns:x=\"urn:example\" schemaVersion=\"2.0\" creationDate=\"2024-01-01T00:00:00Z\"/>",
        );
        assert!(
            fatal(&outcome)
                .message
                .contains("in namespace 'urn:example'")
        );
        let outcome = read_str("  \n ");
        assert!(fatal(&outcome).message.contains("no root element"));
        let outcome = read_str(
            "<epcis:EPCISDocument xmlns:epcis=\"urn:epcglobal:epcis:xsd:2\" schemaVersion=\"2.0\"/>",
        );
        assert!(fatal(&outcome).message.contains("no creationDate"));
        let outcome = read_str(
            "<epcis:EPCISDocument xmlns:epcis=\"urn:epcglobal:epcis:xsd:2\" schemaVersion=\"2.0\" creationDate=\"today\"/>",
        );
        assert!(
            fatal(&outcome)
                .message
                .contains("creationDate is not an xsd:dateTime")
        );
        // Document-level extension points must be empty; foreign elements there are skipped.
        let future = doc("").replace(
            "</EPCISBody>",
            "</EPCISBody>\n<extension><futureThing/></extension>",
        );
        let error = fatal(&read_str(&future)).clone();
        assert_eq!((error.line, error.kind), (6, XmlErrorKind::Document));
        assert!(
            error
                .message
                .contains("<futureThing> inside <extension> of the document element"),
            "{error}"
        );
        let vendor = doc("").replace(
            "</EPCISBody>",
            "</EPCISBody><ex:vendor><x/></ex:vendor><extension/>",
        );
        assert!(read_str(&vendor).errors.is_empty());
        // An empty but well-formed document is simply empty.
        let outcome = read_str(&doc(""));
        assert!(outcome.errors.is_empty() && outcome.events.is_empty());
    }

    #[test]
    fn truncated_documents_end_in_a_located_error() {
        let xml = doc(&format!(
            "{}\n<ObjectEvent><eventTime>2024-01-01T00:00:00Z</eventTime><epcList>",
            object_event("")
        ));
        let cut = xml.rfind("<epcList>").map_or(0, |i| i + "<epcList>".len());
        let outcome = read_str(&xml[..cut]);
        assert_eq!(outcome.events.len(), 1);
        assert_eq!(
            fatal(&outcome).to_string(),
            "line 5, column 66: unexpected end of document inside <epcList>"
        );

        // Every prefix of a real fixture: no panic, and never a silent success.
        let path = fixtures().join("xml/Mimasu/Example1.xml");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for end in 0..bytes.len() - 1 {
            let outcome = read_bytes(&bytes[..end]);
            assert!(
                !outcome.errors.is_empty(),
                "a document cut at byte {end} was accepted"
            );
            assert!(outcome.errors.iter().all(|e| e.line >= 1));
        }
        assert!(read_bytes(&bytes).errors.is_empty());
    }

    #[test]
    fn dtds_and_entities_are_refused() {
        let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n \
                      <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n]>\n\
                      <epcis:EPCISDocument xmlns:epcis=\"urn:epcglobal:epcis:xsd:2\" schemaVersion=\"2.0\" \
                      creationDate=\"2024-01-01T00:00:00Z\"><x>&lol2;</x></epcis:EPCISDocument>";
        let error = fatal(&read_str(laughs)).clone();
        assert_eq!(error.line, 2);
        assert!(
            error
                .message
                .contains("DOCTYPE with an internal subset or external DTD is refused"),
            "{error}"
        );
        let external = "<!DOCTYPE EPCISDocument SYSTEM \"http://evil.example/epcis.dtd\">\n<x/>";
        assert!(fatal(&read_str(external)).message.contains("DOCTYPE"));
        let entity = doc(&object_event("<eventID>&ent;</eventID>"));
        let error = fatal(&read_str(&entity)).clone();
        assert!(error.message.contains("undefined entity &ent;"), "{error}");
        assert_eq!(error.kind, XmlErrorKind::Syntax);
        // A bare DOCTYPE (as in GS1's examples) declares nothing and is tolerated, but not late.
        let bare = format!(
            "<!DOCTYPE project>\n{}",
            doc("").trim_start_matches("<?xml version=\"1.0\"?>\n")
        );
        assert!(read_str(&bare).errors.is_empty());
        let late = doc("").replace("<EventList>", "<EventList><!DOCTYPE x>");
        assert!(fatal(&read_str(&late)).message.contains("DOCTYPE"));
    }

    #[test]
    fn not_well_formed_input_is_a_syntax_error() {
        let cases: &[(&str, &str)] = &[
            (
                "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><x/>",
                "encoding 'ISO-8859-1' is not supported",
            ),
            ("junk<x/>", "text before the root element"),
            (
                "<epcis:EPCISDocument xmlns:epcis=\"urn:epcglobal:epcis:xsd:2\" schemaVersion=\"2.0\" creationDate=\"2024-01-01T00:00:00Z\"/><again/>",
                "after the end of the root element",
            ),
            (
                "<epcis:EPCISDocument xmlns:epcis=\"urn:epcglobal:epcis:xsd:2\" schemaVersion=\"2.0\" creationDate=\"2024-01-01T00:00:00Z\"></x>",
                "not well-formed XML",
            ),
            (
                "<nope:EPCISDocument/>",
                "namespace prefix 'nope' of <nope:EPCISDocument> is not declared",
            ),
            ("<a b=\"1\" b=\"2\"/>", "invalid attribute"),
        ];
        for &(xml, fragment) in cases {
            let outcome = read_str(xml);
            let error = fatal(&outcome);
            assert!(
                error.message.contains(fragment),
                "{xml}: got '{error}', want '{fragment}'"
            );
            assert_eq!(error.kind, XmlErrorKind::Syntax, "{xml}: {error}");
        }
        let mut garbage = vec![0u8; 4096];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for byte in &mut garbage {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = (state >> 24) as u8;
        }
        assert!(!read_bytes(&garbage).errors.is_empty());
        assert!(
            !read_bytes(&[0xFF, 0xFE, b'<', 0, b'x', 0, b'/', 0, b'>', 0])
                .errors
                .is_empty()
        );
    }

    #[test]
    fn limits_bound_depth_text_items_and_namespaces() {
        let deep = format!("{}{}", "<ex:a>".repeat(100), "</ex:a>".repeat(100));
        let error = fatal(&read_str(&doc(&object_event(&deep)))).clone();
        assert_eq!(error.kind, XmlErrorKind::Limit);
        assert!(
            error.message.contains("nested deeper than 64 levels"),
            "{error}"
        );

        let small = Limits {
            max_depth: 64,
            max_text_bytes: 1000,
            max_item_bytes: 20_000,
            max_namespaces: 8,
        };
        let read_small = |xml: &str| read_with(EpcisXmlReader::with_limits(xml.as_bytes(), small));
        let long_text = doc(&object_event(&format!("<ex:t>{}</ex:t>", "x".repeat(5000))));
        assert!(
            fatal(&read_small(&long_text))
                .message
                .contains("longer than 1000 bytes")
        );
        // Text split by references and CDATA is bounded as a whole.
        let split_text = doc(&object_event(&format!(
            "<ex:t>{}</ex:t>",
            "abcdefghi&amp;".repeat(150)
        )));
        let error = fatal(&read_small(&split_text)).clone();
        assert!(
            error
                .message
                .contains("text of one element is longer than 1000 bytes"),
            "{error}"
        );
        let long_comment = doc(&format!("<!--{}-->", "c".repeat(5000)));
        assert!(
            fatal(&read_small(&long_comment))
                .message
                .contains("single XML token")
        );
        let epcs = "<epc>urn:epc:id:sgtin:0614141.107346.1234567</epc>".repeat(1000);
        let big_event = doc(&object_event(&format!(
            "<ilmd><ex:x>{}</ex:x></ilmd>",
            epcs.replace("epc>", "ex:e>")
        )));
        let error = fatal(&read_small(&big_event)).clone();
        assert!(
            error.message.contains("longer than 20000 bytes of XML"),
            "{error}"
        );
        let namespaces: String = (0..20)
            .map(|i| format!(" xmlns:p{i}=\"urn:p:{i}\""))
            .collect();
        let many = doc("").replace("<EPCISBody>", &format!("<EPCISBody{namespaces}>"));
        assert!(
            fatal(&read_small(&many))
                .message
                .contains("more than 8 namespace prefixes")
        );
    }

    #[test]
    fn streams_a_large_document_without_holding_it() {
        /// Produces a document with `events` events on the fly.
        struct Generated {
            events: usize,
            next: usize,
            pending: Vec<u8>,
            done: bool,
        }
        impl Read for Generated {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.pending.is_empty() && !self.done {
                    let chunk = if self.next == 0 {
                        doc("")
                            .split("</EventList>")
                            .next()
                            .unwrap_or_default()
                            .to_owned()
                    } else if self.next <= self.events {
                        object_event(&format!("<ex:n>{}</ex:n>", self.next)) + "\n"
                    } else {
                        self.done = true;
                        "</EventList></EPCISBody></epcis:EPCISDocument>\n".to_owned()
                    };
                    self.next += 1;
                    self.pending = chunk.into_bytes();
                }
                let n = self.pending.len().min(out.len());
                out[..n].copy_from_slice(&self.pending[..n]);
                self.pending.drain(..n);
                Ok(n)
            }
        }
        let events = 20_000;
        let source = std::io::BufReader::new(Generated {
            events,
            next: 0,
            pending: Vec::new(),
            done: false,
        });
        let mut reader = EpcisXmlReader::new(source);
        let mut count = 0;
        while let Some(item) = reader.next_item().unwrap_or_else(|e| panic!("{e}")) {
            if let XmlItem::Event { value, index, .. } = item {
                assert_eq!(value["ex:n"], (index + 1).to_string());
                count += 1;
            }
        }
        assert_eq!(count, events);
    }

    // --------------------------------------------------------------------------------------------
    // Lexical helpers
    // --------------------------------------------------------------------------------------------

    #[test]
    fn date_times_follow_xsd_date_time_stamp_and_rfc_3339() {
        for ok in [
            "2005-04-03T20:33:31.116-06:00",
            "2020-07-03T09:00:00.0Z",
            "2024-02-29T23:59:59Z",
            "2000-02-29T00:00:00+14:00",
            "2019-11-01T14:00:00.000000001+01:00",
        ] {
            assert!(is_date_time_stamp(ok), "{ok}");
        }
        for bad in [
            "2005-13-03T20:33:31Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T23:60:00Z",
            "2024-01-01T23:59:60Z",
            "2024-01-01T00:00:00",
            "2024-01-01t00:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+15:00",
            "2024-01-01T00:00:00+14:30",
            "12024-01-01T00:00:00Z",
            "-2024-01-01T00:00:00Z",
            "2024-1-01T00:00:00Z",
            "2024-01-01T00:00:00Zjunk",
            "",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert!(!is_date_time_stamp(bad), "{bad}");
        }
        assert!(is_time_zone_offset("-14:00") && is_time_zone_offset("+05:45"));
        assert!(
            !is_time_zone_offset("Z")
                && !is_time_zone_offset("+5:00")
                && !is_time_zone_offset("+14:01")
        );
    }

    #[test]
    fn numbers_follow_xsd_decimal_and_double() {
        let n = |v: Option<Number>| v.map(Value::Number);
        assert_eq!(n(decimal_number("200")), Some(serde_json::json!(200)));
        assert_eq!(n(decimal_number("25.0")), Some(serde_json::json!(25)));
        assert_eq!(n(decimal_number("200.5")), Some(serde_json::json!(200.5)));
        assert_eq!(n(decimal_number("-.5")), Some(serde_json::json!(-0.5)));
        assert_eq!(n(decimal_number("5.")), Some(serde_json::json!(5)));
        assert_eq!(
            n(decimal_number("99999999999999999999")),
            Some(serde_json::json!(1e20))
        );
        for bad in [
            "", ".", "+", "1e3", "INF", "NaN", "1,5", " 1", "0x10", "1.2.3",
        ] {
            assert!(decimal_number(bad).is_none(), "{bad}");
        }
        assert_eq!(n(double_number("1.5E2")), Some(serde_json::json!(150)));
        assert_eq!(n(double_number("-0.005")), Some(serde_json::json!(-0.005)));
        for bad in ["INF", "-INF", "NaN", "1e999", "1e", "e5", "inf", "infinity"] {
            assert!(double_number(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn cbv_values_become_bare_words() {
        let cases = [
            (
                "urn:epcglobal:cbv:bizstep:shipping",
                &BIZ_STEP,
                Ok("shipping"),
            ),
            (
                "https://ref.gs1.org/cbv/BizStep-receiving",
                &BIZ_STEP,
                Ok("receiving"),
            ),
            (
                "https://ref.gs1.org/cbv/Bizstep-sensor_reporting",
                &BIZ_STEP,
                Ok("sensor_reporting"),
            ),
            (
                "http://epcis.example.org/hc/bizstep/summarising_discharge",
                &BIZ_STEP,
                Ok("http://epcis.example.org/hc/bizstep/summarising_discharge"),
            ),
            (
                "https://ref.gs1.org/cbv/BizStep-flying",
                &BIZ_STEP,
                Ok("https://ref.gs1.org/cbv/BizStep-flying"),
            ),
            ("urn:epcglobal:cbv:bizstep:flying", &BIZ_STEP, Err(())),
            ("https://ns.gs1.org/cbv/BizStep-flying", &BIZ_STEP, Err(())),
            (
                "urn:epcglobal:cbv:disp:in_transit",
                &DISPOSITION,
                Ok("in_transit"),
            ),
            (
                "urn:epcglobal:cbv:btt:desadv",
                &BIZ_TRANSACTION_TYPE,
                Ok("desadv"),
            ),
            (
                "urn:epcglobal:cbv:sdt:owning_party",
                &SOURCE_DEST_TYPE,
                Ok("owning_party"),
            ),
            (
                "urn:epcglobal:cbv:er:incorrect_data",
                &ERROR_REASON,
                Ok("incorrect_data"),
            ),
            ("gs1:Temperature", &MEASUREMENT_TYPE, Ok("Temperature")),
            (
                "gs1:Molar_concentration",
                &MEASUREMENT_TYPE,
                Ok("gs1:Molar_concentration"),
            ),
            ("https://gs1.org/voc/Flavour", &MEASUREMENT_TYPE, Err(())),
            (
                "gs1:ERROR_CONDITION",
                &SENSOR_ALERT_TYPE,
                Ok("ERROR_CONDITION"),
            ),
            ("cbv:Comp-latitude", &COMPONENT, Ok("latitude")),
            ("example:x", &COMPONENT, Ok("example:x")),
        ];
        for (value, vocabulary, expected) in cases {
            let got = normalize_cbv(value, vocabulary);
            match expected {
                Ok(word) => assert_eq!(got.as_deref(), Ok(word), "{value}"),
                Err(()) => assert!(got.is_err(), "{value}: {got:?}"),
            }
        }
    }

    // --------------------------------------------------------------------------------------------
    // Fuzzing: random mutations of real documents never panic and always terminate
    // --------------------------------------------------------------------------------------------

    fn mutation_seeds() -> Vec<Vec<u8>> {
        let files = [
            "WithFullCombinationOfFields/transformation_event_all_possible_fields.xml",
            "WithSensorData/SensorDataExamples.xml",
            "Mimasu/Example-masterData.xml",
        ];
        let mut seeds: Vec<Vec<u8>> = files
            .iter()
            .map(|f| {
                let path = fixtures().join("xml").join(f);
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            })
            .collect();
        seeds.push(EPCIS_1_2.as_bytes().to_vec());
        seeds
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn random_mutations_never_panic(
            seed in 0usize..4,
            edits in proptest::collection::vec((0.0f64..1.0, 0u8..4, proptest::num::u8::ANY), 1..12),
        ) {
            let seeds = mutation_seeds();
            let mut bytes = seeds[seed].clone();
            for (at, op, byte) in edits {
                // at < 1.0, so the position is in range (and bytes is never empty when indexing).
                let i = ((at * bytes.len() as f64) as usize).min(bytes.len().saturating_sub(1));
                match op {
                    0 if !bytes.is_empty() => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    2 if !bytes.is_empty() => { bytes.remove(i); }
                    _ => {
                        let structural = [b'<', b'>', b'/', b'&', b'"', b':', b'=', b'\n'];
                        bytes.insert(i, structural[usize::from(byte) % structural.len()]);
                    }
                }
            }
            let outcome = read_bytes(&bytes);
            proptest::prop_assert!(outcome.errors.iter().all(|e| e.line >= 1 && !e.message.is_empty()));
        }
    }
}
