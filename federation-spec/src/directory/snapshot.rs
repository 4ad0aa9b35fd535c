//! Snapshots: the whole current directory in one signed, self-proving
//! document (SPEC.md §18.6), and the checks a node makes before it trusts one
//! — alone ([`SnapshotDoc::verify`]) and as the successor of the copy it
//! already holds ([`VerifiedSnapshot::check_successor`]).
//!
//! A snapshot document is JSON holding a checkpoint, a signed **statement**
//! (tree size and root, validity period, and the index and leaf hash of each
//! Party's current entry), each of those entries with its inclusion proof,
//! and optionally a consistency proof from the size the node last accepted
//! plus the root-key-changing entries since then.
//!
//! Statement layout:
//!
//! ```text
//! "GSPS" | u16 version=1 | u64 tree_size | bytes[32] root_hash | u64 issued
//! | u64 valid_until | u32 count | count × (u64 index | bytes[32] leaf_hash)
//! | bytes[8] key_id | bytes[64] signature
//! ```

use super::DOMAIN_SNAPSHOT;
use super::checkpoint::Checkpoint;
use super::entry::{EntryKind, LogEntry};
use super::error::DirectoryError;
use super::record::Hex32;
use super::rules::{self, PartyState, Transition};
use crate::encoding::Reader;
use crate::keys::{KeyId, SigningKey, VerifyingKey, fingerprint};
use crate::log::{self, Hash, MerkleLog, ProofError};
use crate::party::PartyCode;
use crate::timestamp::UnixMillis;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `format` of a snapshot document.
pub const SNAPSHOT_FORMAT: &str = "gsp-directory-snapshot/1";
/// The four bytes every statement starts with: ASCII `GSPS`.
pub const STATEMENT_MAGIC: [u8; 4] = *b"GSPS";
/// Most entries in one snapshot.
pub const MAX_SNAPSHOT_ENTRIES: usize = 10_000;
/// Largest snapshot document, bytes.
pub const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;
/// Longest validity period a snapshot may claim: 30 days.
pub const MAX_VALIDITY_MS: u64 = 30 * 86_400_000;
/// How far in the future `issued` may be (clock skew): 1 hour.
pub const MAX_SKEW_MS: u64 = 3_600_000;
/// Most hashes in one proof.
pub const MAX_PROOF_HASHES: usize = 64;

/// The signed statement inside a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Tree size (equals the checkpoint's).
    pub size: u64,
    /// Root hash (equals the checkpoint's).
    pub root: Hash,
    /// When the Secretariat issued the snapshot.
    pub issued: UnixMillis,
    /// Until when nodes may rely on it.
    pub valid_until: UnixMillis,
    /// Each Party's current entry: (leaf index, leaf hash), ascending by index.
    pub entries: Vec<(u64, Hash)>,
    /// Key id of the Secretariat key.
    pub key_id: KeyId,
    /// The signature.
    pub signature: [u8; 64],
}

impl Statement {
    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(70 + 40 * self.entries.len());
        out.extend_from_slice(&STATEMENT_MAGIC);
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.issued.0.to_be_bytes());
        out.extend_from_slice(&self.valid_until.0.to_be_bytes());
        out.extend_from_slice(
            &u32::try_from(self.entries.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for (i, h) in &self.entries {
            out.extend_from_slice(&i.to_be_bytes());
            out.extend_from_slice(h);
        }
        out.extend_from_slice(&self.key_id.0);
        out
    }

    /// Signs the statement with the Secretariat key (sets `key_id` and `signature`).
    pub fn sign(mut self, key: &SigningKey) -> Self {
        self.key_id = key.key_id();
        self.signature = key.sign(DOMAIN_SNAPSHOT, &self.unsigned_bytes());
        self
    }

    /// The encoded statement.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.unsigned_bytes();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses and verifies a statement.
    pub fn parse(bytes: &[u8], secretariat: &VerifyingKey) -> Result<Self, DirectoryError> {
        let bad = |m: String| DirectoryError::malformed("snapshot statement", m);
        let dec = |e: crate::encoding::DecodeError| bad(e.to_string());
        let mut r = Reader::new(bytes);
        if r.array::<4>("magic").map_err(dec)? != STATEMENT_MAGIC {
            return Err(bad("does not start with GSPS".into()));
        }
        let version = r.u16("version").map_err(dec)?;
        if version != 1 {
            return Err(bad(format!("version {version}, only 1 is known")));
        }
        let size = r.u64("tree_size").map_err(dec)?;
        let root = r.array::<32>("root_hash").map_err(dec)?;
        let issued = UnixMillis(r.u64("issued").map_err(dec)?);
        let valid_until = UnixMillis(r.u64("valid_until").map_err(dec)?);
        let count = usize::try_from(r.u32("count").map_err(dec)?).unwrap_or(usize::MAX);
        if count > MAX_SNAPSHOT_ENTRIES {
            return Err(bad(format!(
                "lists {count} entries, at most {MAX_SNAPSHOT_ENTRIES}"
            )));
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let i = r.u64("entry index").map_err(dec)?;
            let h = r.array::<32>("entry leaf hash").map_err(dec)?;
            entries.push((i, h));
        }
        let signed_len = r.position() + 8;
        let key_id = KeyId(r.array::<8>("key_id").map_err(dec)?);
        let signature = r.array::<64>("signature").map_err(dec)?;
        r.finish("bytes after the signature").map_err(dec)?;
        if key_id != secretariat.key_id() {
            return Err(DirectoryError::BadSignature {
                what: format!(
                    "snapshot statement (signed by key {key_id}, the Secretariat key is {})",
                    secretariat.key_id()
                ),
            });
        }
        secretariat
            .verify(
                DOMAIN_SNAPSHOT,
                bytes.get(..signed_len).unwrap_or_default(),
                &signature,
            )
            .map_err(|_| DirectoryError::BadSignature {
                what: "snapshot statement".into(),
            })?;
        Ok(Statement {
            size,
            root,
            issued,
            valid_until,
            entries,
            key_id,
            signature,
        })
    }
}

/// An entry with its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenEntry {
    /// Leaf index.
    pub index: u64,
    /// Entry bytes, base64.
    pub entry: String,
    /// Inclusion proof in the checkpoint's tree, bottom-up.
    pub inclusion: Vec<Hex32>,
}

/// A consistency proof from an older tree size to the snapshot's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyDoc {
    /// The older size (the one the client said it holds).
    pub from: u64,
    /// The proof, RFC 9162 order.
    pub proof: Vec<Hex32>,
}

/// The snapshot document as served (`GET /directory/v1/snapshot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotDoc {
    /// Always [`SNAPSHOT_FORMAT`].
    pub format: String,
    /// The checkpoint, base64.
    pub checkpoint: String,
    /// The signed statement, base64.
    pub statement: String,
    /// Each Party's current entry, in the statement's order.
    pub entries: Vec<ProvenEntry>,
    /// Entries after `consistency.from` that changed a root key or revoked a
    /// Party (kind 1 with a previous-root signature, kinds 2 and 3), ascending.
    pub history: Vec<ProvenEntry>,
    /// Consistency proof from the size the client holds, when it said one.
    pub consistency: Option<ConsistencyDoc>,
}

/// A Party's current entry in a verified snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentEntry {
    /// Leaf index.
    pub index: u64,
    /// Leaf hash.
    pub leaf_hash: Hash,
    /// The entry.
    pub entry: LogEntry,
    /// The Party's state it establishes.
    pub state: PartyState,
}

/// A snapshot whose every signature and proof has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSnapshot {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// When it was issued.
    pub issued: UnixMillis,
    /// Until when it may be used.
    pub valid_until: UnixMillis,
    /// Current entry of every Party ever registered.
    pub parties: BTreeMap<PartyCode, CurrentEntry>,
    /// Root-key-changing and revoking entries since the client's size.
    pub history: Vec<(u64, LogEntry)>,
    /// The consistency proof (from size, hashes), if the document had one.
    pub consistency: Option<(u64, Vec<Hash>)>,
}

fn b64(what: &str, s: &str, max: usize) -> Result<Vec<u8>, DirectoryError> {
    if s.len() > max.saturating_mul(4) / 3 + 4 {
        return Err(DirectoryError::TooLarge {
            what: what.to_owned(),
            size: s.len() / 4 * 3,
            limit: max,
        });
    }
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| DirectoryError::malformed(what, format!("not base64: {e}")))
}

fn hashes(what: &str, list: &[Hex32]) -> Result<Vec<Hash>, DirectoryError> {
    if list.len() > MAX_PROOF_HASHES {
        return Err(DirectoryError::malformed(
            what,
            format!("holds {} hashes, at most {MAX_PROOF_HASHES}", list.len()),
        ));
    }
    Ok(list.iter().map(|h| h.0).collect())
}

fn prove(log: &MerkleLog, index: u64, size: u64) -> Result<ProvenEntry, ProofError> {
    let leaf = log
        .leaf(index)
        .ok_or(ProofError::IndexOutOfRange { index, size })?;
    Ok(ProvenEntry {
        index,
        entry: base64::engine::general_purpose::STANDARD.encode(leaf),
        inclusion: log
            .inclusion_proof(index, size)?
            .into_iter()
            .map(Hex32)
            .collect(),
    })
}

/// What the directory puts in a snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotRequest<'a> {
    /// The log (its whole length is the snapshot's tree size).
    pub log: &'a MerkleLog,
    /// The signed checkpoint of the whole log.
    pub checkpoint: &'a Checkpoint,
    /// Leaf indices of each Party's current entry.
    pub current: &'a [u64],
    /// Leaf indices of root-key-changing and revoking entries (all of them;
    /// those before `from` are left out).
    pub key_changes: &'a [u64],
    /// The size the client holds, if it said.
    pub from: Option<u64>,
    /// Issue time.
    pub issued: UnixMillis,
    /// End of validity.
    pub valid_until: UnixMillis,
}

impl SnapshotRequest<'_> {
    /// Builds and signs the snapshot document. The statement could be cached
    /// per tree size; the proofs are cheap.
    pub fn build(&self, key: &SigningKey) -> Result<SnapshotDoc, ProofError> {
        let size = self.checkpoint.size;
        let mut current = self.current.to_vec();
        current.sort_unstable();
        let mut entries = Vec::with_capacity(current.len());
        let mut listed = Vec::with_capacity(current.len());
        for &i in &current {
            let p = prove(self.log, i, size)?;
            let leaf = self.log.leaf(i).unwrap_or_default();
            listed.push((i, log::leaf_hash(leaf)));
            entries.push(p);
        }
        let statement = Statement {
            size,
            root: self.checkpoint.root,
            issued: self.issued,
            valid_until: self.valid_until,
            entries: listed,
            key_id: key.key_id(),
            signature: [0; 64],
        }
        .sign(key);
        let from = self.from.filter(|f| *f <= size);
        let mut history = Vec::new();
        let mut consistency = None;
        if let Some(from) = from {
            for &i in self
                .key_changes
                .iter()
                .filter(|i| **i >= from && **i < size)
            {
                history.push(prove(self.log, i, size)?);
            }
            consistency = Some(ConsistencyDoc {
                from,
                proof: self
                    .log
                    .consistency_proof(from, size)?
                    .into_iter()
                    .map(Hex32)
                    .collect(),
            });
        }
        let enc = base64::engine::general_purpose::STANDARD;
        Ok(SnapshotDoc {
            format: SNAPSHOT_FORMAT.into(),
            checkpoint: enc.encode(self.checkpoint.to_bytes()),
            statement: enc.encode(statement.to_bytes()),
            entries,
            history,
            consistency,
        })
    }
}

fn verify_proven(
    p: &ProvenEntry,
    checkpoint: &Checkpoint,
    secretariat: &VerifyingKey,
    what: &str,
) -> Result<(Hash, LogEntry), DirectoryError> {
    let at = format!("{what} at index {}", p.index);
    let bytes = b64(&at, &p.entry, super::entry::MAX_ENTRY_BYTES)?;
    let leaf_hash = log::leaf_hash(&bytes);
    let proof = hashes(&format!("inclusion proof of {at}"), &p.inclusion)?;
    log::verify_inclusion_of_hash(
        &leaf_hash,
        p.index,
        checkpoint.size,
        &checkpoint.root,
        &proof,
    )
    .map_err(|source| DirectoryError::Proof {
        what: format!("inclusion proof of {at} in the tree of {}", checkpoint.size),
        source,
    })?;
    let entry = LogEntry::parse(&bytes, secretariat, &format!("{}", p.index))?;
    Ok((leaf_hash, entry))
}

impl SnapshotDoc {
    /// Parses a snapshot document (bounded).
    pub fn from_json(bytes: &[u8]) -> Result<Self, DirectoryError> {
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            return Err(DirectoryError::TooLarge {
                what: "snapshot".into(),
                size: bytes.len(),
                limit: MAX_SNAPSHOT_BYTES,
            });
        }
        serde_json::from_slice(bytes)
            .map_err(|e| DirectoryError::malformed("snapshot document", e.to_string()))
    }

    /// Every check a snapshot must pass on its own (SPEC.md §18.8 steps
    /// 1–7): the Secretariat's signatures, the validity period at `now`,
    /// every entry's inclusion in the checkpoint and its own signatures, one
    /// entry per Party.
    pub fn verify(
        &self,
        secretariat: &VerifyingKey,
        now: UnixMillis,
    ) -> Result<VerifiedSnapshot, DirectoryError> {
        let v = self.verify_ignoring_time(secretariat)?;
        v.check_time(now)?;
        Ok(v)
    }

    /// [`Self::verify`] without the validity-period check: for reloading a
    /// copy from disk, whose checkpoint still guards against rollback after
    /// the copy has expired.
    pub fn verify_ignoring_time(
        &self,
        secretariat: &VerifyingKey,
    ) -> Result<VerifiedSnapshot, DirectoryError> {
        if self.format != SNAPSHOT_FORMAT {
            return Err(DirectoryError::malformed(
                "snapshot document",
                format!("format must be {SNAPSHOT_FORMAT:?}"),
            ));
        }
        let checkpoint =
            Checkpoint::parse(&b64("checkpoint", &self.checkpoint, 256)?, secretariat)?;
        let statement = Statement::parse(
            &b64(
                "snapshot statement",
                &self.statement,
                48 * MAX_SNAPSHOT_ENTRIES + 256,
            )?,
            secretariat,
        )?;
        if statement.size != checkpoint.size || statement.root != checkpoint.root {
            return Err(DirectoryError::malformed(
                "snapshot statement",
                format!(
                    "names tree size {} but the checkpoint says {} (or the roots differ)",
                    statement.size, checkpoint.size
                ),
            ));
        }
        if statement.valid_until < statement.issued
            || statement.valid_until.0 - statement.issued.0 > MAX_VALIDITY_MS
        {
            return Err(DirectoryError::malformed(
                "snapshot statement",
                "the validity period is negative or longer than 30 days",
            ));
        }
        if self.entries.len() != statement.entries.len() {
            return Err(DirectoryError::malformed(
                "snapshot document",
                format!(
                    "has {} entries, the signed statement lists {}",
                    self.entries.len(),
                    statement.entries.len()
                ),
            ));
        }
        let mut parties = BTreeMap::new();
        let mut last: Option<u64> = None;
        for (p, (index, hash)) in self.entries.iter().zip(&statement.entries) {
            if p.index != *index || last.is_some_and(|l| l >= *index) {
                return Err(DirectoryError::malformed(
                    "snapshot document",
                    format!(
                        "entry index {} does not match the statement's {index} (or indices are not ascending)",
                        p.index
                    ),
                ));
            }
            last = Some(*index);
            let (leaf_hash, entry) = verify_proven(p, &checkpoint, secretariat, "entry")?;
            if leaf_hash != *hash {
                return Err(DirectoryError::malformed(
                    "snapshot document",
                    format!("entry at index {index} is not the one the signed statement lists"),
                ));
            }
            let state = PartyState::from_entry(&entry);
            let code = entry.party;
            let current = CurrentEntry {
                index: *index,
                leaf_hash,
                entry,
                state,
            };
            if parties.insert(code, current).is_some() {
                return Err(DirectoryError::malformed(
                    "snapshot document",
                    format!("two current entries for {code}"),
                ));
            }
        }
        let mut history = Vec::with_capacity(self.history.len());
        let mut last: Option<u64> = None;
        for p in &self.history {
            if last.is_some_and(|l| l >= p.index) {
                return Err(DirectoryError::malformed(
                    "snapshot history",
                    "indices are not ascending",
                ));
            }
            last = Some(p.index);
            let (_, entry) = verify_proven(p, &checkpoint, secretariat, "history entry")?;
            history.push((p.index, entry));
        }
        let consistency = match &self.consistency {
            Some(c) => Some((c.from, hashes("consistency proof", &c.proof)?)),
            None => None,
        };
        Ok(VerifiedSnapshot {
            checkpoint,
            issued: statement.issued,
            valid_until: statement.valid_until,
            parties,
            history,
            consistency,
        })
    }
}

impl VerifiedSnapshot {
    /// Fails unless `now` is inside the validity period (`issued` may be up
    /// to an hour ahead of `now`, for clock skew).
    pub fn check_time(&self, now: UnixMillis) -> Result<(), DirectoryError> {
        if now > self.valid_until || self.issued.0 > now.0.saturating_add(MAX_SKEW_MS) {
            return Err(DirectoryError::Expired {
                issued: self.issued.0,
                valid_until: self.valid_until.0,
                now: now.0,
            });
        }
        Ok(())
    }

    /// Checks that `next` may replace `self` (SPEC.md §18.8 steps 8–10): no
    /// rollback, no fork (consistency proof from our size), no Party gone or
    /// gone back, and every root-key change is either signed by the old key
    /// or a logged Secretariat re-registration. Returns what changed, per Party.
    pub fn check_successor(
        &self,
        next: &VerifiedSnapshot,
    ) -> Result<Vec<(PartyCode, u64, Transition)>, DirectoryError> {
        let (old, new) = (&self.checkpoint, &next.checkpoint);
        if new.size < old.size {
            return Err(DirectoryError::Rollback(format!(
                "the directory now shows {} log entries, fewer than the {} this node already accepted",
                new.size, old.size
            )));
        }
        if new.size == old.size {
            if new.root != old.root {
                return Err(DirectoryError::Fork(format!(
                    "two different logs of {} entries: root {} accepted before, {} now",
                    new.size,
                    hex::encode(old.root),
                    hex::encode(new.root)
                )));
            }
        } else {
            let (from, proof) = next.consistency.as_ref().ok_or_else(|| {
                DirectoryError::Fork(format!(
                    "the snapshot of {} entries carries no consistency proof from {}",
                    new.size, old.size
                ))
            })?;
            if *from != old.size {
                return Err(DirectoryError::Fork(format!(
                    "the consistency proof starts at size {from}, not at the {} this node holds",
                    old.size
                )));
            }
            log::verify_consistency(old.size, &old.root, new.size, &new.root, proof).map_err(
                |e| {
                    DirectoryError::Fork(format!(
                        "the log of {} entries is not an extension of the {} accepted before: {e}",
                        new.size, old.size
                    ))
                },
            )?;
        }
        let mut changes = Vec::new();
        for (code, prev) in &self.parties {
            let Some(cur) = next.parties.get(code) else {
                return Err(DirectoryError::Rollback(format!(
                    "{code} (entry {}) is missing from the new snapshot",
                    prev.index
                )));
            };
            if cur.index < prev.index {
                return Err(DirectoryError::Rollback(format!(
                    "the current entry of {code} went back from index {} to {}",
                    prev.index, cur.index
                )));
            }
            if cur.index == prev.index {
                if cur.leaf_hash != prev.leaf_hash {
                    return Err(DirectoryError::Fork(format!(
                        "entry {} of {code} differs from the one accepted before",
                        cur.index
                    )));
                }
                continue;
            }
            let mut state = prev.state;
            let steps = next
                .history
                .iter()
                .filter(|(i, e)| e.party == *code && *i > prev.index && *i < cur.index)
                .map(|(i, e)| (*i, e))
                .chain(std::iter::once((cur.index, &cur.entry)));
            for (index, entry) in steps {
                let (s, t) = rules::apply(Some(&state), entry).map_err(|e| match e {
                    DirectoryError::WrongRootKey { .. } => DirectoryError::RootKeyChanged {
                        party: code.to_string(),
                        from: state
                            .root_key
                            .map(|k| k.fingerprint())
                            .unwrap_or_else(|| "(unknown)".into()),
                        to: entry
                            .record
                            .as_ref()
                            .map(|r| fingerprint(&r.record.root_key.0))
                            .unwrap_or_default(),
                    },
                    other => other,
                })?;
                state = s;
                changes.push((*code, index, t));
            }
        }
        for (code, cur) in &next.parties {
            if !self.parties.contains_key(code) {
                let t = match cur.entry.kind {
                    EntryKind::Record => Transition::Registered,
                    EntryKind::Reregistration => Transition::Reregistered,
                    EntryKind::Revocation => Transition::RevokedBySecretariat,
                };
                changes.push((*code, cur.index, t));
            }
        }
        Ok(changes)
    }
}
