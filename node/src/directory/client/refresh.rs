//! Fetching, verifying and adopting a new directory copy; watching our own
//! Party's entries; checking peers' gossiped checkpoints; the background loop
//! `gsp serve` runs.
//!
//! A refused copy (bad signature or proof, rollback, fork, root-key change
//! without a proper record) raises an alarm, changes nothing on disk and
//! leaves the last good copy in use. An unreachable directory is only logged:
//! the node keeps working from its copy until that expires.

use super::fetch::{DirectoryClient, FetchError};
use super::{DirectoryHandle, VerifiedDirectory, cache};
use crate::directory::alarms::kind;
use gsp_federation::directory::{DirectoryError, EntryKind, LogEntry};
use gsp_federation::keys::VerifyingKey;
use gsp_federation::{PartyCode, UnixMillis};
use std::path::PathBuf;
use std::time::Duration;

/// What this node knows about its own Party (public parts of its identity).
#[derive(Debug, Clone)]
pub struct OwnParty {
    /// Our Party.
    pub party: PartyCode,
    /// Our root public key.
    pub root_key: VerifyingKey,
}

impl OwnParty {
    /// From the identity folder's `identity.json` (no private key is read).
    pub fn load(keys_dir: &std::path::Path) -> Result<Self, String> {
        let id = gsp_certs::Identity::load(keys_dir).map_err(|e| e.to_string())?;
        let mut root = [0u8; 32];
        hex::decode_to_slice(&id.doc.root.public_key, &mut root)
            .map_err(|_| format!("{}: bad root public key", keys_dir.display()))?;
        Ok(Self {
            party: id.doc.party,
            root_key: VerifyingKey(root),
        })
    }
}

/// Why a refresh did not produce a new copy.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The directory could not be reached or answered an error (transient).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// What the directory served was refused (alarm raised; last good copy kept).
    #[error("refused the directory's snapshot: {0}")]
    Rejected(DirectoryError),
    /// The verified copy could not be written.
    #[error(transparent)]
    Save(#[from] cache::CacheError),
}

/// What a successful refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshReport {
    /// Log size before (none on the first fetch).
    pub previous_size: Option<u64>,
    /// Log size now.
    pub size: u64,
    /// Changes per Party: (Party, leaf index, what happened).
    pub changes: Vec<(PartyCode, u64, String)>,
    /// Alarms raised about our own Party.
    pub own_alarms: Vec<String>,
}

/// Fetches, verifies and adopts directory copies for one node.
#[derive(Debug, Clone)]
pub struct Refresher {
    /// The shared copy.
    pub handle: DirectoryHandle,
    /// The directory.
    pub client: DirectoryClient,
    /// Where the copy is kept.
    pub data_dir: PathBuf,
    /// Our Party, when this node has an identity.
    pub own: Option<OwnParty>,
}

fn describe(e: &LogEntry) -> String {
    match e.kind {
        EntryKind::Record => "record".into(),
        EntryKind::Reregistration => {
            format!("re-registration by the Secretariat (reason: {})", e.reason)
        }
        EntryKind::Revocation => format!("revocation by the Secretariat (reason: {})", e.reason),
    }
}

/// Alarm messages about our own Party's entries in a verified copy: any
/// Secretariat entry, and a current record not under our root key.
pub fn own_party_findings(own: &OwnParty, copy: &VerifiedDirectory) -> Vec<String> {
    let mut out = Vec::new();
    let snap = &copy.snapshot;
    for (index, e) in &snap.history {
        if e.party == own.party && e.kind != EntryKind::Record {
            out.push(format!(
                "the directory log holds a {} for our Party {} at entry {index} that this node did not make",
                describe(e),
                own.party
            ));
        }
    }
    if let Some(cur) = snap.parties.get(&own.party) {
        match (&cur.entry.kind, &cur.entry.record) {
            (EntryKind::Record, Some(r)) if r.record.root_key() != own.root_key => out.push(format!(
                "the directory's current record for our Party {} (entry {}) is under root key {}, not this node's root key {}: this node did not make it",
                own.party,
                cur.index,
                r.record.root_key().fingerprint(),
                own.root_key.fingerprint()
            )),
            (EntryKind::Record, _) => {}
            _ => out.push(format!(
                "the directory's current entry for our Party {} (entry {}) is a {} that this node did not make",
                own.party,
                cur.index,
                describe(&cur.entry)
            )),
        }
    }
    out
}

impl Refresher {
    /// One refresh: fetch, verify alone and against the copy in use, check
    /// our own Party, save, adopt.
    pub async fn refresh_once(&self) -> Result<RefreshReport, RefreshError> {
        let now = UnixMillis::now();
        let mut status = cache::load_status(&self.data_dir);
        status.last_attempt = Some(now);
        let result = self.refresh_inner(now).await;
        match &result {
            Ok(_) => {
                status.last_success = Some(now);
                status.last_error = None;
            }
            Err(e) => status.last_error = Some(e.to_string()),
        }
        cache::save_status(&self.data_dir, &status);
        result
    }

    async fn refresh_inner(&self, now: UnixMillis) -> Result<RefreshReport, RefreshError> {
        let current = self.handle.current();
        let from = current.as_ref().map(|c| c.snapshot.checkpoint.size);
        let doc = self.client.snapshot(from).await?;
        let secretariat = self.client.secretariat;
        let checked = doc.verify(&secretariat, now).and_then(|next| {
            let changes = match &current {
                Some(prev) => prev.snapshot.check_successor(&next)?,
                None => Vec::new(),
            };
            Ok((next, changes))
        });
        let (next, changes) = match checked {
            Ok(v) => v,
            Err(e) => {
                let message = format!(
                    "refused the snapshot served by {}: {e} — the last good copy stays in use",
                    self.client.url()
                );
                self.handle
                    .alarms()
                    .raise(kind::DIRECTORY_REJECTED, &message)
                    .await;
                return Err(RefreshError::Rejected(e));
            }
        };
        let copy = VerifiedDirectory::new(next, secretariat, now);
        let mut own_alarms = Vec::new();
        if let Some(own) = &self.own {
            for m in own_party_findings(own, &copy) {
                self.handle.alarms().raise(kind::OWN_RECORD, &m).await;
                own_alarms.push(m);
            }
        }
        let (data_dir, doc2) = (self.data_dir.clone(), doc.clone());
        tokio::task::spawn_blocking(move || cache::save(&data_dir, &doc2, &secretariat, now))
            .await
            .map_err(|e| cache::CacheError::Bad {
                path: self.data_dir.join(cache::CACHE_FILE),
                message: e.to_string(),
            })??;
        let size = copy.snapshot.checkpoint.size;
        let changes: Vec<(PartyCode, u64, String)> = changes
            .into_iter()
            .map(|(p, i, t)| (p, i, format!("{t:?}")))
            .collect();
        for (p, i, t) in &changes {
            tracing::info!(party = %p, index = i, change = %t, "directory change");
        }
        self.handle.set(copy);
        Ok(RefreshReport {
            previous_size: from,
            size,
            changes,
            own_alarms,
        })
    }

    /// Checks peers' gossiped checkpoints of another size than ours with a
    /// consistency proof from the directory; raises an alarm on a mismatch.
    pub async fn check_gossip(&self) {
        for (peer, theirs) in self.handle.take_gossip() {
            let Some(copy) = self.handle.current() else {
                return;
            };
            let ours = copy.snapshot.checkpoint;
            let (small, large) = if theirs.size < ours.size {
                (theirs, ours)
            } else {
                (ours, theirs)
            };
            match self.client.consistency(small.size, large.size).await {
                Ok(proof) => {
                    if let Err(e) = gsp_federation::log::verify_consistency(
                        small.size,
                        &small.root,
                        large.size,
                        &large.root,
                        &proof,
                    ) {
                        let m = format!(
                            "{peer} holds a directory checkpoint of {} entries that is inconsistent with ours of {} entries ({e}): the directory may be showing different histories to different Parties",
                            theirs.size, ours.size
                        );
                        self.handle.alarms().raise(kind::PEER_CHECKPOINT, &m).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(peer = %peer, error = %e, "cannot check a peer's directory checkpoint now")
                }
            }
        }
    }

    /// Refreshes now and then every `interval`, forever (spawn it).
    pub async fn run(self, interval: Duration) {
        loop {
            match self.refresh_once().await {
                Ok(r) => tracing::debug!(size = r.size, "directory copy refreshed"),
                Err(RefreshError::Rejected(_)) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "directory refresh failed; working from the last verified copy")
                }
            }
            self.check_gossip().await;
            if let Some(c) = self.handle.current()
                && let Err(why) = c.usable(UnixMillis::now())
            {
                tracing::error!("{why}");
            }
            tokio::time::sleep(interval).await;
        }
    }
}
