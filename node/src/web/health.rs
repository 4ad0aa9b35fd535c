//! `GET /api/v1/health`: is the node up and its database reachable.

use super::AppState;
use super::error::ApiError;
use actix_web::{HttpResponse, get, web};
use diesel::connection::SimpleConnection;

/// Answers 200 with the backend name when a database round trip works.
#[get("/api/v1/health")]
pub async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let backend = state.db.backend().to_string();
    state
        .db
        .run(|conn| conn.batch_execute("SELECT 1").map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ok", "database": backend})))
}
