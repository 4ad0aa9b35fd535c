//! Sessions recently found live in the database, so that a run of API calls
//! with one token (a script, the web application's polling) does not read
//! the sessions and users tables on every call.
//!
//! An entry is trusted for [`RECHECK_MS`] after it was read, never past the
//! session's own expiry. Logging out through the API forgets it at once;
//! changes made by another process (`gsp user disable`, a password change)
//! reach this node within [`RECHECK_MS`]. Entries are keyed by the SHA-256
//! of the token, so the map holds no usable token.

use crate::auth::User;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How long a session read from the database is trusted without reading it
/// again (milliseconds).
pub const RECHECK_MS: i64 = 2_000;

/// Entries kept at most; when full, stale ones are dropped, and if none is
/// stale, all (the next call of each session reads the database again).
const MAX_ENTRIES: usize = 4_096;

/// The cache; one per node process, shared by the API workers.
#[derive(Debug, Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    /// Counts logouts: an entry read from the database before a logout is
    /// not cached after it (see [`SessionCache::epoch`]).
    logouts: AtomicU64,
}

#[derive(Debug, Clone)]
struct Entry {
    user: User,
    expires_at: i64,
    checked_at: i64,
}

fn key(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut k = [0u8; 32];
    k.copy_from_slice(d.as_ref());
    k
}

impl SessionCache {
    /// The user of `token` if it was found live less than [`RECHECK_MS`]
    /// ago and has not expired since.
    pub fn get(&self, token: &str, now: i64) -> Option<User> {
        let key = key(token);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&key)
            .filter(|e| now - e.checked_at < RECHECK_MS && now >= e.checked_at)
            .filter(|e| e.expires_at > now)
            .map(|e| e.user.clone())
    }

    /// To take before reading a session from the database and hand to
    /// [`SessionCache::put`].
    pub fn epoch(&self) -> u64 {
        self.logouts.load(Ordering::SeqCst)
    }

    /// Remembers that `token` belongs to `user` until `expires_at`, as read
    /// from the database at `now` — unless a logout happened since `epoch`
    /// was taken (the read may predate it).
    pub fn put(&self, token: &str, user: User, expires_at: i64, now: i64, epoch: u64) {
        let key = key(token);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.logouts.load(Ordering::SeqCst) != epoch {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| now - e.checked_at < RECHECK_MS && e.expires_at > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                user,
                expires_at,
                checked_at: now,
            },
        );
    }

    /// Forgets `token` (logout; call once the session is deleted).
    pub fn forget(&self, token: &str) {
        let key = key(token);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.logouts.fetch_add(1, Ordering::SeqCst);
        entries.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn user() -> User {
        User {
            id: 1,
            username: "amina".into(),
            display_name: "Amina".into(),
            roles: vec![Role::Officer],
            disabled: false,
        }
    }

    #[test]
    fn an_entry_is_trusted_for_the_recheck_time_only() {
        let c = SessionCache::default();
        c.put("t", user(), 1_000_000, 10_000, c.epoch());
        assert_eq!(c.get("t", 10_000), Some(user()));
        assert_eq!(c.get("t", 10_000 + RECHECK_MS - 1), Some(user()));
        assert_eq!(c.get("t", 10_000 + RECHECK_MS), None);
        assert_eq!(c.get("other", 10_000), None);
        // A clock that went back does not extend trust either.
        assert_eq!(c.get("t", 9_999), None);
    }

    #[test]
    fn never_past_the_sessions_expiry_and_forgotten_on_logout() {
        let c = SessionCache::default();
        c.put("t", user(), 10_500, 10_000, c.epoch());
        assert!(c.get("t", 10_499).is_some());
        assert!(c.get("t", 10_500).is_none());
        c.put("u", user(), 1_000_000, 10_000, c.epoch());
        c.forget("u");
        assert!(c.get("u", 10_001).is_none());
        // Read before the logout, offered after it: not cached.
        let before = c.epoch();
        c.forget("v");
        c.put("v", user(), 1_000_000, 10_000, before);
        assert!(c.get("v", 10_001).is_none());
    }

    #[test]
    fn a_full_cache_drops_stale_entries_first() {
        let c = SessionCache::default();
        for i in 0..MAX_ENTRIES {
            c.put(&format!("old{i}"), user(), 1_000_000, 0, c.epoch());
        }
        c.put("fresh", user(), 1_000_000, RECHECK_MS + 1, c.epoch());
        assert!(c.get("fresh", RECHECK_MS + 1).is_some());
        let n = c.entries.lock().map(|e| e.len()).unwrap_or(0);
        assert_eq!(n, 1, "the stale entries were dropped");
    }
}
