//! Automatic answers: requests whose template's policy is `automatic`
//! (uid-verification by default) are answered from this node's data without
//! an officer. A request listing up to [`ON_ARRIVAL_MAX_CODES`] codes is
//! answered as it arrives ([`answer_on_arrival`]), its answer committed with
//! it. Every other one is picked up from the database by a background pass —
//! cases in state `delivered` under the automatic policy — so a crash between
//! receipt and answer only delays the answer.

use super::answers::{self, BuiltAnswer};
use super::model::{AnswerPolicy, CaseRole, CaseState, MessageKind};
use super::store::{self, ExchangeError, NewAttachment, PreparedAnswer, PreparedArrival, Sealer};
use crate::config::ExchangeSettings;
use crate::data::query::QueryError;
use crate::data::query::bulk::{LookupCache, LookupCaches};
use crate::storage::Direct as _;
use crate::storage::schema::{cases, messages};
use crate::storage::{Database, DbConnection};
use diesel::prelude::*;
use gsp_federation::Part;
use serde_json::{Value, json};

/// The codes a request asks about, as they came: a JSON list, or the text of
/// the codes attachment (one per line, kept as one string rather than a
/// million small ones).
pub enum RequestCodes {
    /// Listed in the request body.
    Inline(Vec<String>),
    /// The codes attachment's text.
    Text(String),
}

impl RequestCodes {
    /// The codes, in the order asked.
    pub fn list(&self) -> Vec<&str> {
        match self {
            RequestCodes::Inline(v) => v.iter().map(String::as_str).collect(),
            RequestCodes::Text(t) => t.lines().map(str::trim).filter(|l| !l.is_empty()).collect(),
        }
    }
}

/// The codes a request asks about: inline, or from its codes attachment
/// (`Ok(None)` while that attachment has not arrived yet).
pub fn request_codes(
    conn: &mut DbConnection,
    case_id: &str,
    body: &Value,
) -> Result<Option<RequestCodes>, ExchangeError> {
    if let Some(list) = body.get("codes").and_then(Value::as_array) {
        return Ok(Some(RequestCodes::Inline(
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        )));
    }
    let Some(sha) = body
        .pointer("/codes_attachment/sha256")
        .and_then(Value::as_str)
    else {
        return Err(ExchangeError::Invalid("the request names no codes".into()));
    };
    let found: Option<Vec<u8>> = messages::table
        .filter(messages::case_id.eq(case_id))
        .filter(messages::kind.eq(MessageKind::Attachment.to_i16()))
        .filter(messages::body_sha256.eq(sha))
        .select(messages::body)
        .first_direct(conn)
        .optional()?;
    let Some(bytes) = found else { return Ok(None) };
    let text = String::from_utf8(bytes)
        .map_err(|_| ExchangeError::Invalid("the codes attachment is not UTF-8 text".into()))?;
    Ok(Some(RequestCodes::Text(text)))
}

/// The request of a case: its body.
pub fn request_body(conn: &mut DbConnection, case_id: &str) -> Result<Value, ExchangeError> {
    let bytes: Vec<u8> = messages::table
        .filter(messages::case_id.eq(case_id))
        .filter(messages::kind.eq(MessageKind::Request.to_i16()))
        .select(messages::body)
        .first_direct(conn)
        .optional()?
        .ok_or_else(|| ExchangeError::NotFound(format!("case {case_id} has no request")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ExchangeError::Invalid(format!("stored request: {e}")))
}

/// A draft answer from this node's data for a request received, for an
/// officer to review (or for the automatic policy to send): template fields
/// plus `outcome` and `handling`. `Ok(None)` while attachments are missing.
pub fn draft_answer(
    conn: &mut DbConnection,
    case_id: &str,
    settings: &ExchangeSettings,
) -> Result<Option<(Value, Vec<NewAttachment>)>, ExchangeError> {
    draft_answer_with(conn, case_id, settings, &mut LookupCache::default())
}

/// [`draft_answer`] sharing lookups with the other drafts of a batch.
fn draft_answer_with(
    conn: &mut DbConnection,
    case_id: &str,
    settings: &ExchangeSettings,
    cache: &mut LookupCache,
) -> Result<Option<(Value, Vec<NewAttachment>)>, ExchangeError> {
    let template: String = cases::table
        .find(case_id)
        .select(cases::template)
        .first_direct(conn)
        .optional()?
        .ok_or_else(|| ExchangeError::NotFound(format!("no case {case_id}")))?;
    let body = request_body(conn, case_id)?;
    draft_from_request(conn, case_id, &template, &body, settings, cache)
}

/// The draft answer to a request of `template` with `body` (its
/// attachments, if it names any, read from the case's messages).
fn draft_from_request(
    conn: &mut DbConnection,
    case_id: &str,
    template: &str,
    body: &Value,
    settings: &ExchangeSettings,
    cache: &mut LookupCache,
) -> Result<Option<(Value, Vec<NewAttachment>)>, ExchangeError> {
    let Some(codes) = request_codes(conn, case_id, body).or_else(|e| match e {
        ExchangeError::Invalid(_)
            if template != "uid-verification" && template != "supply-chain-trace" =>
        {
            Ok(Some(RequestCodes::Inline(Vec::new())))
        }
        other => Err(other),
    })?
    else {
        return Ok(None);
    };
    let codes = codes.list();
    let built: BuiltAnswer = match template {
        "uid-verification" => {
            answers::uid_verification(conn, &codes, settings.inline_codes_max, cache)
        }
        "supply-chain-trace" => {
            let wanted: Vec<String> = body
                .get("wanted")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            answers::supply_chain_trace(conn, &codes, &wanted)
        }
        other => {
            return Err(ExchangeError::Invalid(format!(
                "no answer can be drafted from data for {other}"
            )));
        }
    }
    .map_err(|e| match e {
        QueryError::Database(e) => ExchangeError::Database(e),
        QueryError::BadRequest(why) => ExchangeError::Invalid(why),
    })?;
    let mut fields = built.fields;
    fields.insert("outcome".into(), json!("full"));
    // The answer travels under the restrictions the request asked for.
    let handling = body.get("handling").cloned().unwrap_or_else(|| {
        json!({"purpose_limited": true, "onward_transmission": "prohibited", "classification": "restricted"})
    });
    fields.insert("handling".into(), handling);
    let mut attachments = Vec::new();
    if let Some(a) = built.attachment {
        attachments.push(NewAttachment {
            name: a.name,
            media_type: a.media_type,
            bytes: a.bytes,
            slot: super::store::Slot::Results,
        });
    }
    Ok(Some((Value::Object(fields), attachments)))
}

/// How long the answers made on arrival share loaded events and master
/// data ([`LookupCaches`]): data imported or changed is in answers after this.
pub const LOOKUP_CACHE_AGE: std::time::Duration = std::time::Duration::from_secs(10);

/// Codes at most in a request answered while it arrives. Larger requests
/// are answered by the automatic answerer's pass, so that the sender's
/// delivery never waits for a long lookup.
pub const ON_ARRIVAL_MAX_CODES: usize = 1_000;

/// The automatic answer to a request that is arriving (opened, verified and
/// prepared for recording, its body parsed once), drafted from this node's data and sealed before the
/// request is stored, for [`store::record_arrival`] to commit with it: one
/// transaction and no wait for the answerer's next pass.
///
/// `None` — and the request is answered by the pass as before — when it is
/// not a request under the automatic policy, names its codes in an
/// attachment, asks about more than [`ON_ARRIVAL_MAX_CODES`] codes, or cannot
/// be answered right now (the pass then also decides whether officers must
/// take it).
pub fn answer_on_arrival(
    db: &Database,
    caches: &LookupCaches,
    sealer: &dyn Sealer,
    settings: &ExchangeSettings,
    arrived: &PreparedArrival,
    now: i64,
) -> Option<PreparedAnswer> {
    let header = arrived.header();
    let template = header
        .template
        .as_ref()
        .filter(|t| t.part == Part::Request)?;
    if settings.policy_for(&template.name) != AnswerPolicy::Automatic {
        return None;
    }
    let request = arrived.json_body()?;
    let inline = request.get("codes").and_then(Value::as_array)?;
    if inline.len() > ON_ARRIVAL_MAX_CODES {
        return None;
    }
    let case_id = header.case_id.to_string();
    let mut conn = match db.conn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%case_id, error = %e, "request not answered on arrival; left to the automatic answerer");
            return None;
        }
    };
    let prepared = caches
        .with(|cache| {
            draft_from_request(
                &mut conn,
                &case_id,
                &template.name,
                request,
                settings,
                cache,
            )
        })
        .and_then(|drafted| {
            drafted
                .map(|(answer, attachments)| {
                    store::prepare_answer_on_arrival(
                        sealer,
                        settings,
                        header,
                        answer,
                        attachments,
                        now,
                    )
                })
                .transpose()
        });
    match prepared {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(%case_id, error = %e, "request not answered on arrival; left to the automatic answerer");
            None
        }
    }
}

/// Where a pass over the waiting requests goes on from: after this case
/// (its `created_at` and id).
pub type Cursor = (i64, String);

/// What one pass over requests waiting for an automatic answer found.
pub struct Pending {
    /// Answers drafted and sealed, to store.
    pub prepared: Vec<PreparedAnswer>,
    /// Requests that cannot be answered from the data (case id, why): for
    /// officers.
    pub unanswerable: Vec<(String, String)>,
    /// Where the next pass starts when this one took `limit` requests (more
    /// may wait after them); `None` when it reached the end.
    pub next: Option<Cursor>,
}

/// Drafts and seals answers for up to `limit` requests waiting for an
/// automatic answer, oldest first, starting after `after` (reads only: the
/// database's writer is not held while looking codes up or sealing).
/// Requests whose attachments have not all arrived are left for a later
/// pass; passes go on from where the last full one stopped, so such requests
/// (or ones failing for a passing reason) never hold up those behind them.
pub fn draft_pending(
    conn: &mut DbConnection,
    sealer: &dyn Sealer,
    settings: &ExchangeSettings,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Pending, ExchangeError> {
    draft_pending_with(conn, sealer, settings, after, limit, LookupCache::default())
}

/// [`draft_pending`] with the lookup cache the pass's answers share; give
/// it a spare connection ([`LookupCache::with_spare`]) and a large request's
/// codes are looked up on two at once.
pub fn draft_pending_with(
    conn: &mut DbConnection,
    sealer: &dyn Sealer,
    settings: &ExchangeSettings,
    after: Option<&Cursor>,
    limit: i64,
    mut cache: LookupCache,
) -> Result<Pending, ExchangeError> {
    let mut query = cases::table
        .filter(cases::role.eq(CaseRole::Responder.to_i16()))
        .filter(cases::policy.eq(AnswerPolicy::Automatic.to_i16()))
        .filter(cases::state.eq(CaseState::Delivered.to_i16()))
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            cases::created_at
                .gt(*at)
                .or(cases::created_at.eq(*at).and(cases::id.gt(id.clone()))),
        );
    }
    let waiting: Vec<(String, i64)> = query
        .order((cases::created_at, cases::id))
        .limit(limit)
        .select((cases::id, cases::created_at))
        .load(conn)?;
    let next = match waiting.last() {
        Some((id, at)) if waiting.len() as i64 >= limit => Some((*at, id.clone())),
        _ => None,
    };
    let mut pending = Pending {
        prepared: Vec::with_capacity(waiting.len()),
        unanswerable: Vec::new(),
        next,
    };
    for (case_id, _) in waiting {
        let now = store::now_ms();
        let drafted = draft_answer_with(conn, &case_id, settings, &mut cache).and_then(|d| {
            d.map(|(body, attachments)| {
                store::prepare_answer(
                    conn,
                    sealer,
                    settings,
                    None,
                    &case_id,
                    body,
                    attachments,
                    now,
                )
            })
            .transpose()
        });
        match drafted {
            Ok(Some(p)) => pending.prepared.push(p),
            Ok(None) => {}
            // The request itself cannot be answered from the data: no use
            // trying again.
            Err(ExchangeError::Invalid(why)) => pending.unanswerable.push((case_id, why)),
            // The database, the directory (sealing) or the case's state:
            // tried again at the next pass.
            Err(e) => {
                tracing::warn!(%case_id, error = %e, "automatic answer not drafted; will retry")
            }
        }
    }
    Ok(pending)
}

/// Hands requests that cannot be answered automatically to officers: the
/// case's policy becomes `officer` (it stays delivered, in the officers'
/// list) and its history says why. Returns how many were handed over.
pub fn hand_to_officers(conn: &mut DbConnection, unanswerable: &[(String, String)]) -> usize {
    let mut handed = 0;
    for (case_id, why) in unanswerable {
        match store::automatic_answer_impossible(conn, case_id, why, store::now_ms()) {
            Ok(true) => {
                handed += 1;
                tracing::warn!(%case_id, reason = %why, "request cannot be answered automatically; left for an officer");
            }
            Ok(false) => {}
            Err(e) => tracing::error!(%case_id, error = %e, "handing a request to officers failed"),
        }
    }
    handed
}

/// Stores and queues prepared automatic answers, each in its own transaction
/// or savepoint (a case answered meanwhile by another instance is refused by
/// [`store::store_answer`] and skipped). Returns how many were sent.
pub fn send_drafted(conn: &mut DbConnection, prepared: Vec<PreparedAnswer>) -> usize {
    let mut answered = 0;
    for p in prepared {
        match store::store_answer(conn, &p) {
            Ok(_) => answered += 1,
            Err(e) => {
                tracing::error!(case_id = %p.case_id(), error = %e, "automatic answer failed")
            }
        }
    }
    answered
}
