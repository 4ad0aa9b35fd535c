//! What may follow what in a Party's history (SPEC.md §18.7): the rules the
//! directory applies before appending an entry and that every node applies
//! again when it verifies what the directory serves.
//!
//! - The first entry of a Party is a record (registration) or a
//!   re-registration.
//! - A later record must be signed by the registered root key; if it names a
//!   new root key, it also carries the previous key's signature.
//! - A re-registration (Secretariat, out of band) may replace the root key;
//!   it is legitimate but visible, and the Party's own node raises an alarm.
//! - Each record's `issued` is strictly later than the previous record's.
//! - After a Secretariat revocation only a re-registration brings the Party back.

use super::entry::{EntryKind, LogEntry};
use super::error::DirectoryError;
use super::record::RecordStatus;
use crate::keys::VerifyingKey;
use crate::timestamp::UnixMillis;

/// What a Party's history says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartyState {
    /// The registered root key (none only after a revocation seen without history).
    pub root_key: Option<VerifyingKey>,
    /// `issued` of the latest record.
    pub issued: UnixMillis,
    /// Whether the Party is out of service.
    pub revoked: bool,
    /// Whether the Secretariat revoked it (only a re-registration undoes that).
    pub revoked_by_secretariat: bool,
}

/// What an entry did, for logs and alarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// First record of the Party.
    Registered,
    /// A later record under the same root key.
    Updated,
    /// A record moving to a new root key, signed by the old one.
    RootKeyChanged,
    /// A Secretariat re-registration.
    Reregistered,
    /// A record by which the Party withdrew.
    WithdrawnByParty,
    /// A Secretariat revocation.
    RevokedBySecretariat,
}

impl PartyState {
    /// The state an entry establishes when nothing earlier is known (a node's
    /// first snapshot).
    pub fn from_entry(entry: &LogEntry) -> PartyState {
        match &entry.record {
            Some(r) => PartyState {
                root_key: Some(r.record.root_key()),
                issued: r.record.issued,
                revoked: r.record.status == RecordStatus::Revoked,
                revoked_by_secretariat: false,
            },
            None => PartyState {
                root_key: None,
                issued: UnixMillis(0),
                revoked: true,
                revoked_by_secretariat: true,
            },
        }
    }
}

/// Applies `entry` to the Party's state `prev` (none for a Party never seen).
pub fn apply(
    prev: Option<&PartyState>,
    entry: &LogEntry,
) -> Result<(PartyState, Transition), DirectoryError> {
    let party = entry.party.to_string();
    match (entry.kind, prev, &entry.record) {
        (EntryKind::Revocation, None, _) => Err(DirectoryError::malformed(
            format!("revocation of {party}"),
            "the Party has no entry to revoke",
        )),
        (EntryKind::Revocation, Some(p), _) => Ok((
            PartyState {
                revoked: true,
                revoked_by_secretariat: true,
                ..*p
            },
            Transition::RevokedBySecretariat,
        )),
        (_, _, None) => Err(DirectoryError::malformed(
            format!("entry of {party}"),
            "a record entry without a record",
        )),
        (EntryKind::Reregistration, prev, Some(r)) => {
            if let Some(p) = prev
                && r.record.issued <= p.issued
            {
                return Err(DirectoryError::Stale {
                    party,
                    issued: r.record.issued.0,
                    current: p.issued.0,
                });
            }
            Ok((PartyState::from_entry(entry), Transition::Reregistered))
        }
        (EntryKind::Record, None, Some(r)) => Ok((
            PartyState::from_entry(entry),
            if r.record.status == RecordStatus::Revoked {
                Transition::WithdrawnByParty
            } else {
                Transition::Registered
            },
        )),
        (EntryKind::Record, Some(p), Some(r)) => {
            if p.revoked_by_secretariat {
                return Err(DirectoryError::malformed(
                    format!("record of {party}"),
                    "the Secretariat revoked this Party: only an out-of-band re-registration brings it back",
                ));
            }
            if r.record.issued <= p.issued {
                return Err(DirectoryError::Stale {
                    party,
                    issued: r.record.issued.0,
                    current: p.issued.0,
                });
            }
            let new_key = r.record.root_key();
            let transition = match p.root_key {
                Some(old) if old == new_key => {
                    if r.record.status == RecordStatus::Revoked {
                        Transition::WithdrawnByParty
                    } else {
                        Transition::Updated
                    }
                }
                Some(old) => {
                    r.verify_previous(&old)?;
                    Transition::RootKeyChanged
                }
                None => {
                    return Err(DirectoryError::malformed(
                        format!("record of {party}"),
                        "the registered root key is unknown",
                    ));
                }
            };
            Ok((PartyState::from_entry(entry), transition))
        }
    }
}
