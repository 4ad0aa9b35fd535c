//! Bearer sessions: a random token given to the user once; only its SHA-256
//! is stored, so a copy of the database does not let anyone in.

use super::users::{User, UserError, password_hash_of, user_by_id};
use crate::storage::DbConnection;
use crate::storage::Direct as _;
use crate::storage::schema::sessions;
use diesel::prelude::*;

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;

/// A started session.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Session {
    /// The bearer token (shown once).
    pub token: String,
    /// When it expires (Unix ms).
    pub expires_at: i64,
    /// Who it belongs to.
    pub user: User,
}

fn token_hash(token: &str) -> String {
    hex::encode(super::token_sha256(token))
}

/// Logs a user in. `Ok(None)` for a wrong name or password, with the same
/// work done either way (a dummy hash is checked for unknown names).
pub fn create_session(
    conn: &mut DbConnection,
    username: &str,
    password: &str,
    now_ms: i64,
) -> Result<Option<Session>, UserError> {
    // Unknown names cost a real argon2id verification too, so timing does
    // not tell which user names exist.
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let Some((user_id, hash)) = password_hash_of(conn, username)? else {
        let dummy = DUMMY.get_or_init(|| {
            super::hash_password("unguessable placeholder password").unwrap_or_default()
        });
        let _ = super::verify_password(password, dummy);
        return Ok(None);
    };
    if !super::verify_password(password, &hash) {
        return Ok(None);
    }
    let token = super::new_token()
        .ok_or_else(|| UserError::Invalid("the system random generator failed".into()))?;
    let expires_at = now_ms + SESSION_HOURS * 3_600_000;
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(token_hash(&token)),
            sessions::user_id.eq(user_id),
            sessions::created_at.eq(now_ms),
            sessions::expires_at.eq(expires_at),
        ))
        .execute_direct(conn)?;
    // Old sessions of anyone are swept here, a cheap indexed delete.
    diesel::delete(sessions::table.filter(sessions::expires_at.lt(now_ms))).execute_direct(conn)?;
    let user =
        user_by_id(conn, user_id)?.ok_or_else(|| UserError::NotFound(username.to_owned()))?;
    Ok(Some(Session {
        token,
        expires_at,
        user,
    }))
}

/// The user a token belongs to and the session's expiry (Unix ms), if the
/// session is live and the user enabled.
pub fn live_session(
    conn: &mut DbConnection,
    token: &str,
    now_ms: i64,
) -> Result<Option<(User, i64)>, UserError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let found: Option<(i64, i64)> = sessions::table
        .filter(sessions::token_hash.eq(token_hash(token)))
        .select((sessions::user_id, sessions::expires_at))
        .first_direct(conn)
        .optional()?;
    match found {
        Some((user_id, expires)) if expires > now_ms => Ok(user_by_id(conn, user_id)?
            .filter(|u| !u.disabled)
            .map(|u| (u, expires))),
        _ => Ok(None),
    }
}

/// Ends a session (logout).
pub fn end_session(conn: &mut DbConnection, token: &str) -> Result<(), UserError> {
    diesel::delete(sessions::table.filter(sessions::token_hash.eq(token_hash(token))))
        .execute_direct(conn)?;
    Ok(())
}
