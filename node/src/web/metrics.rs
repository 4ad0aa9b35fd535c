//! `GET /metrics`: Prometheus text exposition of the node's counters and
//! gauges — content-free numbers, on the local listener. With `[api]
//! metrics_token_sha256` set, only a request bearing that token
//! (`Authorization: Bearer …`) gets them; the token's digest is compared in
//! constant time.

use super::AppState;
use super::error::ApiError;
use crate::exchange::model::OutboxState;
use crate::metrics::Gauges;
use crate::storage::StorageError;
use crate::storage::schema::outbox;
use actix_web::{HttpRequest, HttpResponse, get, web};
use diesel::prelude::*;
use subtle::ConstantTimeEq as _;

/// Whether `req` may read the metrics: always when no token is configured;
/// else when it bears a token whose SHA-256 is `want` (64 hex digits).
fn allowed(req: &HttpRequest, want: Option<&str>) -> bool {
    let Some(want) = want else { return true };
    let mut expected = [0u8; 32];
    if hex::decode_to_slice(want, &mut expected).is_err() {
        // Config validation refuses such a value; fail closed regardless.
        return false;
    }
    let Some(token) = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    bool::from(crate::auth::token_sha256(token.trim()).ct_eq(&expected))
}

/// The metrics.
#[get("/metrics")]
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !allowed(&req, state.config.api.metrics_token_sha256.as_deref()) {
        return Err(ApiError::Unauthorized(
            "/metrics needs the bearer token configured in [api] metrics_token_sha256".into(),
        ));
    }
    let (pending, failed, alarms) = state
        .db
        .run(|conn| -> Result<(i64, i64, i64), StorageError> {
            let count =
                |conn: &mut crate::storage::DbConnection, s: OutboxState| -> QueryResult<i64> {
                    outbox::table
                        .filter(outbox::state.eq(s.to_i16()))
                        .count()
                        .get_result(conn)
                };
            let pending = count(conn, OutboxState::Pending)?;
            let failed = count(conn, OutboxState::Failed)?;
            let alarms = crate::directory::alarms::open(conn)?.len() as i64;
            Ok((pending, failed, alarms))
        })
        .await?;
    let directory_valid_seconds = state.directory.current().map(|c| {
        (i64::try_from(c.snapshot.valid_until.0).unwrap_or(i64::MAX) - super::now_ms()) / 1000
    });
    let gauges = Gauges {
        outbox_pending: Some(pending),
        outbox_failed: Some(failed),
        directory_valid_seconds,
        alarms: Some(alarms),
        sqlite_writer: state.db.writer_counts(),
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&gauges)))
}
