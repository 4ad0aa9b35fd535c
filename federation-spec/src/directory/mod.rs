//! The Secretariat directory's wire format: Party records, log entries,
//! checkpoints, snapshots, and the rules that tie a Party's history together
//! (SPEC.md §18).
//!
//! The directory publishes, as an append-only Merkle log ([`crate::log`]),
//! records that each Party signs with its root key. The Secretariat signs
//! checkpoints and snapshots and can refuse or delay a record, but it cannot
//! make a record a Party did not sign, and a node that checks consistency
//! between checkpoints notices any attempt to rewrite history or to swap a
//! Party's root key quietly. This module says what the bytes are and checks
//! them; it does no I/O (the node's `directory` module serves and fetches).

pub mod checkpoint;
pub mod entry;
pub mod error;
pub mod patterns;
pub mod record;
pub mod rules;
pub mod snapshot;

pub use checkpoint::Checkpoint;
pub use entry::{EntryKind, LogEntry};
pub use error::DirectoryError;
pub use patterns::CompiledPattern;
pub use record::{
    CodePattern, EncryptionKeyEntry, FocalPoint, Hex32, KeyEntry, PartyRecord, PatternKind,
    PinEntry, RecordStatus, SignedRecord, Submission, TemplateEntry,
};
pub use rules::{PartyState, Transition};
pub use snapshot::{SnapshotDoc, SnapshotRequest, VerifiedSnapshot};

/// Domain string of the Secretariat's checkpoint signature.
pub const DOMAIN_CHECKPOINT: &[u8] = b"GSP-FED-1 directory checkpoint\0";
/// Domain string of the Secretariat's snapshot-statement signature.
pub const DOMAIN_SNAPSHOT: &[u8] = b"GSP-FED-1 directory snapshot\0";
/// Domain string of the Secretariat's signature on re-registrations and revocations.
pub const DOMAIN_SECRETARIAT_ACTION: &[u8] = b"GSP-FED-1 directory secretariat action\0";
/// Domain string of the Party root key's record signature (SPEC.md §2.3).
pub const DOMAIN_RECORD: &[u8] = crate::keys::domain::DIRECTORY_RECORD;
