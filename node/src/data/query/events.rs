//! EPCIS 2.0 event queries and the rendering of stored events as EPCIS 2.0
//! JSON-LD.
//!
//! Supported parameters (EPCIS 2.0 §8.2.7.1 names): `MATCH_epc`,
//! `MATCH_parentID`, `MATCH_anyEPC`, `GE_eventTime`, `LT_eventTime`,
//! `EQ_bizStep`, `EQ_bizLocation`, `EQ_action`, `eventType`, plus paging with
//! `perPage` and `nextPageToken`. List values are separated by `|` (or `,`).
//! Unknown parameters are refused rather than ignored, so a typo never
//! silently widens a query.

use super::QueryError;
use super::lookup::{EventRow, events_by_id};
use crate::data::epcis::{
    self, EPCIS_CONTEXT, GSP_NS, GSP_PREFIX, HASH_KEY_PREFIX, IdKind, id_to_uri, uri_to_id,
};
use crate::data::model::{Action, EpcisType, Role};
use crate::storage::DbConnection;
use crate::storage::Direct as _;
use crate::storage::schema::{aggregation_history, codes, event_codes, events, imports};
use base64::Engine as _;
use diesel::prelude::*;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};

/// Default page size.
pub const DEFAULT_PER_PAGE: i64 = 100;
/// Largest page size.
pub const MAX_PER_PAGE: i64 = 1000;

/// A parsed event query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    /// Codes that must be in epcList/childEPCs (MATCH_epc).
    pub match_epc: Vec<String>,
    /// Codes that must be the parentID (MATCH_parentID).
    pub match_parent: Vec<String>,
    /// Codes that may appear anywhere (MATCH_anyEPC).
    pub match_any: Vec<String>,
    /// Lower bound on event time, inclusive (ms).
    pub ge_time: Option<i64>,
    /// Upper bound on event time, exclusive (ms).
    pub lt_time: Option<i64>,
    /// Accepted bizStep values.
    pub biz_step: Vec<String>,
    /// Accepted bizLocation values.
    pub biz_location: Vec<String>,
    /// Accepted actions.
    pub action: Vec<Action>,
    /// Accepted event types.
    pub event_type: Vec<EpcisType>,
    /// Page size.
    pub per_page: i64,
    /// Resume after this (time, id).
    pub after: Option<(i64, i64)>,
}

impl EventQuery {
    /// Parses URL query parameters.
    pub fn from_params(params: &[(String, String)]) -> Result<EventQuery, QueryError> {
        let bad = |m: String| QueryError::BadRequest(m);
        let list = |v: &str| -> Vec<String> {
            v.split(['|', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let mut q = EventQuery {
            per_page: DEFAULT_PER_PAGE,
            ..EventQuery::default()
        };
        for (name, value) in params {
            match name.as_str() {
                "MATCH_epc" => q
                    .match_epc
                    .extend(list(value).iter().map(|c| uri_to_id(IdKind::Code, c))),
                "MATCH_parentID" => q
                    .match_parent
                    .extend(list(value).iter().map(|c| uri_to_id(IdKind::Code, c))),
                "MATCH_anyEPC" => q
                    .match_any
                    .extend(list(value).iter().map(|c| uri_to_id(IdKind::Code, c))),
                "GE_eventTime" => {
                    q.ge_time = Some(
                        epcis::parse_time(value)
                            .map_err(|e| bad(format!("GE_eventTime: {e}")))?
                            .0,
                    )
                }
                "LT_eventTime" => {
                    q.lt_time = Some(
                        epcis::parse_time(value)
                            .map_err(|e| bad(format!("LT_eventTime: {e}")))?
                            .0,
                    )
                }
                "EQ_bizStep" => q.biz_step.extend(list(value)),
                "EQ_bizLocation" => q
                    .biz_location
                    .extend(list(value).iter().map(|l| uri_to_id(IdKind::Facility, l))),
                "EQ_action" => {
                    for a in list(value) {
                        q.action.push(Action::parse(&a).ok_or_else(|| {
                            bad(format!("EQ_action: {a:?} is not ADD, OBSERVE or DELETE"))
                        })?);
                    }
                }
                "eventType" => {
                    for t in list(value) {
                        q.event_type.push(EpcisType::parse(&t).ok_or_else(|| {
                            bad(format!("eventType: {t:?} is not an EPCIS event type"))
                        })?);
                    }
                }
                "perPage" => {
                    let n: i64 = value
                        .parse()
                        .map_err(|_| bad(format!("perPage: {value:?} is not a number")))?;
                    if !(1..=MAX_PER_PAGE).contains(&n) {
                        return Err(bad(format!("perPage must be between 1 and {MAX_PER_PAGE}")));
                    }
                    q.per_page = n;
                }
                "nextPageToken" => {
                    q.after =
                        Some(decode_token(value).ok_or_else(|| {
                            bad("nextPageToken is not one this node issued".into())
                        })?)
                }
                other => return Err(bad(format!("unsupported query parameter {other:?}"))),
            }
        }
        Ok(q)
    }
}

/// Opaque paging token: base64url of "time:id" of the last event returned.
pub fn encode_token(time: i64, id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{time}:{id}"))
}

fn decode_token(token: &str) -> Option<(i64, i64)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let (t, i) = text.split_once(':')?;
    Some((t.parse().ok()?, i.parse().ok()?))
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// EPCIS 2.0 events.
    pub events: Vec<Value>,
    /// The JSON-LD context they need.
    pub context: Value,
    /// Token for the next page, if there may be more.
    pub next_page_token: Option<String>,
}

fn code_ids(conn: &mut DbConnection, wanted: &[String]) -> QueryResult<Vec<i64>> {
    codes::table
        .filter(codes::code.eq_any(wanted))
        .select(codes::id)
        .load_direct(conn)
}

/// Event ids in which any of `ids` appears in epcList/childEPCs (and, with
/// `any`, also as parent, input or output).
fn events_naming(conn: &mut DbConnection, ids: &[i64], any: bool) -> QueryResult<BTreeSet<i64>> {
    let mut out = BTreeSet::new();
    let rows: Vec<(Option<i64>, Option<i64>)> = codes::table
        .filter(codes::id.eq_any(ids))
        .select((codes::applied_by, codes::aggregated_by))
        .load_direct(conn)?;
    for (a, b) in rows {
        out.extend(a);
        out.extend(b);
    }
    let roles: Vec<i16> = if any {
        Role::ALL.iter().map(|r| r.to_i16()).collect()
    } else {
        vec![Role::Epc.to_i16(), Role::Child.to_i16()]
    };
    out.extend(
        event_codes::table
            .filter(event_codes::code_id.eq_any(ids))
            .filter(event_codes::role.eq_any(roles))
            .select(event_codes::event_id)
            .load_direct::<i64>(conn)?,
    );
    out.extend(
        aggregation_history::table
            .filter(aggregation_history::child_id.eq_any(ids))
            .select(aggregation_history::aggregated_by)
            .load_direct::<Option<i64>>(conn)?
            .into_iter()
            .flatten(),
    );
    if any {
        out.extend(events_with_parent(conn, ids)?);
    }
    Ok(out)
}

fn events_with_parent(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<i64>> {
    events::table
        .filter(events::parent_code_id.eq_any(ids.iter().map(|&i| Some(i)).collect::<Vec<_>>()))
        .select(events::id)
        .load_direct(conn)
}

/// Runs a query and renders one page.
pub fn query_events(conn: &mut DbConnection, q: &EventQuery) -> Result<EventPage, QueryError> {
    // Candidate ids from the MATCH_ parameters (intersection of each given one).
    let mut candidates: Option<BTreeSet<i64>> = None;
    let narrow = |set: BTreeSet<i64>, candidates: &mut Option<BTreeSet<i64>>| {
        *candidates = Some(match candidates.take() {
            None => set,
            Some(c) => c.intersection(&set).copied().collect(),
        });
    };
    if !q.match_epc.is_empty() {
        let ids = code_ids(conn, &q.match_epc)?;
        narrow(events_naming(conn, &ids, false)?, &mut candidates);
    }
    if !q.match_parent.is_empty() {
        let ids = code_ids(conn, &q.match_parent)?;
        narrow(
            events_with_parent(conn, &ids)?.into_iter().collect(),
            &mut candidates,
        );
    }
    if !q.match_any.is_empty() {
        let ids = code_ids(conn, &q.match_any)?;
        narrow(events_naming(conn, &ids, true)?, &mut candidates);
    }

    let mut query = events::table.select(EventRow::as_select()).into_boxed();
    if let Some(c) = &candidates {
        if c.is_empty() {
            return Ok(EventPage {
                events: Vec::new(),
                context: context_for(conn, &[])?,
                next_page_token: None,
            });
        }
        query = query.filter(events::id.eq_any(c.iter().copied().collect::<Vec<_>>()));
    }
    if let Some(t) = q.ge_time {
        query = query.filter(events::event_time.ge(t));
    }
    if let Some(t) = q.lt_time {
        query = query.filter(events::event_time.lt(t));
    }
    if !q.biz_step.is_empty() {
        // Match both the bare CBV word and its URI forms.
        let mut steps: Vec<String> = q.biz_step.clone();
        for s in &q.biz_step {
            let w = epcis::cbv_word(s).to_owned();
            steps.push(format!("urn:epcglobal:cbv:bizstep:{w}"));
            steps.push(format!("https://ref.gs1.org/cbv/BizStep-{w}"));
            steps.push(w);
        }
        query = query.filter(events::biz_step.eq_any(steps));
    }
    if !q.biz_location.is_empty() {
        query = query.filter(events::biz_location.eq_any(q.biz_location.clone()));
    }
    if !q.action.is_empty() {
        query = query.filter(
            events::action.eq_any(
                q.action
                    .iter()
                    .map(|a| Some(a.to_i16()))
                    .collect::<Vec<_>>(),
            ),
        );
    }
    if !q.event_type.is_empty() {
        query = query.filter(
            events::epcis_type.eq_any(q.event_type.iter().map(|t| t.to_i16()).collect::<Vec<_>>()),
        );
    }
    if let Some((t, id)) = q.after {
        query = query.filter(
            events::event_time
                .gt(t)
                .or(events::event_time.eq(t).and(events::id.gt(id))),
        );
    }
    let rows: Vec<EventRow> = query
        .order((events::event_time.asc(), events::id.asc()))
        .limit(q.per_page + 1)
        .load(conn)?;
    let more = rows.len() as i64 > q.per_page;
    let rows = &rows[..rows.len().min(q.per_page as usize)];
    let next_page_token = if more {
        rows.last().map(|r| encode_token(r.event_time, r.id))
    } else {
        None
    };
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        events.push(render_event(conn, row)?);
    }
    Ok(EventPage {
        events,
        context: context_for(conn, &rows.iter().collect::<Vec<_>>())?,
        next_page_token,
    })
}

/// Renders stored events by id (in the given order).
pub fn render_events_by_id(
    conn: &mut DbConnection,
    ids: &[i64],
) -> QueryResult<Vec<(EventRow, Value)>> {
    let rows = events_by_id(conn, ids)?;
    let mut by_id: HashMap<i64, EventRow> = rows.into_iter().map(|r| (r.id, r)).collect();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = by_id.remove(id) {
            let v = render_event(conn, &row)?;
            out.push((row, v));
        }
    }
    Ok(out)
}

fn code_strings(conn: &mut DbConnection, ids: Vec<i64>) -> QueryResult<Vec<String>> {
    let mut rows: Vec<(i64, String)> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(4096) {
        rows.extend(
            codes::table
                .filter(codes::id.eq_any(chunk))
                .select((codes::id, codes::code))
                .load::<(i64, String)>(conn)?,
        );
    }
    rows.sort_unstable();
    rows.dedup();
    Ok(rows
        .into_iter()
        .map(|(_, c)| id_to_uri(IdKind::Code, &c))
        .collect())
}

/// One stored event as EPCIS 2.0 JSON.
pub fn render_event(conn: &mut DbConnection, row: &EventRow) -> QueryResult<Value> {
    let t = row.epcis_type();
    let mut out = Map::new();
    out.insert("type".into(), json!(t.as_str()));
    if !row.event_key.starts_with(HASH_KEY_PREFIX) {
        out.insert("eventID".into(), json!(row.event_key));
    }
    out.insert(
        "eventTime".into(),
        json!(epcis::format_time(row.event_time, &row.tz_offset)),
    );
    out.insert("eventTimeZoneOffset".into(), json!(row.tz_offset));
    if let Some(a) = row.action() {
        out.insert("action".into(), json!(a.as_str()));
    }
    if let Some(p) = row.parent_code_id {
        let parent: Option<String> = codes::table
            .find(p)
            .select(codes::code)
            .first_direct(conn)
            .optional()?;
        if let Some(p) = parent {
            out.insert("parentID".into(), json!(id_to_uri(IdKind::Code, &p)));
        }
    }

    // The codes, from where the importer put them.
    let mut by_role: HashMap<i16, Vec<i64>> = HashMap::new();
    if t == EpcisType::Object && row.action() == Some(Action::Add) {
        let applied: Vec<i64> = codes::table
            .filter(codes::applied_by.eq(row.id))
            .select(codes::id)
            .load_direct(conn)?;
        by_role
            .entry(Role::Epc.to_i16())
            .or_default()
            .extend(applied);
    }
    if t == EpcisType::Aggregation
        && let Some(p) = row.parent_code_id
    {
        let current: Vec<i64> = codes::table
            .filter(codes::parent_id.eq(p))
            .filter(codes::aggregated_by.eq(row.id))
            .select(codes::id)
            .load_direct(conn)?;
        let past: Vec<i64> = aggregation_history::table
            .filter(aggregation_history::parent_id.eq(p))
            .filter(aggregation_history::aggregated_by.eq(row.id))
            .select(aggregation_history::child_id)
            .load_direct(conn)?;
        let e = by_role.entry(Role::Child.to_i16()).or_default();
        e.extend(current);
        e.extend(past);
    }
    let links: Vec<(i64, i16)> = event_codes::table
        .filter(event_codes::event_id.eq(row.id))
        .select((event_codes::code_id, event_codes::role))
        .load_direct(conn)?;
    for (code_id, role) in links {
        by_role.entry(role).or_default().push(code_id);
    }
    for (role, field) in [
        (Role::Epc, "epcList"),
        (Role::Child, "childEPCs"),
        (Role::Input, "inputEPCList"),
        (Role::Output, "outputEPCList"),
    ] {
        if let Some(ids) = by_role.remove(&role.to_i16()) {
            let list = code_strings(conn, ids)?;
            if !list.is_empty() {
                out.insert(field.into(), json!(list));
            }
        }
    }
    if let Some(b) = &row.biz_step {
        out.insert("bizStep".into(), json!(b));
    }
    if let Some(d) = &row.disposition {
        out.insert("disposition".into(), json!(d));
    }
    if let Some(r) = &row.read_point {
        out.insert("readPoint".into(), json!({"id": r}));
    }
    if let Some(b) = &row.biz_location {
        out.insert(
            "bizLocation".into(),
            json!({"id": id_to_uri(IdKind::Facility, b)}),
        );
    }
    for (k, v) in row.doc() {
        out.insert(k, v);
    }
    Ok(Value::Object(out))
}

/// The JSON-LD context for a set of rendered events: EPCIS's, GSP's prefix,
/// and every extension prefix the events' source documents defined.
pub fn context_for(conn: &mut DbConnection, rows: &[&EventRow]) -> QueryResult<Value> {
    let mut terms = Map::new();
    terms.insert(GSP_PREFIX.into(), json!(GSP_NS));
    let mut import_ids: Vec<i64> = rows.iter().filter_map(|r| r.import_id).collect();
    import_ids.sort_unstable();
    import_ids.dedup();
    if !import_ids.is_empty() {
        let contexts: Vec<Option<String>> = imports::table
            .filter(imports::id.eq_any(import_ids))
            .select(imports::context)
            .load_direct(conn)?;
        for text in contexts.into_iter().flatten() {
            if let Ok(Value::Object(ctx)) = serde_json::from_str::<Value>(&text) {
                for (k, v) in ctx {
                    terms.entry(k).or_insert(v);
                }
            }
        }
    }
    Ok(json!([EPCIS_CONTEXT, terms]))
}

/// Wraps events in an EPCIS 2.0 query document.
pub fn query_document(context: Value, events: Vec<Value>, created_ms: i64) -> Value {
    json!({
        "@context": context,
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": epcis::format_time(created_ms, "+00:00"),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": events}
            }
        }
    })
}
