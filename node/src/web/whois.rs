//! `GET /api/v1/whois/{code}`: which Party issued this code (by the code
//! pattern library of the verified directory copy) and its focal points —
//! the first question an officer asks about a seized pack.

use super::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use gsp_federation::UnixMillis;

fn error(status: StatusCode, code: &str, message: String) -> HttpResponse {
    HttpResponse::build(status)
        .json(serde_json::json!({"error": {"code": code, "message": message}}))
}

/// Answers `{code, matches: [{party, pattern, focal_points}], directory}`;
/// 404 `not_found` when no pattern matches, 503 `directory_unavailable`
/// without a directory copy, 400 `bad_request` for a malformed code. Needs
/// an officer's session (focal-point contacts are not public).
#[get("/api/v1/whois/{code}")]
pub async fn whois(
    _who: super::auth::Officer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let code = path.into_inner();
    if code.is_empty() || code.len() > 256 || code.chars().any(char::is_control) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "a code is 1 to 256 bytes without control characters".into(),
        );
    }
    let Some(copy) = state.directory.current() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "directory_unavailable",
            "this node has no verified directory copy yet".into(),
        );
    };
    let matches = copy.whois(&code);
    let stale = copy.usable(UnixMillis::now()).err().map(|e| e.0);
    if matches.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no Party's code pattern matches {:?}",
                code.chars().take(64).collect::<String>()
            ),
        );
    }
    HttpResponse::Ok().json(serde_json::json!({
        "code": code,
        "matches": matches,
        "directory": {
            "tree_size": copy.checkpoint().size,
            "valid_until": copy.snapshot.valid_until,
            "stale": stale,
        },
    }))
}
