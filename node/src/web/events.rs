//! `GET /api/v1/events`: EPCIS 2.0 event queries answering EPCIS 2.0 JSON-LD.

use super::AppState;
use super::auth::Officer;
use super::error::ApiError;
use crate::auth::Role;
use crate::data::query::events::{EventQuery, query_document, query_events};
use actix_web::{HttpRequest, HttpResponse, get, web};

/// Runs an EPCIS query. The next page, if any, is in the `Link` header
/// (`rel="next"`) and in `GS1-Next-Page-Token`.
#[get("/api/v1/events")]
pub async fn get_events(
    state: web::Data<AppState>,
    who: Officer,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Officer)?;
    let params: Vec<(String, String)> =
        web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .map_err(|e| ApiError::BadRequest(format!("query string: {e}")))?
            .into_inner();
    let query = EventQuery::from_params(&params)?;
    let page = state
        .db
        .run(move |conn| query_events(conn, &query).map_err(ApiError::from))
        .await?;
    let mut response = HttpResponse::Ok();
    response.content_type("application/ld+json");
    if let Some(token) = &page.next_page_token {
        let mut next: Vec<(String, String)> = params
            .into_iter()
            .filter(|(k, _)| k != "nextPageToken")
            .collect();
        next.push(("nextPageToken".into(), token.clone()));
        let query = next
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        response.insert_header(("Link", format!("</api/v1/events?{query}>; rel=\"next\"")));
        response.insert_header(("GS1-Next-Page-Token", token.clone()));
    }
    Ok(response.json(query_document(page.context, page.events, super::now_ms())))
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
