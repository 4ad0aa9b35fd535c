//! The node's side of the directory: the verified copy it works from
//! ([`VerifiedDirectory`]), a cheap shared handle to it ([`DirectoryHandle`]),
//! fetching (`fetch`), the on-disk copy (`cache`) and the refresh loop with its
//! alarms (`refresh`).
//!
//! A node trusts nothing the directory serves until every signature and proof
//! has been checked; it keeps the last good copy when a new one is refused,
//! keeps working from it while the directory is unreachable, and fails closed
//! once the copy's validity ends.

pub mod cache;
pub mod fetch;
pub mod refresh;

use crate::directory::alarms::AlarmSink;
use crate::federation::peers::{Peer, Peers};
use gsp_federation::directory::patterns::{self, CompiledPattern};
use gsp_federation::directory::{
    Checkpoint, CodePattern, DirectoryError, FocalPoint, PartyRecord, RecordStatus,
    VerifiedSnapshot,
};
use gsp_federation::keys::{SenderKey, VerifyingKey};
use gsp_federation::{PartyCode, UnixMillis};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

/// Why federation must not use the directory copy now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub String);

/// One code pattern that matched, with its Party's contacts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WhoisMatch {
    /// The Party whose record lists the pattern.
    pub party: PartyCode,
    /// The pattern.
    pub pattern: CodePattern,
    /// The Party's focal points and competent authorities.
    pub focal_points: Vec<FocalPoint>,
}

/// What a peer's gossiped checkpoint says about our view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerCheckpoint {
    /// Same size and root as ours.
    Same,
    /// Different sizes: consistent only if a consistency proof says so.
    NeedsProof {
        /// Our checkpoint.
        ours: Box<Checkpoint>,
        /// Theirs.
        theirs: Box<Checkpoint>,
    },
    /// Same size, different roots: the directory shows different histories.
    Inconsistent(String),
}

/// A directory snapshot that passed every check, as the node uses it.
pub struct VerifiedDirectory {
    /// The verified snapshot.
    pub snapshot: VerifiedSnapshot,
    /// The Secretariat key it was verified with.
    pub secretariat: VerifyingKey,
    /// When this node fetched it.
    pub fetched_at: UnixMillis,
    patterns: OnceLock<Vec<(PartyCode, usize, CompiledPattern)>>,
    /// Checkpoint texts from peers already verified equal to ours: a peer
    /// sends the same header with every message, and verifying its
    /// signature each time cost more than the rest of the message's checks.
    same_as_ours: std::sync::RwLock<Vec<String>>,
}

/// Distinct checkpoint texts remembered as equal to ours, at most.
const SAME_REMEMBERED: usize = 64;

impl std::fmt::Debug for VerifiedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedDirectory")
            .field("size", &self.snapshot.checkpoint.size)
            .field("valid_until", &self.snapshot.valid_until)
            .finish_non_exhaustive()
    }
}

/// Skew allowed on key and pin validity windows.
const SKEW: Duration = Duration::from_secs(300);

impl VerifiedDirectory {
    /// Wraps a verified snapshot.
    pub fn new(
        snapshot: VerifiedSnapshot,
        secretariat: VerifyingKey,
        fetched_at: UnixMillis,
    ) -> Self {
        Self {
            snapshot,
            secretariat,
            fetched_at,
            patterns: OnceLock::new(),
            same_as_ours: std::sync::RwLock::new(Vec::new()),
        }
    }

    /// `Ok` while the copy is within its validity period; otherwise a
    /// sentence saying why federation stops.
    pub fn usable(&self, now: UnixMillis) -> Result<(), Unusable> {
        self.snapshot.check_time(now).map_err(|_| {
            Unusable(format!(
                "the verified directory copy (fetched {}, log size {}) expired at {}: federation traffic is refused until a fresh copy is fetched from the directory",
                gsp_certs::format_instant(self.fetched_at),
                self.snapshot.checkpoint.size,
                gsp_certs::format_instant(self.snapshot.valid_until),
            ))
        })
    }

    /// The checkpoint this copy was verified against.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.snapshot.checkpoint
    }

    /// A Party's current record, if it has one in service or withdrawn
    /// (none after a Secretariat revocation).
    pub fn record(&self, party: PartyCode) -> Option<&PartyRecord> {
        let cur = self.snapshot.parties.get(&party)?;
        if cur.state.revoked_by_secretariat {
            return None;
        }
        cur.entry.record.as_ref().map(|r| &r.record)
    }

    /// A Party's record if it is in service.
    pub fn active(&self, party: PartyCode) -> Option<&PartyRecord> {
        self.record(party)
            .filter(|r| r.status == RecordStatus::Active)
    }

    /// Parties in service.
    pub fn active_parties(&self) -> Vec<PartyCode> {
        self.snapshot
            .parties
            .keys()
            .copied()
            .filter(|p| self.active(*p).is_some())
            .collect()
    }

    /// The Party in service whose record pins this TLS key now.
    pub fn party_for_pin(&self, pin: &[u8; 32], now: UnixMillis) -> Option<PartyCode> {
        self.active_parties().into_iter().find(|p| {
            self.active(*p).is_some_and(|r| {
                r.tls_pins.iter().any(|e| {
                    e.spki_sha256.0 == *pin
                        && gsp_federation::Validity {
                            not_before: e.not_before,
                            not_after: e.not_after,
                        }
                        .contains(now, SKEW)
                })
            })
        })
    }

    /// A peer as federation needs it (in-service Parties only).
    pub fn peer(&self, party: PartyCode, now: UnixMillis) -> Option<Peer> {
        let r = self.active(party)?;
        let key = r.current_encryption_key()?;
        Some(Peer {
            party,
            urls: r.node_urls.clone(),
            tls_pins: r
                .tls_pins
                .iter()
                .filter(|e| {
                    gsp_federation::Validity {
                        not_before: e.not_before,
                        not_after: e.not_after,
                    }
                    .contains(now, SKEW)
                })
                .map(|e| e.spki_sha256.0)
                .collect(),
            encryption_key: (key.key_id(), key),
            templates: r.templates.iter().map(|t| t.name.clone()).collect(),
        })
    }

    /// Which Parties' code patterns match `code`, with their focal points
    /// (the pattern library; "who do I ask about this code?").
    pub fn whois(&self, code: &str) -> Vec<WhoisMatch> {
        let compiled = self.patterns.get_or_init(|| {
            let mut out = Vec::new();
            for party in self.active_parties() {
                if let Some(r) = self.active(party) {
                    for (i, p) in r.code_patterns.iter().enumerate() {
                        // Every pattern compiled during verification; a failure here is impossible
                        // but would only drop the pattern.
                        if let Ok(c) = patterns::compile(p) {
                            out.push((party, i, c));
                        }
                    }
                }
            }
            out
        });
        compiled
            .iter()
            .filter(|(_, _, c)| c.matches(code))
            .filter_map(|(party, i, _)| {
                let r = self.active(*party)?;
                Some(WhoisMatch {
                    party: *party,
                    pattern: r.code_patterns.get(*i)?.clone(),
                    focal_points: r.focal_points.clone(),
                })
            })
            .collect()
    }

    /// Compares a peer's gossiped checkpoint (base64) with ours.
    pub fn compare_checkpoint(&self, text: &str) -> Result<PeerCheckpoint, DirectoryError> {
        if self
            .same_as_ours
            .read()
            .is_ok_and(|known| known.iter().any(|k| k == text))
        {
            return Ok(PeerCheckpoint::Same);
        }
        let theirs = Checkpoint::from_base64(text, &self.secretariat)?;
        let ours = self.snapshot.checkpoint;
        Ok(if theirs.size == ours.size {
            if theirs.root == ours.root {
                if let Ok(mut known) = self.same_as_ours.write()
                    && known.len() < SAME_REMEMBERED
                {
                    known.push(text.to_owned());
                }
                PeerCheckpoint::Same
            } else {
                PeerCheckpoint::Inconsistent(format!(
                    "a peer holds a directory checkpoint of {} entries with root {}, ours has root {}: the directory is showing different histories",
                    ours.size,
                    hex::encode(theirs.root),
                    hex::encode(ours.root)
                ))
            }
        } else {
            PeerCheckpoint::NeedsProof {
                ours: Box::new(ours),
                theirs: Box::new(theirs),
            }
        })
    }
}

impl gsp_federation::SenderKeys for VerifiedDirectory {
    fn signing_keys(&self, party: PartyCode) -> Vec<SenderKey> {
        self.active(party)
            .map(PartyRecord::sender_keys)
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    current: RwLock<Option<Arc<VerifiedDirectory>>>,
    alarms: RwLock<AlarmSink>,
    gossip: Mutex<Vec<(PartyCode, Checkpoint)>>,
}

/// The node's current verified directory copy, shared by the API, federation
/// and the refresh task (cheap to clone).
#[derive(Clone, Default)]
pub struct DirectoryHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DirectoryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DirectoryHandle")
            .field(&self.current())
            .finish()
    }
}

impl DirectoryHandle {
    /// A handle holding `copy` (or nothing).
    pub fn new(copy: Option<VerifiedDirectory>, alarms: AlarmSink) -> Self {
        let h = Self::default();
        if let Some(c) = copy {
            h.set(c);
        }
        h.set_alarms(alarms);
        h
    }

    /// The current copy.
    pub fn current(&self) -> Option<Arc<VerifiedDirectory>> {
        self.inner.current.read().ok().and_then(|g| g.clone())
    }

    /// Replaces the current copy (only the refresh task does this, after verification).
    pub fn set(&self, copy: VerifiedDirectory) {
        if let Ok(mut g) = self.inner.current.write() {
            *g = Some(Arc::new(copy));
        }
    }

    /// Where alarms raised through this handle go.
    pub fn set_alarms(&self, alarms: AlarmSink) {
        if let Ok(mut g) = self.inner.alarms.write() {
            *g = alarms;
        }
    }

    /// The alarm sink.
    pub fn alarms(&self) -> AlarmSink {
        self.inner
            .alarms
            .read()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// `Ok` while federation may run; otherwise why not.
    pub fn usable(&self, now: UnixMillis) -> Result<(), Unusable> {
        match self.current() {
            Some(c) => c.usable(now),
            None => Err(Unusable(
                "this node has no verified directory copy yet (is [directory] configured and the directory reachable?): federation traffic is refused".into(),
            )),
        }
    }

    /// Checkpoints peers sent with a size different from ours, waiting for
    /// the refresh task to check them with a consistency proof.
    pub fn take_gossip(&self) -> Vec<(PartyCode, Checkpoint)> {
        self.inner
            .gossip
            .lock()
            .map(|mut g| std::mem::take(&mut *g))
            .unwrap_or_default()
    }
}

impl Peers for DirectoryHandle {
    fn usable(&self, now_ms: i64) -> Result<(), String> {
        DirectoryHandle::usable(self, UnixMillis(u64::try_from(now_ms).unwrap_or(0)))
            .map_err(|e| e.0)
    }

    fn party_for_pin(&self, spki_sha256: &[u8; 32]) -> Option<PartyCode> {
        self.current()?
            .party_for_pin(spki_sha256, UnixMillis::now())
    }

    fn peer(&self, party: PartyCode) -> Option<Peer> {
        self.current()?.peer(party, UnixMillis::now())
    }

    fn signing_keys(&self, party: PartyCode) -> Vec<SenderKey> {
        self.current()
            .map(|c| gsp_federation::SenderKeys::signing_keys(c.as_ref(), party))
            .unwrap_or_default()
    }

    fn checkpoint(&self) -> Option<String> {
        self.current().map(|c| c.checkpoint().to_base64())
    }

    fn observe_checkpoint(&self, from: PartyCode, checkpoint: &str) {
        let Some(c) = self.current() else { return };
        match c.compare_checkpoint(checkpoint) {
            Ok(PeerCheckpoint::Same) => {}
            Ok(PeerCheckpoint::NeedsProof { theirs, .. }) => {
                if let Ok(mut g) = self.inner.gossip.lock()
                    && g.len() < 1024
                {
                    g.push((from, *theirs));
                }
            }
            Ok(PeerCheckpoint::Inconsistent(why)) => {
                let sink = self.alarms();
                let message = format!("{from}: {why}");
                std::thread::spawn(move || {
                    sink.raise_blocking(crate::directory::alarms::kind::PEER_CHECKPOINT, &message)
                });
            }
            Err(e) => {
                tracing::warn!(peer = %from, error = %e, "a peer sent a directory checkpoint that does not verify")
            }
        }
    }
}
