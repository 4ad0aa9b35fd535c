//! Account administration for admins: list users, create one.

use super::AppState;
use super::auth::Officer;
use super::error::ApiError;
use crate::auth::{self, NewUser, Role, UserError};
use actix_web::{HttpResponse, get, post, web};

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Invalid(m) => ApiError::BadRequest(m),
            UserError::NotFound(m) => ApiError::NotFound(format!("no user {m:?}")),
            UserError::Database(d) => ApiError::Internal(d.to_string()),
        }
    }
}

/// Every account.
#[get("/api/v1/users")]
pub async fn list(state: web::Data<AppState>, who: Officer) -> Result<HttpResponse, ApiError> {
    who.require(Role::Admin)?;
    let users = state
        .db
        .run(|conn| auth::list_users(conn).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "users": users })))
}

/// A new account.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Initial password (at least 12 characters).
    pub password: String,
    /// Roles: officer, approver, admin.
    pub roles: Vec<String>,
}

/// Creates an account.
#[post("/api/v1/users")]
pub async fn create(
    state: web::Data<AppState>,
    who: Officer,
    body: web::Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Admin)?;
    let b = body.into_inner();
    let mut roles = Vec::new();
    for r in &b.roles {
        roles.push(match r.as_str() {
            "officer" => Role::Officer,
            "approver" => Role::Approver,
            "admin" => Role::Admin,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "role {other:?}: officer, approver or admin"
                )));
            }
        });
    }
    let now = super::now_ms();
    let user = state
        .db
        .run(move |conn| {
            auth::add_user(
                conn,
                &NewUser {
                    username: &b.username,
                    display_name: &b.display_name,
                    password: &b.password,
                    roles: &roles,
                },
                now,
            )
            .map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Created().json(user))
}
