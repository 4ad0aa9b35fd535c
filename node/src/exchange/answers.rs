//! Answers built from this node's data, in the templates' answer shapes:
//! `uid-verification` (sent automatically under that policy) and
//! `supply-chain-trace` (a draft an officer reviews before sending).
//!
//! Only what the data supports is filled in; a location is given only when
//! its country is known as an ISO 3166-1 alpha-3 code, as the schemas require.

use crate::data::model::EventKind;
use crate::data::query::bulk::{
    CodeVerdict, LookupCache, Manufacture, VerdictStatus, bulk_lookup_with,
};
use crate::data::query::trace::{HistoryItem, trace};
use crate::data::query::{FacilityInfo, QueryError};
use crate::storage::DbConnection;
use crate::storage::Direct as _;
use crate::storage::schema::{facilities, operators};
use diesel::prelude::*;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// An attachment produced with an answer.
#[derive(Debug, Clone)]
pub struct BuiltAttachment {
    /// File name.
    pub name: String,
    /// Media type.
    pub media_type: String,
    /// Content.
    pub bytes: Vec<u8>,
}

/// The template fields of an answer, and the attachment that carries its
/// results when they are too many to send inline.
#[derive(Debug, Clone)]
pub struct BuiltAnswer {
    /// Template-specific answer fields (`results` or `results_attachment`, `summary`).
    pub fields: Map<String, Value>,
    /// The results attachment, if any; `fields` refers to it.
    pub attachment: Option<BuiltAttachment>,
}

/// Media type of a gzip-compressed NDJSON results attachment.
pub const RESULTS_MEDIA_TYPE: &str = "application/gzip";

fn is_country(c: &str) -> bool {
    c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())
}

fn location(f: &FacilityInfo) -> Option<Value> {
    let country = f.country.as_deref().filter(|c| is_country(c))?;
    let mut m = Map::new();
    m.insert("country".into(), json!(country));
    if let Some(a) = f.address.as_deref().filter(|a| !a.is_empty()) {
        m.insert("locality".into(), json!(truncate(a, 200)));
    }
    Some(Value::Object(m))
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn date_of(time: &str) -> Option<String> {
    time.get(..10).map(str::to_owned)
}

/// The template's name for a verdict status.
fn status_name(s: VerdictStatus) -> &'static str {
    match s {
        VerdictStatus::Known => "known",
        VerdictStatus::Deactivated => "deactivated",
        VerdictStatus::Unknown => "unknown",
    }
}

/// One uid-verification result (Art. 8.4.1 (a)–(d), (f), (g)).
fn verification_result(v: &CodeVerdict) -> Value {
    let mut m = Map::new();
    m.insert("code".into(), json!(v.code));
    m.insert("status".into(), json!(status_name(v.status)));
    if let Some(r) = &v.record {
        let loc = r.facility.as_ref().and_then(location);
        if let (Some(at), Some(loc)) = (&r.manufactured_at, &loc)
            && let Some(date) = date_of(at)
        {
            m.insert("manufacture".into(), json!({"date": date, "location": loc}));
        }
        if let Some(f) = &r.facility {
            let mut fm = Map::new();
            fm.insert("id".into(), json!(truncate(&f.id, 100)));
            fm.insert("name".into(), json!(truncate(&f.name, 300)));
            if let Some(loc) = loc {
                fm.insert("location".into(), loc);
            }
            m.insert("facility".into(), Value::Object(fm));
        }
        if let Some(mc) = &r.machine {
            let mut mm = Map::new();
            mm.insert("id".into(), json!(truncate(&mc.id, 100)));
            if let Some(model) = mc.model.as_deref().filter(|s| !s.is_empty()) {
                mm.insert("description".into(), json!(truncate(model, 300)));
            }
            m.insert("machine".into(), Value::Object(mm));
        }
        let mut production = Map::new();
        if let Some(s) = &r.shift {
            production.insert("shift".into(), json!(truncate(s, 100)));
        }
        if let Some(at) = &r.manufactured_at {
            production.insert("time".into(), json!(at));
        }
        if !production.is_empty() {
            m.insert("production".into(), Value::Object(production));
        }
        if let Some(p) = &r.product {
            if let Some(market) = p
                .intended_market
                .as_deref()
                .filter(|c| is_country(c) || *c == "EU")
            {
                m.insert("intended_market".into(), json!({"country": market}));
            }
            let mut pm = Map::new();
            pm.insert("description".into(), json!(truncate(&p.description, 1000)));
            if let Some(b) = p.brand.as_deref().filter(|s| !s.is_empty()) {
                pm.insert("brand".into(), json!(truncate(b, 200)));
            }
            if let Some(g) = p
                .gtin
                .as_deref()
                .filter(|g| g.len() == 14 && g.bytes().all(|b| b.is_ascii_digit()))
            {
                pm.insert("gtin".into(), json!(g));
            }
            m.insert("product".into(), Value::Object(pm));
        }
    }
    Value::Object(m)
}

/// The JSON members of a result after `code` and `status` (without braces),
/// rendered once per distinct record: a million codes from a few production
/// runs share a handful of records, so the answer is mostly copying.
fn record_members(v: &CodeVerdict) -> Result<String, String> {
    let Value::Object(mut m) = verification_result(v) else {
        return Ok(String::new());
    };
    m.remove("code");
    m.remove("status");
    let text = serde_json::to_string(&Value::Object(m)).map_err(|e| e.to_string())?;
    Ok(text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or_default()
        .to_owned())
}

/// Gzip-compressed NDJSON of the results for `verdicts`, written line by line
/// (memory: the compressed output plus one rendering per distinct record).
fn gzip_ndjson(verdicts: &[CodeVerdict]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // The encoder does real work on every write: hand it large blocks.
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, gz);
    let mut rendered: rustc_hash::FxHashMap<*const Manufacture, String> =
        rustc_hash::FxHashMap::default();
    let mut line = Vec::with_capacity(1024);
    for v in verdicts {
        line.clear();
        line.extend_from_slice(b"{\"code\":");
        serde_json::to_writer(&mut line, &v.code).map_err(|e| e.to_string())?;
        line.extend_from_slice(b",\"status\":\"");
        line.extend_from_slice(status_name(v.status).as_bytes());
        line.push(b'"');
        if let Some(record) = &v.record {
            let members = match rendered.entry(Arc::as_ptr(record)) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(record_members(v)?),
            };
            if !members.is_empty() {
                line.push(b',');
                line.extend_from_slice(members.as_bytes());
            }
        }
        line.extend_from_slice(b"}\n");
        out.write_all(&line).map_err(|e| e.to_string())?;
    }
    out.into_inner()
        .map_err(|e| e.to_string())?
        .finish()
        .map_err(|e| e.to_string())
}

/// Reads a results attachment back (for exports): gzip NDJSON or plain NDJSON.
pub fn read_results_attachment(media_type: &str, bytes: &[u8]) -> Result<Vec<Value>, String> {
    use std::io::Read;
    let mut text = String::new();
    if media_type == RESULTS_MEDIA_TYPE {
        flate2::read::GzDecoder::new(bytes)
            .take(1 << 31)
            .read_to_string(&mut text)
            .map_err(|e| format!("results attachment: {e}"))?;
    } else {
        text = String::from_utf8(bytes.to_vec())
            .map_err(|_| "results attachment is not UTF-8".to_owned())?;
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("results attachment line {}: {e}", i + 1))
        })
        .collect()
}

/// The uid-verification answer fields for `codes`: results inline up to
/// `inline_max`, otherwise a gzip-compressed NDJSON attachment. `cache` is
/// shared by the answers drafted together.
pub fn uid_verification<S: AsRef<str> + Sync>(
    conn: &mut DbConnection,
    codes: &[S],
    inline_max: usize,
    cache: &mut LookupCache,
) -> Result<BuiltAnswer, QueryError> {
    let verdicts = bulk_lookup_with(conn, codes, cache)?;
    let (mut known, mut unknown, mut deactivated) = (0u64, 0u64, 0u64);
    for v in &verdicts {
        match v.status {
            VerdictStatus::Known => known += 1,
            VerdictStatus::Unknown => unknown += 1,
            VerdictStatus::Deactivated => deactivated += 1,
        }
    }
    let mut fields = Map::new();
    fields.insert(
        "summary".into(),
        json!({"known": known, "unknown": unknown, "deactivated": deactivated}),
    );
    if verdicts.len() <= inline_max {
        let results = verdicts.iter().map(verification_result).collect();
        fields.insert("results".into(), Value::Array(results));
        return Ok(BuiltAnswer {
            fields,
            attachment: None,
        });
    }
    let bytes = gzip_ndjson(&verdicts).map_err(QueryError::BadRequest)?;
    Ok(BuiltAnswer {
        fields,
        attachment: Some(BuiltAttachment {
            name: "results.ndjson.gz".into(),
            media_type: RESULTS_MEDIA_TYPE.into(),
            bytes,
        }),
    })
}

fn operator_name(conn: &mut DbConnection, ext_id: &str) -> QueryResult<Option<String>> {
    operators::table
        .filter(operators::ext_id.eq(ext_id))
        .select(operators::name)
        .first_direct(conn)
        .optional()
}

fn facility_location(conn: &mut DbConnection, ext_id: &str) -> QueryResult<Option<Value>> {
    let row: Option<(String, String, Option<String>, Option<String>)> = facilities::table
        .filter(facilities::ext_id.eq(ext_id))
        .select((
            facilities::ext_id,
            facilities::name,
            facilities::country,
            facilities::address,
        ))
        .first_direct(conn)
        .optional()?;
    Ok(row.and_then(|(id, name, country, address)| {
        location(&FacilityInfo {
            id,
            name,
            kind: None,
            country,
            address,
            operator: None,
            operator_id: None,
        })
    }))
}

fn party(conn: &mut DbConnection, id: &str) -> QueryResult<Value> {
    let name = operator_name(conn, id)?.unwrap_or_else(|| id.to_owned());
    Ok(json!({"name": truncate(&name, 300), "id": truncate(id, 100)}))
}

fn uri_detail(h: &HistoryItem, list: &str, field: &str, kind: &str) -> Option<String> {
    h.details.get(list)?.as_array()?.iter().find_map(|e| {
        (e.get("type")
            .and_then(Value::as_str)
            .map(crate::data::epcis::cbv_word)
            == Some(kind))
        .then(|| e.get(field).and_then(Value::as_str).map(str::to_owned))
        .flatten()
    })
}

/// A supply-chain-trace answer (Art. 8.4.1 (e), (h)–(j)) for `codes`, as a
/// draft for an officer: only the parts `wanted` asks for.
pub fn supply_chain_trace<S: AsRef<str>>(
    conn: &mut DbConnection,
    codes: &[S],
    wanted: &[String],
) -> Result<BuiltAnswer, QueryError> {
    use crate::data::epcis::{IdKind, uri_to_id};
    let want = |w: &str| wanted.is_empty() || wanted.iter().any(|x| x == w);
    let mut results = Vec::with_capacity(codes.len());
    for code in codes.iter().take(10_000).map(AsRef::as_ref) {
        let Some(t) = trace(conn, code)? else {
            results.push(json!({"code": code, "status": "unknown"}));
            continue;
        };
        let mut m = Map::new();
        m.insert("code".into(), json!(code));
        m.insert(
            "status".into(),
            json!(if t.status == crate::data::model::CodeStatus::Deactivated {
                "deactivated"
            } else {
                "known"
            }),
        );
        let a = &t.art_8_4_1;
        if want("first-customer")
            && let Some(fc) = &a.e_first_customer
            && let Some(customer) = fc.get("customer").and_then(Value::as_str)
        {
            let mut f = Map::new();
            f.insert("party".into(), party(conn, customer)?);
            for (from, to) in [
                ("invoice", "invoice_number"),
                ("order_number", "order_number"),
            ] {
                if let Some(n) = fc
                    .pointer(&format!("/{from}/number"))
                    .and_then(Value::as_str)
                {
                    f.insert(to.into(), json!(truncate(n, 100)));
                }
            }
            if let Some(n) = fc.pointer("/payment/number").and_then(Value::as_str) {
                f.insert("payment_records".into(), json!([truncate(n, 500)]));
            }
            m.insert("first_customer".into(), Value::Object(f));
        }
        let mut warehousing = Vec::new();
        let mut shipping = Vec::new();
        let mut route: Option<Value> = None;
        for h in &t.history {
            match h.kind {
                EventKind::Arrival if want("warehousing") => {
                    if let Some(loc) = h.facility.as_ref().and_then(location) {
                        let mut w = Map::new();
                        w.insert("location".into(), loc);
                        if let Some(f) = &h.facility
                            && let Some(op) = &f.operator
                        {
                            w.insert("operator".into(), json!({"name": truncate(op, 300)}));
                        }
                        w.insert("arrived".into(), json!(h.time));
                        warehousing.push(Value::Object(w));
                    }
                }
                EventKind::Dispatch => {
                    let from = h.facility.as_ref().and_then(location);
                    let dest_id = uri_detail(h, "destinationList", "destination", "location")
                        .map(|d| uri_to_id(IdKind::Facility, &d));
                    let to = match &dest_id {
                        Some(d) => facility_location(conn, d)?,
                        None => None,
                    };
                    if want("shipping")
                        && let (Some(from), Some(to)) = (&from, &to)
                    {
                        let mut s = Map::new();
                        s.insert("from".into(), from.clone());
                        s.insert("to".into(), to.clone());
                        s.insert("dispatched".into(), json!(h.time));
                        if let Some(d) = h.details.get("gsp:document").and_then(Value::as_str) {
                            s.insert("transport_document".into(), json!(truncate(d, 200)));
                        }
                        shipping.push(Value::Object(s));
                    }
                    if want("shipment-route") && route.is_none() {
                        let mut r = Map::new();
                        if let Some(date) = date_of(&h.time) {
                            r.insert("shipment_date".into(), json!(date));
                        }
                        if let Some(from) = from {
                            r.insert("departure".into(), from);
                        }
                        if let Some(to) = to {
                            r.insert("destination".into(), to);
                        }
                        if let Some(c) =
                            uri_detail(h, "destinationList", "destination", "owning_party")
                        {
                            r.insert(
                                "consignee".into(),
                                party(conn, &uri_to_id(IdKind::Operator, &c))?,
                            );
                        }
                        route = Some(Value::Object(r));
                    }
                }
                _ => {}
            }
        }
        if want("warehousing") && !warehousing.is_empty() {
            m.insert("warehousing".into(), Value::Array(warehousing));
        }
        if want("shipping") && !shipping.is_empty() {
            m.insert("shipping".into(), Value::Array(shipping));
        }
        if want("subsequent-purchasers") && !a.i_subsequent_purchasers.is_empty() {
            let mut list = Vec::new();
            for p in &a.i_subsequent_purchasers {
                list.push(party(conn, p)?);
            }
            m.insert("subsequent_purchasers".into(), Value::Array(list));
        }
        if let Some(r) = route {
            m.insert("shipment_route".into(), r);
        }
        results.push(Value::Object(m));
    }
    let mut fields = Map::new();
    fields.insert("results".into(), Value::Array(results));
    Ok(BuiltAnswer {
        fields,
        attachment: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::query::{MachineInfo, ProductInfo};

    fn record(country: &str, name: &str) -> Arc<Manufacture> {
        Arc::new(Manufacture {
            manufactured_at: Some("2026-03-01T08:00:00Z".into()),
            facility: Some(FacilityInfo {
                id: "urn:epc:id:sgln:0614141.00001.0".into(),
                name: name.into(),
                kind: None,
                country: Some(country.into()),
                address: Some("Quai \"7\", Karachi\n".into()),
                operator: None,
                operator_id: None,
            }),
            machine: Some(MachineInfo {
                id: "M-1".into(),
                model: Some("Packer".into()),
                capacity_per_min: None,
            }),
            shift: Some("night".into()),
            product: Some(ProductInfo {
                id: "p".into(),
                description: "Filter cigarettes, 20".into(),
                brand: Some("Brand ü".into()),
                gtin: Some("00614141000012".into()),
                intended_market: Some("PAK".into()),
                category: None,
                manufacturer: None,
                manufacturer_id: None,
            }),
        })
    }

    /// The streamed attachment holds, line by line and in order, exactly the
    /// results the inline answer would hold.
    #[test]
    fn streamed_results_equal_inline_results() {
        let (a, b) = (record("PAK", "Plant A"), record("xx", "Plant \"B\""));
        let empty = Arc::new(Manufacture {
            manufactured_at: None,
            facility: None,
            machine: None,
            shift: None,
            product: None,
        });
        let verdict = |code: &str, status, record: Option<&Arc<Manufacture>>| CodeVerdict {
            code: code.into(),
            status,
            level: None,
            record: record.cloned(),
        };
        let verdicts = vec![
            verdict("a1", VerdictStatus::Known, Some(&a)),
            verdict("\"quoted\"\\", VerdictStatus::Unknown, None),
            verdict("b1", VerdictStatus::Deactivated, Some(&b)),
            verdict("a2", VerdictStatus::Known, Some(&a)),
            verdict("e1", VerdictStatus::Known, Some(&empty)),
            verdict("b2", VerdictStatus::Known, Some(&b)),
        ];
        let bytes = gzip_ndjson(&verdicts).unwrap();
        let back = read_results_attachment(RESULTS_MEDIA_TYPE, &bytes).unwrap();
        let inline: Vec<Value> = verdicts.iter().map(verification_result).collect();
        assert_eq!(back, inline);
        assert_eq!(back[0]["facility"]["location"]["country"], "PAK");
        assert!(back[2]["facility"].get("location").is_none());
    }
}
