//! User accounts.

use crate::storage::DbConnection;
use crate::storage::schema::users;
use diesel::prelude::*;
use serde::Serialize;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads cases, composes requests, answers.
    Officer,
    /// Approves answers under the two-person policy.
    Approver,
    /// Manages accounts.
    Admin,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s.trim() {
            "officer" => Some(Role::Officer),
            "approver" => Some(Role::Approver),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A user as the rest of the node sees it (no password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Database id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Name shown to colleagues and in the audit trail.
    pub display_name: String,
    /// Roles held.
    pub roles: Vec<Role>,
    /// A disabled user cannot log in.
    pub disabled: bool,
}

impl User {
    /// True when the user holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Login name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
    pub username: &'a str,
    /// Display name.
    pub display_name: &'a str,
    /// Password (at least 12 characters).
    pub password: &'a str,
    /// Roles.
    pub roles: &'a [Role],
}

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The input is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// No such user.
    #[error("no user {0:?}")]
    NotFound(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
}

type Row = (i64, String, String, String, i16);

fn from_row((id, username, display_name, roles, disabled): Row) -> User {
    User {
        id,
        username,
        display_name,
        roles: roles.split(',').filter_map(Role::parse).collect(),
        disabled: disabled != 0,
    }
}

fn check_password(password: &str) -> Result<(), UserError> {
    if password.chars().count() < 12 {
        return Err(UserError::Invalid(
            "a password has at least 12 characters".into(),
        ));
    }
    if password.len() > 1024 {
        return Err(UserError::Invalid(
            "a password has at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// Creates a user; refuses a taken name, a weak password or no role.
pub fn add_user(
    conn: &mut DbConnection,
    new: &NewUser<'_>,
    now_ms: i64,
) -> Result<User, UserError> {
    let name_ok = !new.username.is_empty()
        && new.username.len() <= 64
        && new
            .username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !name_ok {
        return Err(UserError::Invalid(format!(
            "user name {:?}: 1 to 64 letters, digits, '.', '_', '-' or '@'",
            new.username
        )));
    }
    if new.display_name.trim().is_empty() || new.display_name.len() > 200 {
        return Err(UserError::Invalid(
            "display name: 1 to 200 characters".into(),
        ));
    }
    if new.roles.is_empty() {
        return Err(UserError::Invalid("a user needs at least one role".into()));
    }
    check_password(new.password)?;
    if find_user(conn, new.username)?.is_some() {
        return Err(UserError::Invalid(format!(
            "user {:?} exists already",
            new.username
        )));
    }
    let hash = super::hash_password(new.password).map_err(UserError::Invalid)?;
    let roles: Vec<&str> = new.roles.iter().map(|r| r.as_str()).collect();
    diesel::insert_into(users::table)
        .values((
            users::username.eq(new.username),
            users::display_name.eq(new.display_name.trim()),
            users::password_hash.eq(&hash),
            users::roles.eq(roles.join(",")),
            users::disabled.eq(0i16),
            users::created_at.eq(now_ms),
        ))
        .execute(conn)?;
    find_user(conn, new.username)?.ok_or_else(|| UserError::NotFound(new.username.to_owned()))
}

/// A user by name.
pub fn find_user(conn: &mut DbConnection, username: &str) -> Result<Option<User>, UserError> {
    Ok(users::table
        .filter(users::username.eq(username))
        .select((
            users::id,
            users::username,
            users::display_name,
            users::roles,
            users::disabled,
        ))
        .first::<Row>(conn)
        .optional()?
        .map(from_row))
}

/// A user by id.
pub(crate) fn user_by_id(conn: &mut DbConnection, id: i64) -> Result<Option<User>, UserError> {
    Ok(users::table
        .find(id)
        .select((
            users::id,
            users::username,
            users::display_name,
            users::roles,
            users::disabled,
        ))
        .first::<Row>(conn)
        .optional()?
        .map(from_row))
}

/// The stored password hash of an enabled user, for login.
pub(crate) fn password_hash_of(
    conn: &mut DbConnection,
    username: &str,
) -> Result<Option<(i64, String)>, UserError> {
    Ok(users::table
        .filter(users::username.eq(username))
        .filter(users::disabled.eq(0i16))
        .select((users::id, users::password_hash))
        .first(conn)
        .optional()?)
}

/// Every user, by name.
pub fn list_users(conn: &mut DbConnection) -> Result<Vec<User>, UserError> {
    Ok(users::table
        .order(users::username)
        .select((
            users::id,
            users::username,
            users::display_name,
            users::roles,
            users::disabled,
        ))
        .load::<Row>(conn)?
        .into_iter()
        .map(from_row)
        .collect())
}

/// Disables or re-enables a user; disabling ends their sessions.
pub fn set_disabled(
    conn: &mut DbConnection,
    username: &str,
    disabled: bool,
) -> Result<(), UserError> {
    let user =
        find_user(conn, username)?.ok_or_else(|| UserError::NotFound(username.to_owned()))?;
    diesel::update(users::table.find(user.id))
        .set(users::disabled.eq(i16::from(disabled)))
        .execute(conn)?;
    if disabled {
        use crate::storage::schema::sessions;
        diesel::delete(sessions::table.filter(sessions::user_id.eq(user.id))).execute(conn)?;
    }
    Ok(())
}

/// Sets a new password; ends the user's sessions.
pub fn set_password(
    conn: &mut DbConnection,
    username: &str,
    password: &str,
) -> Result<(), UserError> {
    check_password(password)?;
    let user =
        find_user(conn, username)?.ok_or_else(|| UserError::NotFound(username.to_owned()))?;
    let hash = super::hash_password(password).map_err(UserError::Invalid)?;
    diesel::update(users::table.find(user.id))
        .set(users::password_hash.eq(hash))
        .execute(conn)?;
    use crate::storage::schema::sessions;
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user.id))).execute(conn)?;
    Ok(())
}
