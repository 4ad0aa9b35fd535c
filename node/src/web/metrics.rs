//! `GET /metrics`: Prometheus text exposition of the node's counters and
//! gauges (no authentication: content-free numbers, on the local listener).

use super::AppState;
use super::error::ApiError;
use crate::exchange::model::OutboxState;
use crate::metrics::Gauges;
use crate::storage::StorageError;
use crate::storage::schema::outbox;
use actix_web::{HttpResponse, get, web};
use diesel::prelude::*;

/// The metrics.
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
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
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&gauges)))
}
