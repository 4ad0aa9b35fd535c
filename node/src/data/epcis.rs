//! EPCIS 2.0 in GSP: how an EPCIS JSON event becomes an [`EventRecord`], how
//! master-data vocabularies become master-data records, and how GSP's own
//! identifiers are written as the URIs EPCIS requires.
//!
//! The XML reader converts XML to the same JSON shape first, so this is the
//! one place where EPCIS semantics are interpreted. Rendering events back to
//! EPCIS JSON is in `data::query::events`.

use crate::data::import::record::{EventRecord, Facility, Machine, Operator, Product, Record};
use crate::data::model::{Action, EpcisType, EventKind, Level, PAYMENT_BTT, Role};
use serde_json::{Map, Value};
use std::fmt::Write as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The JSON-LD context of EPCIS 2.0.
pub const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";
/// GSP's namespace for its EPCIS extension fields (`gsp:machine`, `gsp:shift`, …).
pub const GSP_NS: &str = "urn:gsp:epcis:";
/// The prefix GSP binds to [`GSP_NS`] in every document it writes.
pub const GSP_PREFIX: &str = "gsp";
/// Prefix of event keys GSP derives from content when an event has no eventID.
pub const HASH_KEY_PREFIX: &str = "urn:gsp:event-hash:sha256:";
/// Longest code or identifier accepted.
pub const MAX_CODE_LEN: usize = 512;

/// What kind of GSP identifier a `urn:gsp:…` URI carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A unique identifier (code) that is not itself a URI: `urn:gsp:uid:…`.
    Code,
    /// A facility identifier: `urn:gsp:fid:…`.
    Facility,
    /// An economic operator identifier: `urn:gsp:eo:…`.
    Operator,
    /// A machine identifier: `urn:gsp:mid:…`.
    Machine,
    /// A product identifier: `urn:gsp:pid:…`.
    Product,
    /// A business document number (invoice, order, payment, waybill): `urn:gsp:doc:…`.
    Document,
}

impl IdKind {
    fn prefix(self) -> &'static str {
        match self {
            IdKind::Code => "urn:gsp:uid:",
            IdKind::Facility => "urn:gsp:fid:",
            IdKind::Operator => "urn:gsp:eo:",
            IdKind::Machine => "urn:gsp:mid:",
            IdKind::Product => "urn:gsp:pid:",
            IdKind::Document => "urn:gsp:doc:",
        }
    }
}

/// True when `s` already is an absolute URI (`scheme:rest`, RFC 3986 scheme).
pub fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    !rest.is_empty()
        && !s.contains(char::is_whitespace)
        && scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Writes a GSP identifier as a URI: URIs stay as they are, anything else gets
/// the `urn:gsp:<kind>:` prefix with unsafe characters percent-encoded.
pub fn id_to_uri(kind: IdKind, id: &str) -> String {
    if is_uri(id) {
        return id.to_owned();
    }
    let mut out = String::with_capacity(kind.prefix().len() + id.len());
    out.push_str(kind.prefix());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=@".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The inverse of [`id_to_uri`]: strips GSP's prefix and decodes.
pub fn uri_to_id(kind: IdKind, uri: &str) -> String {
    let Some(rest) = uri.strip_prefix(kind.prefix()) else {
        return uri.to_owned();
    };
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| rest.to_owned())
}

/// The GTIN-14 that a GS1 code carries: an SGTIN EPC URI
/// (`urn:epc:id:sgtin:CompanyPrefix.IndicatorItemRef.Serial`, or the
/// `urn:epc:idpat:sgtin` / `urn:epc:class:lgtin` class forms) or a GS1 Digital
/// Link (`…/01/<gtin>/…`).
pub fn gtin_of(code: &str) -> Option<String> {
    let sgtin = code
        .strip_prefix("urn:epc:id:sgtin:")
        .or_else(|| code.strip_prefix("urn:epc:idpat:sgtin:"))
        .or_else(|| code.strip_prefix("urn:epc:class:lgtin:"));
    if let Some(rest) = sgtin {
        let mut parts = rest.split('.');
        let company = parts.next()?;
        let item = parts.next()?;
        if company.len() + item.len() != 13
            || !company
                .bytes()
                .chain(item.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let (indicator, item_ref) = item.split_at(1);
        let body = format!("{indicator}{company}{item_ref}");
        return Some(format!("{body}{}", gs1_check_digit(&body)));
    }
    if code.starts_with("http://") || code.starts_with("https://") {
        let mut segments = code.split('/');
        while let Some(seg) = segments.next() {
            if seg == "01" {
                let gtin = segments.next()?;
                if gtin.bytes().all(|b| b.is_ascii_digit())
                    && matches!(gtin.len(), 8 | 12 | 13 | 14)
                {
                    return Some(format!("{gtin:0>14}"));
                }
                return None;
            }
        }
    }
    None
}

/// The GS1 mod-10 check digit of a string of digits.
pub fn gs1_check_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    (10 - sum % 10) % 10
}

/// Parses an EPCIS time (RFC 3339 / xsd:dateTime with a zone) to Unix
/// milliseconds and the offset it was written in.
pub fn parse_time(s: &str) -> Result<(i64, String), String> {
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 date-time with a time zone: {e}"))?;
    let ms = i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("{s:?} is out of range"))?;
    Ok((ms, format_offset(t.offset().whole_seconds())))
}

/// Checks an EPCIS `eventTimeZoneOffset` (`+HH:MM` / `-HH:MM`) and returns its seconds.
pub fn parse_offset(s: &str) -> Result<i32, String> {
    let bad = || format!("{s:?} is not a time zone offset like +03:00");
    let b = s.as_bytes();
    if b.len() != 6 || !matches!(b[0], b'+' | b'-') || b[3] != b':' {
        return Err(bad());
    }
    let h: i32 = s[1..3].parse().map_err(|_| bad())?;
    let m: i32 = s[4..6].parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(if b[0] == b'-' {
        -(h * 3600 + m * 60)
    } else {
        h * 3600 + m * 60
    })
}

fn format_offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
}

/// Formats Unix milliseconds as an RFC 3339 time in the given offset.
pub fn format_time(ms: i64, offset: &str) -> String {
    let secs = parse_offset(offset).unwrap_or(0);
    let offset = time::UtcOffset::from_whole_seconds(secs).unwrap_or(time::UtcOffset::UTC);
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    );
    if secs == 0 {
        format!("{base}Z")
    } else {
        format!("{base}{}", format_offset(secs))
    }
}

/// The last word of a CBV value in any of its forms (`shipping`,
/// `urn:epcglobal:cbv:bizstep:shipping`, `https://ref.gs1.org/cbv/BizStep-shipping`).
pub fn cbv_word(value: &str) -> &str {
    if let Some(i) = value.rfind(['-', ':']).filter(|_| value.contains("cbv")) {
        &value[i + 1..]
    } else {
        value
    }
}

/// The JSON-LD context of one input document, as far as the importer needs it.
#[derive(Debug, Clone, Default)]
pub struct DocContext {
    /// Terms the document defines (prefix → IRI), other than EPCIS's own.
    pub terms: Map<String, Value>,
}

impl DocContext {
    /// Reads a document's `@context`. Refuses a document that binds `gsp` to
    /// something other than GSP's namespace, since GSP's own fields use it.
    pub fn from_json(value: &Value) -> Result<DocContext, String> {
        let mut terms = Map::new();
        let items: Vec<&Value> = match value {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for item in items {
            match item {
                Value::String(_) => {}
                Value::Object(map) => {
                    for (k, v) in map {
                        terms.insert(k.clone(), v.clone());
                    }
                }
                _ => return Err("@context entries must be URIs or objects".into()),
            }
        }
        if let Some(v) = terms.get(GSP_PREFIX)
            && v.as_str() != Some(GSP_NS)
        {
            return Err(format!(
                "the prefix \"gsp\" is reserved for {GSP_NS}; this document binds it to {v}"
            ));
        }
        Ok(DocContext { terms })
    }
}

/// A problem with one field of an EPCIS document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer to the field.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

fn field_err(base: &str, field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        pointer: if field.is_empty() {
            base.to_owned()
        } else {
            format!("{base}/{field}")
        },
        message: message.into(),
    }
}

fn take_str(
    obj: &mut Map<String, Value>,
    ptr: &str,
    field: &str,
) -> Result<Option<String>, FieldError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(field_err(ptr, field, "must be a string")),
    }
}

fn take_id_object(
    obj: &mut Map<String, Value>,
    ptr: &str,
    field: &str,
) -> Result<Option<String>, FieldError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            let id = match m.get("id") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                _ => {
                    return Err(field_err(
                        ptr,
                        &format!("{field}/id"),
                        "must be a non-empty string",
                    ));
                }
            };
            if m.len() > 1 {
                // Extension fields inside readPoint/bizLocation: keep the whole
                // object in the stored document; rendering prefers it.
                obj.insert(field.to_owned(), Value::Object(m));
            }
            Ok(Some(id))
        }
        Some(_) => Err(field_err(ptr, field, "must be an object with an \"id\"")),
    }
}

fn take_codes(
    obj: &mut Map<String, Value>,
    ptr: &str,
    field: &str,
    role: Role,
    out: &mut Vec<(Role, String)>,
) -> Result<(), FieldError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::String(s) if !s.is_empty() && s.len() <= MAX_CODE_LEN => {
                        out.push((role, uri_to_id(IdKind::Code, &s)));
                    }
                    Value::String(_) => {
                        return Err(field_err(
                            ptr,
                            &format!("{field}/{i}"),
                            format!("must be 1 to {MAX_CODE_LEN} characters"),
                        ));
                    }
                    _ => {
                        return Err(field_err(
                            ptr,
                            &format!("{field}/{i}"),
                            "must be a string (an EPC URI)",
                        ));
                    }
                }
            }
            Ok(())
        }
        Some(_) => Err(field_err(ptr, field, "must be an array of EPC URIs")),
    }
}

/// Turns one EPCIS 2.0 JSON event (at JSON pointer `ptr`) into an event record.
pub fn event_from_json(value: Value, ptr: &str) -> Result<EventRecord, FieldError> {
    let Value::Object(mut obj) = value else {
        return Err(field_err(ptr, "", "an event must be a JSON object"));
    };
    let original_for_hash = Value::Object(obj.clone());
    let type_name =
        take_str(&mut obj, ptr, "type")?.ok_or_else(|| field_err(ptr, "type", "is required"))?;
    let epcis_type = EpcisType::parse(&type_name).filter(|t| t.as_str() == type_name).ok_or_else(|| {
        field_err(
            ptr,
            "type",
            format!("{type_name:?} is not an EPCIS 2.0 event type (ObjectEvent, AggregationEvent, TransactionEvent, TransformationEvent, AssociationEvent)"),
        )
    })?;
    let time_text = take_str(&mut obj, ptr, "eventTime")?
        .ok_or_else(|| field_err(ptr, "eventTime", "is required"))?;
    let (time_ms, written_offset) =
        parse_time(&time_text).map_err(|m| field_err(ptr, "eventTime", m))?;
    let tz_offset = match take_str(&mut obj, ptr, "eventTimeZoneOffset")? {
        Some(tz) => {
            parse_offset(&tz).map_err(|m| field_err(ptr, "eventTimeZoneOffset", m))?;
            tz
        }
        None => written_offset,
    };
    let action = match take_str(&mut obj, ptr, "action")? {
        Some(a) => Some(
            Action::parse(&a)
                .filter(|x| x.as_str() == a)
                .ok_or_else(|| {
                    field_err(
                        ptr,
                        "action",
                        format!("{a:?} is not ADD, OBSERVE or DELETE"),
                    )
                })?,
        ),
        None if epcis_type == EpcisType::Transformation => None,
        None => {
            return Err(field_err(
                ptr,
                "action",
                format!("is required for a {type_name}"),
            ));
        }
    };
    let event_id = take_str(&mut obj, ptr, "eventID")?;
    if let Some(id) = &event_id
        && !is_uri(id)
    {
        return Err(field_err(ptr, "eventID", format!("{id:?} is not a URI")));
    }
    let parent = take_str(&mut obj, ptr, "parentID")?.map(|p| uri_to_id(IdKind::Code, &p));
    if parent
        .as_ref()
        .is_some_and(|p| p.is_empty() || p.len() > MAX_CODE_LEN)
    {
        return Err(field_err(
            ptr,
            "parentID",
            format!("must be 1 to {MAX_CODE_LEN} characters"),
        ));
    }
    let mut codes = Vec::new();
    take_codes(&mut obj, ptr, "epcList", Role::Epc, &mut codes)?;
    take_codes(&mut obj, ptr, "childEPCs", Role::Child, &mut codes)?;
    take_codes(&mut obj, ptr, "inputEPCList", Role::Input, &mut codes)?;
    take_codes(&mut obj, ptr, "outputEPCList", Role::Output, &mut codes)?;
    let biz_step = take_str(&mut obj, ptr, "bizStep")?;
    let disposition = take_str(&mut obj, ptr, "disposition")?;
    let read_point = take_id_object(&mut obj, ptr, "readPoint")?;
    let biz_location = take_id_object(&mut obj, ptr, "bizLocation")?;
    obj.remove("@context");

    let gsp = |field: &str| format!("{GSP_PREFIX}:{field}");
    let machine = obj
        .get(&gsp("machine"))
        .and_then(Value::as_str)
        .map(|m| uri_to_id(IdKind::Machine, m));
    let product = obj
        .get(&gsp("product"))
        .and_then(Value::as_str)
        .map(|p| uri_to_id(IdKind::Product, p));
    let level_of = |field: &str| -> Result<Option<Level>, FieldError> {
        match obj.get(&gsp(field)) {
            None => Ok(None),
            Some(Value::String(l)) => Level::parse(l).map(Some).ok_or_else(|| {
                field_err(
                    ptr,
                    &gsp(field),
                    format!("{l:?} is not unit, carton, case or pallet"),
                )
            }),
            Some(_) => Err(field_err(ptr, &gsp(field), "must be a string")),
        }
    };
    let level = level_of("level")?;
    let parent_level = level_of("parentLevel")?;

    let kind = classify(
        epcis_type,
        action,
        biz_step.as_deref(),
        obj.get("bizTransactionList"),
    );
    let key = match event_id {
        Some(id) => id,
        None => content_key(&original_for_hash),
    };
    Ok(EventRecord {
        key,
        kind,
        epcis_type,
        action,
        time_ms,
        tz_offset,
        biz_step,
        disposition,
        read_point,
        biz_location: biz_location.map(|b| uri_to_id(IdKind::Facility, &b)),
        facility: None,
        machine,
        product,
        parent,
        level,
        parent_level,
        codes,
        doc: obj,
    })
}

/// GSP's event kind for an EPCIS event (the mapping in `data/MODEL.md`).
pub fn classify(
    t: EpcisType,
    action: Option<Action>,
    biz_step: Option<&str>,
    btl: Option<&Value>,
) -> EventKind {
    let step = biz_step.map(cbv_word).unwrap_or("");
    match (t, action) {
        (EpcisType::Object, Some(Action::Add)) => EventKind::Application,
        (EpcisType::Object, Some(Action::Delete)) => EventKind::Deactivation,
        (EpcisType::Object, _) => match step {
            "shipping" | "departing" => EventKind::Dispatch,
            "receiving" | "arriving" | "accepting" => EventKind::Arrival,
            "transporting" | "loading" | "unloading" => EventKind::Transloading,
            "decommissioning" | "destroying" => EventKind::Deactivation,
            _ => EventKind::Other,
        },
        (EpcisType::Aggregation, Some(Action::Add)) => EventKind::Aggregation,
        (EpcisType::Aggregation, Some(Action::Delete)) => EventKind::Disaggregation,
        (EpcisType::Transaction, _) => {
            let types: Vec<&str> = btl
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|b| b.get("type").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            if types.iter().any(|t| cbv_word(t) == "inv") {
                EventKind::Invoice
            } else if types.iter().any(|t| cbv_word(t) == "po") {
                EventKind::Order
            } else if types.contains(&PAYMENT_BTT) {
                EventKind::Payment
            } else {
                EventKind::Other
            }
        }
        _ => EventKind::Other,
    }
}

/// A stable key for an event without an eventID: SHA-256 over its JSON with
/// object keys sorted (so key order and whitespace in the file do not matter).
pub fn content_key(event: &Value) -> String {
    fn canonical(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*k).clone()).to_string());
                    out.push(':');
                    canonical(&m[k.as_str()], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(event, &mut text);
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    format!("{HASH_KEY_PREFIX}{}", hex::encode(digest.as_ref()))
}

/// Vocabulary types GSP keeps as master data.
pub mod vtype {
    /// CBV business locations: facilities.
    pub const BUSINESS_LOCATION: &str = "urn:epcglobal:epcis:vtype:BusinessLocation";
    /// CBV read points: kept as facilities of kind "read point".
    pub const READ_POINT: &str = "urn:epcglobal:epcis:vtype:ReadPoint";
    /// CBV EPC classes: products.
    pub const EPC_CLASS: &str = "urn:epcglobal:epcis:vtype:EPCClass";
    /// GSP economic operators.
    pub const OPERATOR: &str = "urn:gsp:vtype:EconomicOperator";
    /// GSP machines.
    pub const MACHINE: &str = "urn:gsp:vtype:Machine";
}

/// Turns an EPCIS master-data vocabulary (`{"type", "vocabularyElementList"}`)
/// into master-data records. Unknown vocabulary types are refused: GSP would
/// otherwise drop them silently.
pub fn vocabulary_to_records(
    vocab: &Value,
    ptr: &str,
) -> Result<Vec<(Record, String)>, FieldError> {
    let vtype = vocab
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| field_err(ptr, "type", "a vocabulary needs a type URI"))?;
    let elements = match vocab.get("vocabularyElementList") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(field_err(ptr, "vocabularyElementList", "must be an array")),
    };
    let mut out = Vec::with_capacity(elements.len());
    for (i, el) in elements.iter().enumerate() {
        let eptr = format!("{ptr}/vocabularyElementList/{i}");
        let id = el
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| field_err(&eptr, "id", "is required"))?;
        let mut attrs = Map::new();
        if let Some(list) = el.get("attributes") {
            let Some(list) = list.as_array() else {
                return Err(field_err(&eptr, "attributes", "must be an array"));
            };
            for (j, a) in list.iter().enumerate() {
                let aid = a.get("id").and_then(Value::as_str).ok_or_else(|| {
                    field_err(&eptr, &format!("attributes/{j}/id"), "is required")
                })?;
                attrs.insert(
                    aid.to_owned(),
                    a.get("attribute").cloned().unwrap_or(Value::Null),
                );
            }
        }
        if let Some(children) = el.get("children") {
            attrs.insert("children".into(), children.clone());
        }
        let text = |attrs: &Map<String, Value>, names: &[&str]| -> Option<String> {
            names.iter().find_map(|n| {
                attrs
                    .iter()
                    .find(|(k, _)| attribute_is(k, n))
                    .and_then(|(_, v)| v.as_str().map(str::to_owned))
            })
        };
        let record = match vtype {
            vtype::BUSINESS_LOCATION | vtype::READ_POINT => Record::Facility(Facility {
                ext_id: uri_to_id(IdKind::Facility, id),
                operator: text(&attrs, &["operator"]).map(|o| uri_to_id(IdKind::Operator, &o)),
                name: text(&attrs, &["name"]).unwrap_or_else(|| id.to_owned()),
                kind: Some(if vtype == vtype::READ_POINT {
                    "read point".into()
                } else {
                    text(&attrs, &["kind"]).unwrap_or_else(|| "location".into())
                }),
                country: text(&attrs, &["countryCode", "country"]),
                address: address_of(&attrs),
                extra: Some(attrs),
            }),
            vtype::EPC_CLASS => Record::Product(Product {
                ext_id: uri_to_id(IdKind::Product, id),
                operator: text(&attrs, &["operator"]).map(|o| uri_to_id(IdKind::Operator, &o)),
                description: text(
                    &attrs,
                    &[
                        "descriptionShort",
                        "regulatedProductName",
                        "tradeItemDescription",
                        "description",
                    ],
                )
                .unwrap_or_else(|| id.to_owned()),
                brand: text(&attrs, &["brandName", "brand"]),
                gtin: text(&attrs, &["gtin"]).or_else(|| gtin_of(id)),
                intended_market: text(&attrs, &["intendedMarket"]),
                category: text(&attrs, &["category"]),
                extra: Some(attrs),
            }),
            vtype::OPERATOR => Record::Operator(Operator {
                ext_id: uri_to_id(IdKind::Operator, id),
                name: text(&attrs, &["name"]).unwrap_or_else(|| id.to_owned()),
                country: text(&attrs, &["countryCode", "country"]),
                address: address_of(&attrs),
                roles: text(&attrs, &["roles"]),
                licence: text(&attrs, &["licence"]),
                tax_id: text(&attrs, &["taxId"]),
                extra: Some(attrs),
            }),
            vtype::MACHINE => Record::Machine(Machine {
                ext_id: uri_to_id(IdKind::Machine, id),
                facility: text(&attrs, &["facility"]).map(|f| uri_to_id(IdKind::Facility, &f)),
                model: text(&attrs, &["model"]),
                capacity_per_min: attrs
                    .iter()
                    .find(|(k, _)| attribute_is(k, "capacityPerMinute"))
                    .and_then(|(_, v)| {
                        v.as_i64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    }),
                extra: Some(attrs),
            }),
            other => {
                return Err(field_err(
                    ptr,
                    "type",
                    format!(
                        "master-data vocabulary {other:?} is not kept by GSP (it keeps business locations, read points, EPC classes, economic operators and machines)"
                    ),
                ));
            }
        };
        out.push((record, eptr));
    }
    Ok(out)
}

/// True when a master-data attribute id names `name`: the bare name, or a
/// URI ending in `#name`, `/name` or `:name` (CBV `urn:epcglobal:cbv:mda#city`,
/// GS1 web vocabulary, GSP's `urn:gsp:mda:intendedMarket`).
fn attribute_is(key: &str, name: &str) -> bool {
    key == name
        || key
            .strip_suffix(name)
            .is_some_and(|p| p.ends_with(['#', '/', ':']))
}

fn address_of(attrs: &Map<String, Value>) -> Option<String> {
    let parts: Vec<&str> = [
        "streetAddressOne",
        "streetAddressTwo",
        "city",
        "state",
        "postalCode",
        "address",
    ]
    .iter()
    .filter_map(|n| {
        attrs
            .iter()
            .find(|(k, _)| attribute_is(k, n))
            .and_then(|(_, v)| v.as_str())
    })
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gtins_from_sgtin_and_digital_link() {
        assert_eq!(
            gtin_of("urn:epc:id:sgtin:0614141.107346.2017").as_deref(),
            Some("10614141073464")
        );
        assert_eq!(
            gtin_of("https://id.gs1.org/01/09521568251204/21/10").as_deref(),
            Some("09521568251204")
        );
        assert_eq!(gtin_of("KEN1ABCDEF"), None);
        assert_eq!(gtin_of("urn:epc:id:sgtin:06.1"), None);
    }

    #[test]
    fn plain_codes_become_uris_and_back() {
        for code in ["KEN1ABCDEFGH2345", "a b/c%d", "EU\u{e9}x"] {
            let uri = id_to_uri(IdKind::Code, code);
            assert!(is_uri(&uri), "{uri}");
            assert_eq!(uri_to_id(IdKind::Code, &uri), code);
        }
        assert_eq!(
            id_to_uri(IdKind::Code, "urn:epc:id:sgtin:0614141.107346.2017"),
            "urn:epc:id:sgtin:0614141.107346.2017"
        );
        // A truncated escape is kept as text, never a panic.
        assert_eq!(uri_to_id(IdKind::Code, "urn:gsp:uid:AB%4"), "AB%4");
    }

    #[test]
    fn times_round_trip_in_their_offset() {
        let (ms, tz) = parse_time("2005-04-03T20:33:31.116-06:00").unwrap();
        assert_eq!(tz, "-06:00");
        assert_eq!(format_time(ms, &tz), "2005-04-03T20:33:31.116-06:00");
        let (ms, tz) = parse_time("2013-06-08T14:58:56.591Z").unwrap();
        assert_eq!(format_time(ms, &tz), "2013-06-08T14:58:56.591Z");
        assert!(parse_time("2005-13-03T20:33:31Z").is_err());
        assert!(parse_time("2005-04-03T20:33:31").is_err());
        assert!(parse_offset("+3:00").is_err());
        assert!(parse_offset("+15:00").is_err());
    }

    #[test]
    fn events_are_classified_as_eu_events() {
        let ev = |v: Value| event_from_json(v, "/e").unwrap();
        let base = json!({"eventTime": "2024-01-01T00:00:00Z", "eventTimeZoneOffset": "+00:00"});
        let with = |extra: Value| {
            let mut v = base.clone();
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        assert_eq!(
            ev(with(
                json!({"type": "ObjectEvent", "action": "ADD", "epcList": ["urn:gsp:uid:A"]})
            ))
            .kind,
            EventKind::Application
        );
        assert_eq!(ev(with(json!({"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "urn:epcglobal:cbv:bizstep:shipping"}))).kind, EventKind::Dispatch);
        assert_eq!(
            ev(with(
                json!({"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "receiving"})
            ))
            .kind,
            EventKind::Arrival
        );
        assert_eq!(
            ev(with(
                json!({"type": "AggregationEvent", "action": "DELETE", "parentID": "p"})
            ))
            .kind,
            EventKind::Disaggregation
        );
        assert_eq!(
            ev(with(json!({"type": "TransactionEvent", "action": "ADD", "bizTransactionList": [{"type": "inv", "bizTransaction": "urn:x:1"}]}))).kind,
            EventKind::Invoice
        );
        let e = ev(with(
            json!({"type": "ObjectEvent", "action": "ADD", "epcList": ["urn:gsp:uid:KEN1%20X"]}),
        ));
        assert_eq!(e.codes, vec![(Role::Epc, "KEN1 X".to_owned())]);
        assert!(e.key.starts_with(HASH_KEY_PREFIX));
    }

    #[test]
    fn bad_events_name_the_field() {
        let cases = [
            (json!([1]), "/e", "JSON object"),
            (
                json!({"type": "Thing"}),
                "/e/type",
                "not an EPCIS 2.0 event type",
            ),
            (
                json!({"type": "ObjectEvent", "action": "ADD"}),
                "/e/eventTime",
                "required",
            ),
            (
                json!({"type": "ObjectEvent", "eventTime": "yesterday", "action": "ADD"}),
                "/e/eventTime",
                "RFC 3339",
            ),
            (
                json!({"type": "ObjectEvent", "eventTime": "2024-01-01T00:00:00Z"}),
                "/e/action",
                "required",
            ),
            (
                json!({"type": "ObjectEvent", "eventTime": "2024-01-01T00:00:00Z", "action": "add"}),
                "/e/action",
                "ADD",
            ),
            (
                json!({"type": "ObjectEvent", "eventTime": "2024-01-01T00:00:00Z", "action": "ADD", "epcList": [7]}),
                "/e/epcList/0",
                "string",
            ),
            (
                json!({"type": "ObjectEvent", "eventTime": "2024-01-01T00:00:00Z", "action": "ADD", "eventID": "not a uri"}),
                "/e/eventID",
                "URI",
            ),
        ];
        for (value, pointer, words) in cases {
            let err = event_from_json(value.clone(), "/e").unwrap_err();
            assert_eq!(err.pointer, pointer, "{value}");
            assert!(err.message.contains(words), "{value}: {}", err.message);
        }
    }

    #[test]
    fn the_gsp_prefix_is_reserved() {
        assert!(DocContext::from_json(&json!([EPCIS_CONTEXT, {"gsp": GSP_NS}])).is_ok());
        assert!(DocContext::from_json(&json!([EPCIS_CONTEXT, {"gsp": "http://other/"}])).is_err());
    }
}
