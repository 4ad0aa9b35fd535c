//! `trace`: one code's Art. 8.4.1 record, its aggregation chain up (carton,
//! case, pallet) and down, and its event history in time order, including the
//! events of the containers it travelled in while it was inside them.

use super::QueryError;
use super::bulk::{CodeVerdict, Manufacture, VerdictStatus, bulk_lookup};
use super::lookup::{EventRow, MasterCache, events_by_id};
use crate::data::epcis::{self, IdKind, uri_to_id};
use crate::data::model::{CodeStatus, EventKind, Level};
use crate::storage::DbConnection;
use crate::storage::schema::{aggregation_history, codes, event_codes, events};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How many direct children are listed (the count is always exact).
pub const CHILDREN_LISTED: i64 = 200;
/// Longest chain followed upwards (guards against a cycle in bad data).
const MAX_DEPTH: usize = 16;

/// Everything known about one code.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// The code.
    pub code: String,
    /// Packaging level.
    pub level: Level,
    /// Active or deactivated.
    pub status: CodeStatus,
    /// Art. 8.4.1 items, labelled.
    pub art_8_4_1: Art841,
    /// Containers up the chain, nearest first.
    pub parents: Vec<ChainLink>,
    /// Direct children.
    pub children: Children,
    /// Events in time order.
    pub history: Vec<HistoryItem>,
}

/// A container the code is (or was) in.
#[derive(Debug, Clone, Serialize)]
pub struct ChainLink {
    /// The container's code.
    pub code: String,
    /// Its level.
    pub level: Level,
    /// When the level below was put into it.
    pub since: Option<String>,
}

/// Direct children of a code.
#[derive(Debug, Clone, Serialize)]
pub struct Children {
    /// How many there are now.
    pub count: i64,
    /// The first ones (at most [`CHILDREN_LISTED`]).
    pub codes: Vec<ChildInfo>,
}

/// One child.
#[derive(Debug, Clone, Serialize)]
pub struct ChildInfo {
    /// The child's code.
    pub code: String,
    /// Its level.
    pub level: Level,
    /// Its status.
    pub status: CodeStatus,
}

/// One event in a code's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryItem {
    /// Event time, RFC 3339 in the zone it was recorded in.
    pub time: String,
    /// GSP kind.
    pub kind: EventKind,
    /// EU event code, if any.
    pub eu_code: Option<&'static str>,
    /// EPCIS eventID (absent when the source had none).
    pub event_id: Option<String>,
    /// CBV business step.
    pub biz_step: Option<String>,
    /// Where (facility), when known.
    pub facility: Option<super::FacilityInfo>,
    /// Business location identifier as recorded.
    pub biz_location: Option<String>,
    /// The container through which this event concerns the code, if not the code itself.
    pub via: Option<String>,
    /// Transaction documents, parties, route and other details.
    pub details: Map<String, Value>,
}

/// The Art. 8.4.1 items for one code, as far as this node knows them.
#[derive(Debug, Clone, Serialize)]
pub struct Art841 {
    /// (a)–(d), (f), (g): manufacture and product.
    #[serde(flatten)]
    pub manufacture: Option<Manufacture>,
    /// (e) first customer not affiliated with the manufacturer: name, invoice,
    /// order number and payment records.
    pub e_first_customer: Option<Value>,
    /// (h) warehousing and shipping events.
    pub h_warehousing_and_shipping: Vec<Value>,
    /// (i) known subsequent purchasers.
    pub i_subsequent_purchasers: Vec<String>,
    /// (j) intended shipment route, date, destination, point of departure and consignee.
    pub j_shipments: Vec<Value>,
}

type CodeRow = (
    i64,
    String,
    i16,
    i16,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn code_row(
    conn: &mut DbConnection,
    filter_code: Option<&str>,
    filter_id: Option<i64>,
) -> QueryResult<Option<CodeRow>> {
    let q = codes::table
        .select((
            codes::id,
            codes::code,
            codes::level,
            codes::status,
            codes::product_id,
            codes::applied_by,
            codes::parent_id,
            codes::aggregated_by,
        ))
        .into_boxed();
    let q = match (filter_code, filter_id) {
        (Some(c), _) => q.filter(codes::code.eq(c.to_owned())),
        (None, Some(id)) => q.filter(codes::id.eq(id)),
        (None, None) => return Ok(None),
    };
    q.first(conn).optional()
}

/// Traces `code` (plain, or as a `urn:gsp:uid:` URI). `Ok(None)` means the
/// code is not in this node's data.
pub fn trace(conn: &mut DbConnection, code: &str) -> Result<Option<Trace>, QueryError> {
    let code = uri_to_id(IdKind::Code, code.trim());
    if code.is_empty() || code.len() > epcis::MAX_CODE_LEN {
        return Err(QueryError::BadRequest(format!(
            "a code is 1 to {} characters",
            epcis::MAX_CODE_LEN
        )));
    }
    let Some(row) = code_row(conn, Some(&code), None)? else {
        return Ok(None);
    };
    let (id, code, level, status, _product, applied_by, parent_id, aggregated_by) = row;
    let mut master = MasterCache::default();

    // Up the chain: each link with the event that made it.
    let mut chain: Vec<(i64, String, i16, Option<i64>)> = Vec::new(); // (id, code, level, joined_by)
    let mut next = parent_id.map(|p| (p, aggregated_by));
    while let Some((pid, joined_by)) = next {
        if chain.len() >= MAX_DEPTH || pid == id || chain.iter().any(|c| c.0 == pid) {
            break;
        }
        let Some(p) = code_row(conn, None, Some(pid))? else {
            break;
        };
        chain.push((p.0, p.1, p.2, joined_by));
        next = p.6.map(|pp| (pp, p.7));
    }

    // Events about the code itself.
    let mut wanted: BTreeMap<i64, Option<String>> = BTreeMap::new();
    for e in [applied_by, aggregated_by].into_iter().flatten() {
        wanted.insert(e, None);
    }
    for e in event_codes::table
        .filter(event_codes::code_id.eq(id))
        .select(event_codes::event_id)
        .load::<i64>(conn)?
    {
        wanted.insert(e, None);
    }
    for e in events::table
        .filter(events::parent_code_id.eq(Some(id)))
        .select(events::id)
        .load::<i64>(conn)?
    {
        wanted.insert(e, None);
    }
    let past: Vec<(i64, i64, Option<i64>)> = aggregation_history::table
        .filter(aggregation_history::child_id.eq(id))
        .select((
            aggregation_history::ended_by,
            aggregation_history::parent_id,
            aggregation_history::aggregated_by,
        ))
        .load(conn)?;
    for (ended_by, _, agg) in &past {
        wanted.insert(*ended_by, None);
        if let Some(a) = agg {
            wanted.insert(*a, None);
        }
    }

    // Events of every container the code travelled in, while it was inside:
    // the current chain from the time each link was made, and former
    // containers (broken-up pallets, re-packed cases) for the time it was in them.
    let mut times = EventTimes::default();
    let mut visited = Vec::new();
    if let Some(p) = parent_id {
        let from = times.get(conn, aggregated_by)?.unwrap_or(i64::MIN);
        container_events(
            conn,
            &mut times,
            p,
            from,
            i64::MAX,
            1,
            &mut visited,
            &mut wanted,
        )?;
    }
    for (ended_by, former, agg) in &past {
        let from = times.get(conn, *agg)?.unwrap_or(i64::MIN);
        let to = times.get(conn, Some(*ended_by))?.unwrap_or(i64::MAX);
        container_events(
            conn,
            &mut times,
            *former,
            from,
            to,
            1,
            &mut visited,
            &mut wanted,
        )?;
    }
    let join_times: Vec<i64> = {
        let mut out = Vec::with_capacity(chain.len());
        for c in &chain {
            out.push(times.get(conn, c.3)?.unwrap_or(i64::MIN));
        }
        out
    };

    let ids: Vec<i64> = wanted.keys().copied().collect();
    let mut rows = events_by_id(conn, &ids)?;
    rows.sort_by_key(|r| (r.event_time, r.id));
    let mut history = Vec::with_capacity(rows.len());
    for r in &rows {
        history.push(history_item(
            conn,
            &mut master,
            r,
            wanted.get(&r.id).cloned().flatten(),
        )?);
    }

    let parents = chain
        .iter()
        .enumerate()
        .map(|(i, (_, c, l, _))| ChainLink {
            code: c.clone(),
            level: Level::from_i16(*l).unwrap_or(Level::Unknown),
            since: (join_times[i] != i64::MIN).then(|| {
                rows.iter()
                    .find(|r| r.event_time == join_times[i])
                    .map(|r| epcis::format_time(r.event_time, &r.tz_offset))
                    .unwrap_or_else(|| epcis::format_time(join_times[i], "+00:00"))
            }),
        })
        .collect();

    let count: i64 = codes::table
        .filter(codes::parent_id.eq(Some(id)))
        .count()
        .get_result(conn)?;
    let listed: Vec<(String, i16, i16)> = codes::table
        .filter(codes::parent_id.eq(Some(id)))
        .select((codes::code, codes::level, codes::status))
        .order(codes::id)
        .limit(CHILDREN_LISTED)
        .load(conn)?;
    let children = Children {
        count,
        codes: listed
            .into_iter()
            .map(|(code, l, s)| ChildInfo {
                code,
                level: Level::from_i16(l).unwrap_or(Level::Unknown),
                status: CodeStatus::from_i16(s).unwrap_or(CodeStatus::Active),
            })
            .collect(),
    };

    let verdict: Option<CodeVerdict> = bulk_lookup(conn, std::slice::from_ref(&code))?
        .into_iter()
        .next();
    let manufacture = verdict
        .filter(|v| v.status != VerdictStatus::Unknown)
        .and_then(|v| v.record);
    let art_8_4_1 = summarise(manufacture.map(|m| (*m).clone()), &history);

    Ok(Some(Trace {
        code,
        level: Level::from_i16(level).unwrap_or(Level::Unknown),
        status: CodeStatus::from_i16(status).unwrap_or(CodeStatus::Active),
        art_8_4_1,
        parents,
        children,
        history,
    }))
}

/// Event times by id, loaded once.
#[derive(Default)]
struct EventTimes(std::collections::HashMap<i64, i64>);

impl EventTimes {
    fn get(&mut self, conn: &mut DbConnection, id: Option<i64>) -> QueryResult<Option<i64>> {
        let Some(id) = id else { return Ok(None) };
        if let Some(t) = self.0.get(&id) {
            return Ok(Some(*t));
        }
        let t: Option<i64> = events::table
            .find(id)
            .select(events::event_time)
            .first(conn)
            .optional()?;
        if let Some(t) = t {
            self.0.insert(id, t);
        }
        Ok(t)
    }
}

/// Adds to `wanted` the events of container `cid` between `from` and `to`
/// (inclusive), then those of the containers `cid` itself was in during that
/// time, attributing each to the container it came through.
#[allow(clippy::too_many_arguments)]
fn container_events(
    conn: &mut DbConnection,
    times: &mut EventTimes,
    cid: i64,
    from: i64,
    to: i64,
    depth: usize,
    visited: &mut Vec<(i64, i64, i64)>,
    wanted: &mut BTreeMap<i64, Option<String>>,
) -> QueryResult<()> {
    if depth > MAX_DEPTH || from > to || visited.contains(&(cid, from, to)) {
        return Ok(());
    }
    visited.push((cid, from, to));
    let Some(row) = code_row(conn, None, Some(cid))? else {
        return Ok(());
    };
    let via = row.1.clone();
    let mut ids: Vec<i64> = event_codes::table
        .filter(event_codes::code_id.eq(cid))
        .select(event_codes::event_id)
        .load(conn)?;
    ids.extend(
        events::table
            .filter(events::parent_code_id.eq(Some(cid)))
            .filter(events::kind.ne(EventKind::Aggregation.to_i16()))
            .select(events::id)
            .load::<i64>(conn)?,
    );
    for e in events_by_id(conn, &ids)? {
        times.0.insert(e.id, e.event_time);
        // Invoices, orders and payments concern the goods that were in the
        // container, even when they are dated after it was broken up.
        let commercial = matches!(
            e.kind(),
            EventKind::Invoice | EventKind::Order | EventKind::Payment
        );
        if e.event_time >= from && (e.event_time <= to || commercial) {
            wanted.entry(e.id).or_insert_with(|| Some(via.clone()));
        }
    }
    // The container it is in now, from when it was put there.
    if let Some(parent) = row.6 {
        let joined = times.get(conn, row.7)?.unwrap_or(i64::MIN);
        if joined <= to {
            if let Some(j) = row.7 {
                wanted.entry(j).or_insert_with(|| Some(via.clone()));
            }
            container_events(
                conn,
                times,
                parent,
                from.max(joined),
                to,
                depth + 1,
                visited,
                wanted,
            )?;
        }
    }
    // Containers it was in before.
    let past: Vec<(i64, i64, Option<i64>)> = aggregation_history::table
        .filter(aggregation_history::child_id.eq(cid))
        .select((
            aggregation_history::ended_by,
            aggregation_history::parent_id,
            aggregation_history::aggregated_by,
        ))
        .load(conn)?;
    for (ended_by, former, agg) in past {
        let start = times.get(conn, agg)?.unwrap_or(i64::MIN).max(from);
        let end = times.get(conn, Some(ended_by))?.unwrap_or(i64::MAX).min(to);
        if start <= end {
            for e in [Some(ended_by), agg].into_iter().flatten() {
                wanted.entry(e).or_insert_with(|| Some(via.clone()));
            }
            container_events(conn, times, former, start, end, depth + 1, visited, wanted)?;
        }
    }
    Ok(())
}

/// Detail fields worth showing an officer, from an event's stored document.
const DETAIL_FIELDS: &[&str] = &[
    "bizTransactionList",
    "sourceList",
    "destinationList",
    "gsp:route",
    "gsp:transportMode",
    "gsp:document",
    "gsp:amount",
    "gsp:currency",
    "gsp:reason",
    "gsp:shift",
    "gsp:machine",
    "errorDeclaration",
];

fn history_item(
    conn: &mut DbConnection,
    master: &mut MasterCache,
    r: &EventRow,
    via: Option<String>,
) -> QueryResult<HistoryItem> {
    let doc = r.doc();
    let details: Map<String, Value> = DETAIL_FIELDS
        .iter()
        .filter_map(|f| doc.get(*f).map(|v| ((*f).to_owned(), v.clone())))
        .collect();
    Ok(HistoryItem {
        time: epcis::format_time(r.event_time, &r.tz_offset),
        kind: r.kind(),
        eu_code: r.kind().eu_code(),
        event_id: (!r.event_key.starts_with(epcis::HASH_KEY_PREFIX)).then(|| r.event_key.clone()),
        biz_step: r.biz_step.clone(),
        facility: master.facility(conn, r.facility_id)?,
        biz_location: r.biz_location.clone(),
        via,
        details,
    })
}

fn party(list: Option<&Value>, key: &str, kind: &str) -> Option<String> {
    list?.as_array()?.iter().find_map(|e| {
        (e.get("type").and_then(Value::as_str).map(epcis::cbv_word) == Some(kind))
            .then(|| {
                e.get(key)
                    .and_then(Value::as_str)
                    .map(|s| uri_to_id(IdKind::Operator, s))
            })
            .flatten()
    })
}

fn summarise(manufacture: Option<Manufacture>, history: &[HistoryItem]) -> Art841 {
    let mut purchasers: Vec<String> = Vec::new();
    let mut first_customer: Option<Map<String, Value>> = None;
    let mut shipping = Vec::new();
    let mut shipments = Vec::new();
    for h in history {
        let buyer = party(
            h.details.get("destinationList"),
            "destination",
            "owning_party",
        );
        match h.kind {
            EventKind::Invoice | EventKind::Order | EventKind::Payment => {
                let doc_no = h
                    .details
                    .get("bizTransactionList")
                    .and_then(|l| l.get(0))
                    .and_then(|b| b.get("bizTransaction"))
                    .and_then(Value::as_str)
                    .map(|d| uri_to_id(IdKind::Document, d));
                if let Some(b) = &buyer {
                    let fc = first_customer.get_or_insert_with(|| {
                        let mut m = Map::new();
                        m.insert("customer".into(), Value::String(b.clone()));
                        m
                    });
                    if fc.get("customer").and_then(Value::as_str) == Some(b.as_str()) {
                        let field = match h.kind {
                            EventKind::Invoice => "invoice",
                            EventKind::Order => "order_number",
                            _ => "payment",
                        };
                        let mut record = Map::new();
                        record.insert("number".into(), Value::from(doc_no));
                        record.insert("time".into(), Value::from(h.time.clone()));
                        for (from, to) in [("gsp:amount", "amount"), ("gsp:currency", "currency")] {
                            if let Some(v) = h.details.get(from) {
                                record.insert(to.into(), v.clone());
                            }
                        }
                        fc.entry(field).or_insert(Value::Object(record));
                    } else if !purchasers.contains(b) {
                        purchasers.push(b.clone());
                    }
                }
            }
            EventKind::Dispatch | EventKind::Arrival | EventKind::Transloading => {
                shipping.push(serde_json::json!({
                    "time": h.time,
                    "kind": h.kind,
                    "facility": h.facility.as_ref().map(|f| &f.id).or(h.biz_location.as_ref()),
                    "via": h.via,
                }));
                if h.kind == EventKind::Dispatch {
                    let dest = party(h.details.get("destinationList"), "destination", "location")
                        .map(|d| uri_to_id(IdKind::Facility, &d));
                    shipments.push(serde_json::json!({
                        "date": h.time,
                        "point_of_departure": h.facility.as_ref().map(|f| &f.id).or(h.biz_location.as_ref()),
                        "destination": dest,
                        "consignee": buyer,
                        "route": h.details.get("gsp:route"),
                        "transport_mode": h.details.get("gsp:transportMode"),
                    }));
                }
            }
            _ => {}
        }
    }
    Art841 {
        manufacture,
        e_first_customer: first_customer.map(Value::Object),
        h_warehousing_and_shipping: shipping,
        i_subsequent_purchasers: purchasers,
        j_shipments: shipments,
    }
}
