//! Cases for officers: list, read, compose from a template, answer, approve,
//! close, download attachments, export a case as JSON or CSV.

use super::AppState;
use super::auth::Officer;
use super::error::ApiError;
use crate::auth::Role;
use crate::exchange::store::{self, CaseFilter, ComposeRequest, NewAttachment, Slot};
use actix_web::{HttpResponse, get, post, web};
use base64::Engine as _;
use gsp_federation::PartyCode;
use serde_json::Value;

/// An attachment in a request body: content as base64.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentIn {
    /// File name.
    pub name: String,
    /// Media type.
    pub media_type: String,
    /// Content, base64 (standard alphabet).
    pub content_base64: String,
}

fn decode(attachments: Vec<AttachmentIn>) -> Result<Vec<NewAttachment>, ApiError> {
    attachments
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(a.content_base64.as_bytes())
                .map_err(|e| {
                    ApiError::BadRequest(format!("attachments[{i}].content_base64: {e}"))
                })?;
            Ok(NewAttachment {
                name: a.name,
                media_type: a.media_type,
                bytes,
                slot: Slot::Attachments,
            })
        })
        .collect()
}

fn federation(state: &AppState) -> Result<std::sync::Arc<crate::federation::Federation>, ApiError> {
    state.federation.clone().ok_or_else(|| {
        ApiError::Unavailable(
            "this node has no federation identity (gsp certs init, then restart gsp serve)".into(),
        )
    })
}

/// Case list: `?state=&role=&template=&limit=`.
#[get("/api/v1/cases")]
pub async fn list(
    state: web::Data<AppState>,
    who: Officer,
    filter: web::Query<CaseFilter>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Officer)?;
    let filter = filter.into_inner();
    let cases = state
        .db
        .run(move |conn| store::list_cases(conn, &filter).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "cases": cases })))
}

/// A new request.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeIn {
    /// The Party asked.
    pub to: String,
    /// Template name.
    pub template: String,
    /// Request fields.
    pub body: Value,
    /// Files.
    #[serde(default)]
    pub attachments: Vec<AttachmentIn>,
}

/// Composes and sends a request; answers `201` with the case id.
#[post("/api/v1/cases")]
pub async fn compose(
    state: web::Data<AppState>,
    who: Officer,
    req: actix_web::HttpRequest,
    body: web::Json<ComposeIn>,
) -> Result<HttpResponse, ApiError> {
    let size = crate::offload::declared_size(&req);
    let user = who.require(Role::Officer)?.clone();
    let fed = federation(&state)?;
    let ComposeIn {
        to,
        template,
        body,
        attachments,
    } = body.into_inner();
    let to = PartyCode::parse(&to).map_err(|e| ApiError::BadRequest(format!("to: {e}")))?;
    let attachments = decode(attachments)?;
    let settings = state.config.exchange.clone();
    let peer = to;
    // Validate and seal outside the database's writer (the write only
    // stores what was sealed), and off the async threads if large.
    let prepared = crate::offload::cpu(size, move || {
        let req = ComposeRequest {
            to,
            template,
            body,
            attachments,
        };
        store::prepare_request(&fed.sealer(), &settings, &user, req, store::now_ms())
    })
    .await
    .map_err(ApiError::Internal)??;
    // Straight to the peer's delivery worker if it has a place (see
    // `federation::wake`); a place not used goes back when dropped.
    let place = state.outbox_wake.place_for(peer.as_str(), store::now_ms());
    let claim = place.as_ref().map(|p| p.claim().clone());
    let (case_id, due) = state
        .db
        .write_rerunnable(move |conn| {
            store::store_request(conn, &prepared, claim.as_ref()).map_err(ApiError::from)
        })
        .await?;
    match (place, due) {
        (Some(place), Some(due)) => place.hand(due),
        _ => state.wake_outbox_for(peer),
    }
    Ok(HttpResponse::Created().json(serde_json::json!({ "case_id": case_id })))
}

/// A case with its messages and history. Opening a request received marks it read.
#[get("/api/v1/cases/{id}")]
pub async fn detail(
    state: web::Data<AppState>,
    who: Officer,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = who.require(Role::Officer)?.clone();
    let id = path.into_inner();
    let found = state
        .db
        .run(move |conn| {
            store::mark_read(conn, &user, &id, store::now_ms())?;
            store::case_detail(conn, &id).map_err(ApiError::from)
        })
        .await?;
    found
        .map(|d| HttpResponse::Ok().json(d))
        .ok_or_else(|| ApiError::NotFound("no such case".into()))
}

/// An answer.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerIn {
    /// Answer fields: `outcome` (full, partial, declined), `decline_reason`,
    /// `handling`, and the template's own fields.
    pub body: Value,
    /// Files.
    #[serde(default)]
    pub attachments: Vec<AttachmentIn>,
}

/// Answers a request received (held for approval under the two-person policy).
#[post("/api/v1/cases/{id}/answer")]
pub async fn answer(
    state: web::Data<AppState>,
    who: Officer,
    path: web::Path<String>,
    body: web::Json<AnswerIn>,
) -> Result<HttpResponse, ApiError> {
    let user = who.require(Role::Officer)?.clone();
    let fed = federation(&state)?;
    let id = path.into_inner();
    let AnswerIn { body, attachments } = body.into_inner();
    let attachments = decode(attachments)?;
    let settings = state.config.exchange.clone();
    // Check and seal with a reading connection; the write checks the case
    // again and stores what was sealed.
    let prepared = state
        .db
        .run(move |conn| {
            store::prepare_answer(
                conn,
                &fed.sealer(),
                &settings,
                Some(&user),
                &id,
                body,
                attachments,
                store::now_ms(),
            )
            .map_err(ApiError::from)
        })
        .await?;
    let peer = prepared.to();
    let message_id = state
        .db
        .write(move |conn| store::store_answer(conn, &prepared).map_err(ApiError::from))
        .await?;
    state.wake_outbox_for(peer);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "message_id": message_id })))
}

/// Approves the answer waiting in a case.
#[post("/api/v1/cases/{id}/approve")]
pub async fn approve(
    state: web::Data<AppState>,
    who: Officer,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = who.require(Role::Approver)?.clone();
    let fed = federation(&state)?;
    let id = path.into_inner();
    let settings = state.config.exchange.clone();
    let message_id = state
        .db
        .write(move |conn| {
            let sealer = fed.sealer();
            store::approve(conn, &sealer, &settings, &user, &id, store::now_ms())
                .map_err(ApiError::from)
        })
        .await?;
    state.wake_outbox();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "message_id": message_id })))
}

/// Closes a case.
#[post("/api/v1/cases/{id}/close")]
pub async fn close(
    state: web::Data<AppState>,
    who: Officer,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = who.require(Role::Officer)?.clone();
    let id = path.into_inner();
    state
        .db
        .write(move |conn| store::close(conn, &user, &id, store::now_ms()).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Downloads a message's body (an attachment, or a JSON message as a file).
#[get("/api/v1/cases/{id}/messages/{message_id}/body")]
pub async fn message_body(
    state: web::Data<AppState>,
    who: Officer,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Officer)?;
    let (id, mid) = path.into_inner();
    let found = state
        .db
        .run(move |conn| store::message_body(conn, &id, &mid).map_err(ApiError::from))
        .await?;
    let (content_type, bytes) =
        found.ok_or_else(|| ApiError::NotFound("no such message in this case".into()))?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Disposition", "attachment"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes))
}

/// Export format.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// Downloads a case and its answers: JSON (everything) or CSV (one row per
/// message; for code verifications, one row per code answered).
#[get("/api/v1/cases/{id}/export")]
pub async fn export(
    state: web::Data<AppState>,
    who: Officer,
    path: web::Path<String>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Officer)?;
    let id = path.into_inner();
    let format = q.into_inner().format.unwrap_or_else(|| "json".into());
    let fid = id.clone();
    let case = state
        .db
        .run(move |conn| store::case_detail(conn, &fid).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::NotFound("no such case".into()))?;
    match format.as_str() {
        "json" => Ok(HttpResponse::Ok()
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"case-{id}.json\""),
            ))
            .json(case)),
        "csv" => {
            let db = state.db.clone();
            let csv = db
                .run(move |conn| {
                    crate::exchange::export::case_csv(conn, &case).map_err(ApiError::from)
                })
                .await?;
            Ok(HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    "Content-Disposition",
                    format!("attachment; filename=\"case-{id}.csv\""),
                ))
                .body(csv))
        }
        other => Err(ApiError::BadRequest(format!(
            "format {other:?}: json or csv"
        ))),
    }
}

/// A draft answer built from this node's data (uid-verification,
/// supply-chain-trace) for the officer to review and send; 409 while an
/// attachment of the request has not arrived.
#[get("/api/v1/cases/{id}/draft-answer")]
pub async fn draft_answer(
    state: web::Data<AppState>,
    who: Officer,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Officer)?;
    let id = path.into_inner();
    let settings = state.config.exchange.clone();
    let draft = state
        .db
        .run(move |conn| {
            crate::exchange::auto::draft_answer(conn, &id, &settings).map_err(ApiError::from)
        })
        .await?;
    let (body, attachments) = draft.ok_or_else(|| {
        ApiError::Conflict("the request's codes attachment has not arrived yet".into())
    })?;
    let attachments: Vec<serde_json::Value> = attachments
        .into_iter()
        .map(|a| {
            serde_json::json!({
                "name": a.name,
                "media_type": a.media_type,
                "content_base64": base64::engine::general_purpose::STANDARD.encode(&a.bytes),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "body": body, "attachments": attachments })))
}
