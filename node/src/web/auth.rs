//! Logging in and out (`/api/v1/session`), who am I (`/api/v1/me`), and the
//! [`Officer`] extractor every protected handler takes.
//!
//! A session token is accepted as `Authorization: Bearer …` (scripts) or as
//! the `gsp_session` cookie (the web application; HttpOnly, SameSite=Strict).
//! Requests that change something and authenticate by cookie must also carry
//! `X-GSP-CSRF: 1`, which a cross-site form cannot add.

use super::AppState;
use super::error::ApiError;
use crate::auth::{self, Role, User};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, delete, get, post, web};
use std::future::Future;
use std::pin::Pin;

/// Cookie carrying the session token.
pub const SESSION_COOKIE: &str = "gsp_session";
/// Header a cookie-authenticated request must carry to change anything.
pub const CSRF_HEADER: &str = "X-GSP-CSRF";

/// An authenticated user (any role); see [`User::has`] for role checks.
#[derive(Debug, Clone)]
pub struct Officer(pub User);

impl Officer {
    /// Fails with 403 unless the user holds `role`.
    pub fn require(&self, role: Role) -> Result<&User, ApiError> {
        if self.0.has(role) {
            Ok(&self.0)
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {} role",
                role.as_str()
            )))
        }
    }
}

fn token_of(req: &HttpRequest) -> Option<(String, bool)> {
    if let Some(h) = req.headers().get(actix_web::http::header::AUTHORIZATION)
        && let Ok(v) = h.to_str()
        && let Some(t) = v.strip_prefix("Bearer ")
    {
        return Some((t.trim().to_owned(), false));
    }
    req.cookie(SESSION_COOKIE)
        .map(|c| (c.value().to_owned(), true))
}

impl FromRequest for Officer {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Officer, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = token_of(req);
        let unsafe_method = !matches!(
            *req.method(),
            actix_web::http::Method::GET | actix_web::http::Method::HEAD
        );
        let csrf_ok = req.headers().get(CSRF_HEADER).is_some_and(|v| v == "1");
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal("no application state".into()))?;
            let (token, from_cookie) = token.ok_or_else(|| {
                ApiError::Unauthorized("log in first (POST /api/v1/session)".into())
            })?;
            if from_cookie && unsafe_method && !csrf_ok {
                return Err(ApiError::Forbidden(format!(
                    "a request authenticated by cookie must carry {CSRF_HEADER}: 1"
                )));
            }
            let now = super::now_ms();
            if let Some(user) = state.sessions.get(&token, now) {
                return Ok(Officer(user));
            }
            let sessions = state.sessions.clone();
            let epoch = sessions.epoch();
            let user = state
                .db
                .run(move |conn| {
                    let live = auth::live_session(conn, &token, now)
                        .map_err(|e| ApiError::Internal(e.to_string()))?;
                    Ok::<_, ApiError>(live.map(|(user, expires_at)| {
                        sessions.put(&token, user.clone(), expires_at, now, epoch);
                        user
                    }))
                })
                .await?;
            user.map(Officer).ok_or_else(|| {
                ApiError::Unauthorized("the session has ended or is not valid; log in again".into())
            })
        })
    }
}

/// Body of a login.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Logs in: returns the token and sets it as a cookie.
#[post("/api/v1/session")]
pub async fn login(
    state: web::Data<AppState>,
    body: web::Json<Login>,
) -> Result<HttpResponse, ApiError> {
    let Login { username, password } = body.into_inner();
    if username.len() > 64 || password.len() > 1024 {
        return Err(ApiError::Unauthorized("wrong user name or password".into()));
    }
    let now = super::now_ms();
    let session = state
        .db
        .run(move |conn| {
            auth::create_session(conn, &username, &password, now)
                .map_err(|e| ApiError::Internal(e.to_string()))
        })
        .await?
        .ok_or_else(|| ApiError::Unauthorized("wrong user name or password".into()))?;
    let cookie = Cookie::build(SESSION_COOKIE, session.token.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::hours(
            auth::SESSION_HOURS,
        ))
        .finish();
    Ok(HttpResponse::Ok().cookie(cookie).json(session))
}

/// Logs out.
#[delete("/api/v1/session")]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    _who: Officer,
) -> Result<HttpResponse, ApiError> {
    if let Some((token, _)) = token_of(&req) {
        let sessions = state.sessions.clone();
        state
            .db
            .run(move |conn| {
                auth::end_session(conn, &token).map_err(|e| ApiError::Internal(e.to_string()))?;
                // After the delete: a call that read the session before it
                // cannot leave it cached.
                sessions.forget(&token);
                Ok::<_, ApiError>(())
            })
            .await?;
    }
    let mut gone = Cookie::new(SESSION_COOKIE, "");
    gone.set_path("/");
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

/// The logged-in user.
#[get("/api/v1/me")]
pub async fn me(who: Officer) -> HttpResponse {
    HttpResponse::Ok().json(who.0)
}
