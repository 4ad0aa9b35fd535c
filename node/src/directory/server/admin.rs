//! Directory administration as library functions: what `gsp directory
//! register|approve|revoke|reregister|list` do on the directory host, and
//! what `gsp demo` calls to set up a federation programmatically. All are
//! blocking (call them from `spawn_blocking` or a CLI); each change is one
//! database write transaction, so concurrent calls cannot interleave appends.
//!
//! Rules: a Party's first record waits (pending) until the Secretariat
//! approves it after confirming the root-key fingerprint out of band; a later
//! record that passes the history rules (signed by the registered root key,
//! newer) is appended at once; revocations and re-registrations are the
//! Secretariat's own signed entries.

use super::AdminError;
use crate::storage::schema::{directory_log, directory_pending};
use crate::storage::{Database, DbConnection, write_transaction};
use diesel::prelude::*;
use gsp_federation::directory::rules::{self, PartyState};
use gsp_federation::directory::{EntryKind, LogEntry, SignedRecord, Submission};
use gsp_federation::keys::{SigningKey, VerifyingKey, fingerprint};
use gsp_federation::{PartyCode, UnixMillis};

/// Pending state values.
const PENDING: i16 = 0;
const APPROVED: i16 = 1;
const SUPERSEDED: i16 = 2;

/// What happened to a submission.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum SubmitOutcome {
    /// A first registration, waiting for approval.
    Pending {
        /// The Party.
        party: String,
        /// The root key fingerprint the Secretariat must confirm out of band.
        root_fingerprint: String,
    },
    /// An update, appended to the log.
    Accepted {
        /// The Party.
        party: String,
        /// Its leaf index.
        index: u64,
    },
}

fn now_i64(t: UnixMillis) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

fn lock_log(conn: &mut DbConnection) -> Result<(), AdminError> {
    // SQLite: write_transaction already holds the write lock (BEGIN IMMEDIATE).
    if let DbConnection::Postgresql(c) = conn {
        diesel::sql_query("LOCK TABLE directory_log IN EXCLUSIVE MODE").execute(c)?;
    }
    Ok(())
}

/// The Party's state from its entries in the log (None if it has none).
fn party_state(
    conn: &mut DbConnection,
    party: PartyCode,
    secretariat: &VerifyingKey,
) -> Result<Option<PartyState>, AdminError> {
    let rows: Vec<(i64, Vec<u8>)> = directory_log::table
        .filter(directory_log::party.eq(party.as_str()))
        .order(directory_log::leaf_index.asc())
        .select((directory_log::leaf_index, directory_log::entry))
        .load(conn)?;
    let mut state: Option<PartyState> = None;
    for (index, bytes) in rows {
        let entry = LogEntry::parse(&bytes, secretariat, &index.to_string())?;
        let (s, _) = rules::apply(state.as_ref(), &entry)?;
        state = Some(s);
    }
    Ok(state)
}

/// Appends entry bytes at the next index (inside the caller's transaction,
/// with the log locked).
fn append(
    conn: &mut DbConnection,
    party: PartyCode,
    kind: EntryKind,
    bytes: &[u8],
    now: UnixMillis,
) -> Result<u64, AdminError> {
    let max: Option<i64> = directory_log::table
        .select(diesel::dsl::max(directory_log::leaf_index))
        .first(conn)?;
    let index = max.map(|m| m + 1).unwrap_or(0);
    diesel::insert_into(directory_log::table)
        .values((
            directory_log::leaf_index.eq(index),
            directory_log::party.eq(party.as_str()),
            directory_log::kind.eq(i16::from(kind.wire())),
            directory_log::entry.eq(bytes),
            directory_log::leaf_hash.eq(gsp_federation::log::leaf_hash(bytes).to_vec()),
            directory_log::logged_at.eq(now_i64(now)),
        ))
        .execute(conn)?;
    tracing::info!(party = %party, index, kind = kind.as_str(), "directory log entry appended");
    Ok(u64::try_from(index).unwrap_or(0))
}

/// A Party submits a signed record (`POST /directory/v1/register`,
/// `gsp directory register`): first registrations wait for approval, later
/// records are checked against the Party's history and appended.
pub fn submit(
    db: &Database,
    secretariat: &VerifyingKey,
    submission: &Submission,
    now: UnixMillis,
) -> Result<SubmitOutcome, AdminError> {
    let signed = submission.open()?;
    let party = signed.record.party;
    let json = serde_json::to_vec(submission).map_err(|e| AdminError::Invalid(e.to_string()))?;
    let mut conn = db.conn()?;
    write_transaction(&mut conn, |c| {
        lock_log(c)?;
        match party_state(c, party, secretariat)? {
            None => {
                diesel::update(
                    directory_pending::table
                        .filter(directory_pending::party.eq(party.as_str()))
                        .filter(directory_pending::state.eq(PENDING)),
                )
                .set(directory_pending::state.eq(SUPERSEDED))
                .execute(c)?;
                let root_fingerprint = fingerprint(&signed.record.root_key.0);
                diesel::insert_into(directory_pending::table)
                    .values((
                        directory_pending::party.eq(party.as_str()),
                        directory_pending::submission.eq(&json),
                        directory_pending::root_fingerprint.eq(&root_fingerprint),
                        directory_pending::issued.eq(now_i64(signed.record.issued)),
                        directory_pending::received_at.eq(now_i64(now)),
                        directory_pending::state.eq(PENDING),
                    ))
                    .execute(c)?;
                tracing::info!(party = %party, root = %root_fingerprint, "registration pending approval");
                Ok(SubmitOutcome::Pending {
                    party: party.to_string(),
                    root_fingerprint,
                })
            }
            Some(state) => {
                let bytes = LogEntry::record_bytes(&signed, now);
                let entry = LogEntry::parse(&bytes, secretariat, "new")?;
                rules::apply(Some(&state), &entry)?;
                let index = append(c, party, EntryKind::Record, &bytes, now)?;
                Ok(SubmitOutcome::Accepted {
                    party: party.to_string(),
                    index,
                })
            }
        }
    })
}

/// Normalises a fingerprint as typed by a person: hex digits only, upper case.
fn normalise(fp: &str) -> String {
    fp.chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .flat_map(char::to_uppercase)
        .collect()
}

/// The Secretariat approves a Party's pending registration after confirming
/// its root-key fingerprint out of band. Returns the leaf index.
pub fn approve(
    db: &Database,
    secretariat: &VerifyingKey,
    party: PartyCode,
    root_fingerprint: &str,
    now: UnixMillis,
) -> Result<u64, AdminError> {
    let mut conn = db.conn()?;
    write_transaction(&mut conn, |c| {
        lock_log(c)?;
        let pending: Option<(i64, Vec<u8>)> = directory_pending::table
            .filter(directory_pending::party.eq(party.as_str()))
            .filter(directory_pending::state.eq(PENDING))
            .order(directory_pending::id.desc())
            .select((directory_pending::id, directory_pending::submission))
            .first(c)
            .optional()?;
        let (id, json) = pending.ok_or_else(|| AdminError::NoPending(party.to_string()))?;
        let signed = Submission::from_json(&json)?.open()?;
        let actual = fingerprint(&signed.record.root_key.0);
        if normalise(&actual) != normalise(root_fingerprint) {
            return Err(AdminError::FingerprintMismatch {
                party: party.to_string(),
                expected: root_fingerprint.to_owned(),
                actual,
            });
        }
        let bytes = LogEntry::record_bytes(&signed, now);
        let entry = LogEntry::parse(&bytes, secretariat, "new")?;
        let state = party_state(c, party, secretariat)?;
        rules::apply(state.as_ref(), &entry)?;
        let index = append(c, party, EntryKind::Record, &bytes, now)?;
        diesel::update(directory_pending::table.find(id))
            .set(directory_pending::state.eq(APPROVED))
            .execute(c)?;
        Ok(index)
    })
}

/// The Secretariat revokes a Party (it leaves, or its root key is
/// compromised): a signed, logged entry with the reason.
pub fn revoke(
    db: &Database,
    key: &SigningKey,
    party: PartyCode,
    reason: &str,
    now: UnixMillis,
) -> Result<u64, AdminError> {
    let bytes = LogEntry::revocation_bytes(party, reason, now, key)?;
    let secretariat = key.verifying_key();
    let mut conn = db.conn()?;
    write_transaction(&mut conn, |c| {
        lock_log(c)?;
        let entry = LogEntry::parse(&bytes, &secretariat, "new")?;
        let state = party_state(c, party, &secretariat)?;
        rules::apply(state.as_ref(), &entry)?;
        append(c, party, EntryKind::Revocation, &bytes, now)
    })
}

/// The Secretariat re-registers a Party under a new root key without the
/// old key's signature (lost key), after confirming the new fingerprint out
/// of band. Logged and visible to every node; the Party's node raises an alarm.
pub fn reregister(
    db: &Database,
    key: &SigningKey,
    submission: &Submission,
    root_fingerprint: &str,
    reason: &str,
    now: UnixMillis,
) -> Result<u64, AdminError> {
    let signed: SignedRecord = submission.open()?;
    let actual = fingerprint(&signed.record.root_key.0);
    if normalise(&actual) != normalise(root_fingerprint) {
        return Err(AdminError::FingerprintMismatch {
            party: signed.record.party.to_string(),
            expected: root_fingerprint.to_owned(),
            actual,
        });
    }
    let party = signed.record.party;
    let bytes = LogEntry::reregistration_bytes(&signed, reason, now, key)?;
    let secretariat = key.verifying_key();
    let mut conn = db.conn()?;
    write_transaction(&mut conn, |c| {
        lock_log(c)?;
        let entry = LogEntry::parse(&bytes, &secretariat, "new")?;
        let state = party_state(c, party, &secretariat)?;
        rules::apply(state.as_ref(), &entry)?;
        append(c, party, EntryKind::Reregistration, &bytes, now)
    })
}

/// One line of `gsp directory list`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    /// The Party.
    pub party: String,
    /// `pending`, `active`, `withdrawn` (by the Party) or `revoked` (by the Secretariat).
    pub state: String,
    /// Root key fingerprint (of the pending record, or the registered key).
    pub root_fingerprint: String,
    /// Leaf index of the current entry (none while pending).
    pub index: Option<u64>,
    /// Node URLs of the current record.
    pub urls: Vec<String>,
}

/// The directory's state: every Party, pending ones included, and the log size.
pub fn list(db: &Database, secretariat: &VerifyingKey) -> Result<(Vec<Listed>, u64), AdminError> {
    let mut conn = db.conn()?;
    let rows: Vec<(i64, Vec<u8>)> = directory_log::table
        .order(directory_log::leaf_index.asc())
        .select((directory_log::leaf_index, directory_log::entry))
        .load(&mut conn)?;
    let size = u64::try_from(rows.len()).unwrap_or(0);
    let mut current: std::collections::BTreeMap<PartyCode, (u64, LogEntry, PartyState)> =
        Default::default();
    for (index, bytes) in rows {
        match LogEntry::parse(&bytes, secretariat, &index.to_string()) {
            Ok(entry) => {
                let prev = current.get(&entry.party).map(|c| c.2);
                let state = rules::apply(prev.as_ref(), &entry)
                    .map(|(s, _)| s)
                    .unwrap_or_else(|_| PartyState::from_entry(&entry));
                current.insert(
                    entry.party,
                    (u64::try_from(index).unwrap_or(0), entry, state),
                );
            }
            Err(e) => tracing::error!(index, error = %e, "directory log entry does not verify"),
        }
    }
    let mut out: Vec<Listed> = current
        .into_iter()
        .map(|(party, (index, entry, state))| Listed {
            party: party.to_string(),
            state: if state.revoked_by_secretariat {
                "revoked"
            } else if state.revoked {
                "withdrawn"
            } else {
                "active"
            }
            .into(),
            root_fingerprint: state.root_key.map(|k| k.fingerprint()).unwrap_or_default(),
            index: Some(index),
            urls: entry.record.map(|r| r.record.node_urls).unwrap_or_default(),
        })
        .collect();
    let pending: Vec<(String, String)> = directory_pending::table
        .filter(directory_pending::state.eq(PENDING))
        .order(directory_pending::id.asc())
        .select((
            directory_pending::party,
            directory_pending::root_fingerprint,
        ))
        .load(&mut conn)?;
    for (party, fp) in pending {
        out.push(Listed {
            party,
            state: "pending".into(),
            root_fingerprint: fp,
            index: None,
            urls: Vec::new(),
        });
    }
    Ok((out, size))
}
