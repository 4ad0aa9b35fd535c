//! `GET /api/v1/codes/{code}` (trace) and `POST /api/v1/lookup` (bulk lookup).

use super::AppState;
use super::auth::Officer;
use super::error::ApiError;
use crate::auth::Role;
use crate::data::query::{bulk, trace};
use actix_web::{HttpResponse, get, post, web};

/// Largest number of codes in one bulk lookup.
pub const MAX_LOOKUP_CODES: usize = 1_000_000;

/// The code's Art. 8.4.1 record, aggregation chain and history.
#[get("/api/v1/codes/{code}")]
pub async fn get_code(
    state: web::Data<AppState>,
    who: Officer,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Officer)?;
    let code = path.into_inner();
    let asked = code.clone();
    let found = state
        .db
        .run(move |conn| trace::trace(conn, &code).map_err(ApiError::from))
        .await?;
    match found {
        Some(t) => Ok(HttpResponse::Ok().json(t)),
        None => Err(ApiError::NotFound(format!(
            "code {asked:?} is not in this node's data"
        ))),
    }
}

/// Body of a bulk lookup.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    /// The codes, at most [`MAX_LOOKUP_CODES`].
    pub codes: Vec<String>,
}

/// Looks up many codes at once; answers in the order asked.
#[post("/api/v1/lookup")]
pub async fn lookup(
    state: web::Data<AppState>,
    who: Officer,
    body: web::Json<LookupRequest>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Officer)?;
    let codes = body.into_inner().codes;
    if codes.len() > MAX_LOOKUP_CODES {
        return Err(ApiError::TooLarge(format!(
            "{} codes asked; at most {MAX_LOOKUP_CODES} per request",
            codes.len()
        )));
    }
    if let Some(i) = codes
        .iter()
        .position(|c| c.is_empty() || c.len() > crate::data::epcis::MAX_CODE_LEN)
    {
        return Err(ApiError::BadRequest(format!(
            "codes[{i}] must be 1 to {} characters",
            crate::data::epcis::MAX_CODE_LEN
        )));
    }
    // A large list is looked up on two connections at once.
    let mut cache = bulk::LookupCache::with_spare(state.db.clone());
    let results = state
        .db
        .run(move |conn| bulk::bulk_lookup_with(conn, &codes, &mut cache).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "results": results })))
}
