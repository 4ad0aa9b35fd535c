//! The Secretariat directory role: its keys (`secretariat`), its
//! administration (`admin`: register, approve, revoke, re-register, list),
//! the in-memory view of the log it serves (this file) and its HTTPS API
//! (`http`).
//!
//! The log lives in the directory's database (`directory_log`, append-only);
//! `gsp directory serve` keeps a Merkle tree of it in memory, reloads it when
//! another process (the CLI) appended, signs a checkpoint per size and caches
//! the signed snapshot. Not for: deciding what a node trusts — nodes verify
//! everything this serves, and this code serves what its database holds.

pub mod admin;
pub mod http;
pub mod secretariat;

use crate::storage::schema::directory_log;
use crate::storage::{Database, StorageError};
use crate::tls::PinSet;
use diesel::prelude::*;
use gsp_federation::directory::rules::{self, PartyState};
use gsp_federation::directory::{Checkpoint, DirectoryError, EntryKind, LogEntry, SnapshotRequest};
use gsp_federation::keys::Validity;
use gsp_federation::log::MerkleLog;
use gsp_federation::{PartyCode, UnixMillis};
use secretariat::Secretariat;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Why a directory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The record, entry or proof was refused.
    #[error("{0}")]
    Directory(#[from] DirectoryError),
    /// The database failed.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// No registration of that Party is waiting for approval.
    #[error(
        "no registration of {0} is pending: the Party must first submit its record (`gsp directory register`)"
    )]
    NoPending(String),
    /// The fingerprint confirmed out of band is not the record's.
    #[error(
        "the pending record of {party} has root key fingerprint {actual}, not {expected}: do not approve it; ask the Party through the official channel"
    )]
    FingerprintMismatch {
        /// The Party.
        party: String,
        /// What the Secretariat typed.
        expected: String,
        /// What the record holds.
        actual: String,
    },
    /// A key file or the certificate could not be made or read.
    #[error("keys: {0}")]
    Keys(String),
    /// Something given is unusable.
    #[error("{0}")]
    Invalid(String),
}

impl From<diesel::result::Error> for AdminError {
    fn from(e: diesel::result::Error) -> Self {
        AdminError::Storage(StorageError::Query(e))
    }
}

/// The log as the server holds it in memory.
pub struct LogView {
    /// The Merkle tree of every stored leaf.
    pub log: MerkleLog,
    /// Each Party's latest parseable entry: (index, entry).
    pub current: BTreeMap<PartyCode, (u64, LogEntry)>,
    /// Indices of root-key-changing and revoking entries.
    pub key_changes: Vec<u64>,
    /// TLS pins of Parties in service, with validity.
    pub pins: Vec<([u8; 32], Validity)>,
    /// The signed checkpoint of the whole log.
    pub checkpoint: Checkpoint,
    snapshot: Mutex<Option<(UnixMillis, Arc<Vec<u8>>)>>,
}

impl std::fmt::Debug for LogView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogView({} leaves)", self.log.len())
    }
}

impl LogView {
    /// Builds the view from the stored leaves (blocking).
    pub fn load(
        db: &Database,
        secretariat: &Secretariat,
        now: UnixMillis,
    ) -> Result<LogView, AdminError> {
        let mut conn = db.conn()?;
        let rows: Vec<(i64, Vec<u8>)> = directory_log::table
            .order(directory_log::leaf_index.asc())
            .select((directory_log::leaf_index, directory_log::entry))
            .load(&mut conn)?;
        let verifying = secretariat.key.verifying_key();
        let mut log = MerkleLog::new();
        let mut current: BTreeMap<PartyCode, (u64, LogEntry)> = BTreeMap::new();
        let mut states: BTreeMap<PartyCode, PartyState> = BTreeMap::new();
        let mut key_changes = Vec::new();
        for (i, (stored_index, bytes)) in rows.into_iter().enumerate() {
            let index = log.push(bytes);
            if u64::try_from(stored_index).ok() != Some(index) || i as u64 != index {
                tracing::error!(
                    stored_index,
                    index,
                    "directory log has a gap in its indices; serving leaves in order"
                );
            }
            let bytes = log.leaf(index).unwrap_or_default();
            let entry = match LogEntry::parse(bytes, &verifying, &index.to_string()) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(index, error = %e, "directory log entry does not parse or verify; it stays in the log");
                    continue;
                }
            };
            match rules::apply(states.get(&entry.party), &entry) {
                Ok((s, _)) => {
                    states.insert(entry.party, s);
                }
                Err(e) => {
                    tracing::error!(index, party = %entry.party, error = %e, "directory log entry breaks the history rules (was the database changed by hand?); serving it as stored");
                    states.insert(entry.party, PartyState::from_entry(&entry));
                }
            }
            let changes_key = match entry.kind {
                EntryKind::Record => entry
                    .record
                    .as_ref()
                    .is_some_and(|r| r.previous_root_signature.is_some()),
                EntryKind::Reregistration | EntryKind::Revocation => true,
            };
            if changes_key {
                key_changes.push(index);
            }
            current.insert(entry.party, (index, entry));
        }
        let mut pins = Vec::new();
        for (party, (_, entry)) in &current {
            let in_service = states.get(party).is_some_and(|s| !s.revoked);
            if let (true, Some(r)) = (in_service, &entry.record) {
                for p in &r.record.tls_pins {
                    pins.push((
                        p.spki_sha256.0,
                        Validity {
                            not_before: p.not_before,
                            not_after: p.not_after,
                        },
                    ));
                }
            }
        }
        let checkpoint = Checkpoint::sign(log.len(), log.root(), now, &secretariat.key);
        Ok(LogView {
            log,
            current,
            key_changes,
            pins,
            checkpoint,
            snapshot: Mutex::new(None),
        })
    }
}

/// Client certificates the directory accepts: the TLS pins of Parties in
/// service, within their validity (± 5 minutes).
#[derive(Debug, Clone, Default)]
pub struct RegisteredPins(Arc<RwLock<Vec<PinWindow>>>);

/// A TLS pin with its validity window.
pub type PinWindow = ([u8; 32], Validity);

impl PinSet for RegisteredPins {
    fn contains(&self, pin: &[u8; 32]) -> bool {
        let now = UnixMillis::now();
        self.0.read().is_ok_and(|g| {
            g.iter()
                .any(|(p, v)| p == pin && v.contains(now, Duration::from_secs(300)))
        })
    }
}

/// The running directory: database, keys, and the view it serves.
pub struct DirectoryServer {
    /// The directory's database.
    pub db: Database,
    /// The Secretariat's keys.
    pub secretariat: Arc<Secretariat>,
    /// How long snapshots are valid.
    pub validity: Duration,
    view: RwLock<Arc<LogView>>,
    /// Pins of registered nodes (client authentication).
    pub pins: RegisteredPins,
}

impl std::fmt::Debug for DirectoryServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryServer").finish_non_exhaustive()
    }
}

impl DirectoryServer {
    /// Loads the log and makes a server (blocking).
    pub fn new(
        db: Database,
        secretariat: Secretariat,
        validity: Duration,
    ) -> Result<Self, AdminError> {
        let view = LogView::load(&db, &secretariat, UnixMillis::now())?;
        let pins = RegisteredPins::default();
        if let Ok(mut g) = pins.0.write() {
            g.clone_from(&view.pins);
        }
        Ok(Self {
            db,
            secretariat: Arc::new(secretariat),
            validity,
            view: RwLock::new(Arc::new(view)),
            pins,
        })
    }

    /// The current view.
    pub fn view(&self) -> Arc<LogView> {
        match self.view.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Reloads the view if the stored log grew or changed size (blocking).
    /// Returns whether it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, AdminError> {
        let mut conn = self.db.conn()?;
        let count: i64 = directory_log::table.count().get_result(&mut conn)?;
        drop(conn);
        if u64::try_from(count).ok() == Some(self.view().log.len()) {
            return Ok(false);
        }
        let view = LogView::load(&self.db, &self.secretariat, UnixMillis::now())?;
        tracing::info!(size = view.log.len(), root = %hex::encode(view.log.root()), "directory log reloaded");
        if let Ok(mut g) = self.pins.0.write() {
            g.clone_from(&view.pins);
        }
        if let Ok(mut g) = self.view.write() {
            *g = Arc::new(view);
        }
        Ok(true)
    }

    /// The signed snapshot as JSON bytes, with a consistency proof from
    /// `from` when given and smaller than the log. Snapshots without a proof
    /// are cached and re-signed when a tenth of their validity has passed.
    pub fn snapshot_json(
        &self,
        from: Option<u64>,
        now: UnixMillis,
    ) -> Result<Arc<Vec<u8>>, AdminError> {
        let view = self.view();
        let size = view.log.len();
        let plain = from.is_none_or(|f| f >= size);
        let refresh = Duration::from_millis((self.validity.as_millis() / 10).min(3_600_000) as u64);
        if plain
            && let Ok(cache) = view.snapshot.lock()
            && let Some((issued, bytes)) = cache.as_ref()
            && now.0.saturating_sub(issued.0) < refresh.as_millis() as u64
        {
            return Ok(bytes.clone());
        }
        let current: Vec<u64> = view.current.values().map(|(i, _)| *i).collect();
        let doc = SnapshotRequest {
            log: &view.log,
            checkpoint: &view.checkpoint,
            current: &current,
            key_changes: &view.key_changes,
            from: from.filter(|f| *f < size),
            issued: now,
            valid_until: now.saturating_add(self.validity),
        }
        .build(&self.secretariat.key)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
        let bytes =
            Arc::new(serde_json::to_vec(&doc).map_err(|e| AdminError::Invalid(e.to_string()))?);
        if plain && let Ok(mut cache) = view.snapshot.lock() {
            *cache = Some((now, bytes.clone()));
        }
        Ok(bytes)
    }
}
