//! Officers' accounts: users with roles, argon2id password hashes and
//! bearer sessions for the local API and the web application.
//!
//! Roles: `officer` (read cases, compose, answer), `approver` (second person
//! on answers under the two-person policy), `admin` (manage accounts).
//! Not for: node-to-node authentication, which is mutual TLS plus signed
//! envelopes (see `federation`).

mod password;
mod sessions;
mod token;
mod users;

pub use password::{hash_password, verify_password};
pub use sessions::{SESSION_HOURS, Session, create_session, end_session, live_session};
pub use token::{new_token, token_sha256};
pub use users::{
    NewUser, Role, User, UserError, add_user, find_user, list_users, set_disabled, set_password,
};
