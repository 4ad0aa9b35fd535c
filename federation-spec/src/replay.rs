//! Replay detection: has this sender already sent a message with this id?
//!
//! Detecting duplicates needs state that outlives one call, and state belongs
//! to the node (its database), not to this crate. So `open` asks a
//! [`SeenIds`] implementation, after the envelope has been fully authenticated.
//! [`InMemorySeenIds`] is the implementation used by the tests, the vectors
//! and single-process tools; it forgets everything on restart, so a node must
//! not use it.

use crate::party::PartyCode;
use crate::timestamp::UnixMillis;
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

/// The hook `open` calls to detect replays (SPEC.md §7.2).
///
/// `open` calls [`first_sighting`](SeenIds::first_sighting) only for an
/// envelope that passed every other check, so an attacker cannot use forged
/// envelopes to burn message ids.
///
/// A durable implementation has two reasonable shapes: record the id here,
/// atomically (for example an `INSERT` that fails on a unique key); or only
/// look it up here and insert it in the same database transaction that stores
/// the accepted message, relying on a unique constraint to catch a concurrent
/// duplicate. The second is the one to use when a crash between "seen" and
/// "stored" must not lose the message.
pub trait SeenIds {
    /// Returns `Ok(true)` if `(from, id)` has not been accepted before (and,
    /// for recording implementations, records it), `Ok(false)` if it has.
    /// `keep_until` is the earliest instant at which the entry may be
    /// forgotten: the message's `expires` plus the allowed clock skew.
    /// An `Err` means the store could not answer; `open` reports it as
    /// `internal_error` and the sender retries later.
    fn first_sighting(
        &self,
        from: PartyCode,
        id: Uuid,
        keep_until: UnixMillis,
    ) -> Result<bool, String>;
}

/// A [`SeenIds`] held in memory: for tests, vectors and tools only.
#[derive(Debug, Default)]
pub struct InMemorySeenIds {
    seen: Mutex<HashMap<(PartyCode, Uuid), UnixMillis>>,
}

impl InMemorySeenIds {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets entries whose `keep_until` is before `now`.
    pub fn purge(&self, now: UnixMillis) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|_, keep_until| *keep_until >= now);
        }
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SeenIds for InMemorySeenIds {
    fn first_sighting(
        &self,
        from: PartyCode,
        id: Uuid,
        keep_until: UnixMillis,
    ) -> Result<bool, String> {
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| "replay store lock poisoned".to_owned())?;
        Ok(seen.insert((from, id), keep_until).is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_sighting_is_reported_and_purge_forgets() {
        let store = InMemorySeenIds::new();
        let fra = PartyCode::parse("FRA").unwrap();
        let ken = PartyCode::parse("KEN").unwrap();
        let id = Uuid::from_u128(7);
        assert!(store.first_sighting(fra, id, UnixMillis(10)).unwrap());
        assert!(!store.first_sighting(fra, id, UnixMillis(10)).unwrap());
        assert!(
            store.first_sighting(ken, id, UnixMillis(10)).unwrap(),
            "ids are per sender"
        );
        store.purge(UnixMillis(11));
        assert!(store.is_empty());
    }
}
