//! The API's error type: an HTTP status, a stable machine-readable code and a
//! sentence for humans, always as JSON `{"error": {"code", "message"}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// An API error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; the message names the parameter.
    #[error("{0}")]
    BadRequest(String),
    /// 401: not logged in, or the session ended.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: logged in, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: nothing by that name.
    #[error("{0}")]
    NotFound(String),
    /// 409: the thing is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// 503: the node cannot do this now (no identity, directory expired…).
    #[error("{0}")]
    Unavailable(String),
    /// 413: the body is too large.
    #[error("{0}")]
    TooLarge(String),
    /// 500: the database or the server failed; details are in the log.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            // Never leak database internals to the client; they are logged.
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                "the server could not complete the request; the node's log has the details"
                    .to_owned()
            }
            other => other.to_string(),
        };
        HttpResponse::build(self.status_code()).json(serde_json::json!({
            "error": {"code": self.code(), "message": message}
        }))
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::data::query::QueryError> for ApiError {
    fn from(e: crate::data::query::QueryError) -> Self {
        match e {
            crate::data::query::QueryError::BadRequest(m) => ApiError::BadRequest(m),
            crate::data::query::QueryError::Database(d) => ApiError::Internal(d.to_string()),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// JSON body errors (malformed, too large) in the same shape.
pub fn json_error_handler(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let api = match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => {
            ApiError::TooLarge(format!("request body too large: {err}"))
        }
        _ => ApiError::BadRequest(format!("request body: {err}")),
    };
    api.into()
}

/// Query-string errors in the same shape.
pub fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest(format!("query string: {err}")).into()
}

impl From<crate::exchange::store::ExchangeError> for ApiError {
    fn from(e: crate::exchange::store::ExchangeError) -> Self {
        use crate::exchange::store::ExchangeError as E;
        match e {
            E::Invalid(m) => ApiError::BadRequest(m),
            E::NotFound(m) => ApiError::NotFound(m),
            E::Forbidden(m) => ApiError::Forbidden(m),
            E::Conflict(m) => ApiError::Conflict(m),
            E::CaseMismatch(c) => ApiError::Conflict(format!("case {c} belongs to another Party")),
            E::Seal(m) => ApiError::Unavailable(format!("cannot seal the message: {m}")),
            E::Database(d) => ApiError::Internal(d.to_string()),
        }
    }
}
