//! Log entries: the leaves of the directory's Merkle log (SPEC.md §18.4).
//!
//! Three kinds:
//! 1. **record** — a Party record signed by the Party's root key (and, for a
//!    root-key change, by the previous root key too): registration, update,
//!    rotation, or withdrawal by the Party;
//! 2. **re-registration** — the Secretariat puts a Party record under a new
//!    root key after an out-of-band check, without the old key's signature:
//!    signed by the new root key *and* the Secretariat, with a reason; every
//!    node sees it, and the Party's own node raises an alarm;
//! 3. **revocation** — the Secretariat removes a Party, with a reason.
//!
//! Layout (all integers big-endian, `str8`/`party` as in SPEC.md §3):
//!
//! ```text
//! "GSPL" | u16 version=1 | u8 kind | party | u64 logged
//! kind 1: u32 len | record | bytes[64] root_sig | u8 has_prev | [bytes[64] prev_sig]
//! kind 2: u32 len | record | bytes[64] root_sig | u16 len | reason | bytes[8] key_id | bytes[64] sig
//! kind 3: u16 len | reason | bytes[8] key_id | bytes[64] sig
//! ```
//!
//! The Secretariat signature (kinds 2 and 3) covers the directory-action
//! domain string followed by every entry byte before the signature (the key
//! id included).

use super::DOMAIN_SECRETARIAT_ACTION;
use super::error::DirectoryError;
use super::record::{MAX_RECORD_BYTES, SignedRecord};
use crate::encoding::{Reader, put_str8};
use crate::keys::{KeyId, SigningKey, VerifyingKey};
use crate::party::PartyCode;
use crate::timestamp::UnixMillis;

/// The four bytes every entry starts with: ASCII `GSPL`.
pub const ENTRY_MAGIC: [u8; 4] = *b"GSPL";
/// Largest reason text, bytes of UTF-8.
pub const MAX_REASON: usize = 1024;
/// Largest entry.
pub const MAX_ENTRY_BYTES: usize = MAX_RECORD_BYTES + 2048;

/// Which kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A Party-signed record.
    Record,
    /// An out-of-band re-registration by the Secretariat.
    Reregistration,
    /// A revocation by the Secretariat.
    Revocation,
}

impl EntryKind {
    /// The wire value.
    pub fn wire(self) -> u8 {
        match self {
            EntryKind::Record => 1,
            EntryKind::Reregistration => 2,
            EntryKind::Revocation => 3,
        }
    }

    /// A short name for people and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Record => "record",
            EntryKind::Reregistration => "re-registration",
            EntryKind::Revocation => "revocation",
        }
    }
}

/// A Secretariat signature on an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretariatSignature {
    /// Key id of the Secretariat key.
    pub key_id: KeyId,
    /// The signature.
    pub signature: [u8; 64],
}

/// A parsed, signature-checked log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Which kind.
    pub kind: EntryKind,
    /// The Party it is about.
    pub party: PartyCode,
    /// When the directory appended it.
    pub logged: UnixMillis,
    /// The record (kinds 1 and 2).
    pub record: Option<SignedRecord>,
    /// Why (kinds 2 and 3; empty for kind 1).
    pub reason: String,
    /// The Secretariat's signature (kinds 2 and 3).
    pub secretariat: Option<SecretariatSignature>,
}

fn put_record(out: &mut Vec<u8>, r: &SignedRecord) {
    out.extend_from_slice(
        &u32::try_from(r.bytes.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&r.bytes);
    out.extend_from_slice(&r.root_signature);
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let len = b.len().min(MAX_REASON);
    out.extend_from_slice(&u16::try_from(len).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(b.get(..len).unwrap_or_default());
}

fn head(kind: EntryKind, party: PartyCode, logged: UnixMillis) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&ENTRY_MAGIC);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.push(kind.wire());
    put_str8(&mut out, party.as_bytes());
    out.extend_from_slice(&logged.0.to_be_bytes());
    out
}

fn check_reason(reason: &str) -> Result<(), DirectoryError> {
    if reason.len() > MAX_REASON {
        return Err(DirectoryError::malformed(
            "entry reason",
            format!("longer than {MAX_REASON} bytes"),
        ));
    }
    super::record::check_text("reason", reason, MAX_REASON)
        .map_err(|m| DirectoryError::malformed("entry", m))
}

impl LogEntry {
    /// Entry bytes for a Party-signed record.
    pub fn record_bytes(record: &SignedRecord, logged: UnixMillis) -> Vec<u8> {
        let mut out = head(EntryKind::Record, record.record.party, logged);
        put_record(&mut out, record);
        match &record.previous_root_signature {
            Some(sig) => {
                out.push(1);
                out.extend_from_slice(sig);
            }
            None => out.push(0),
        }
        out
    }

    /// Entry bytes for a Secretariat re-registration, signed with `secretariat`.
    pub fn reregistration_bytes(
        record: &SignedRecord,
        reason: &str,
        logged: UnixMillis,
        secretariat: &SigningKey,
    ) -> Result<Vec<u8>, DirectoryError> {
        check_reason(reason)?;
        let mut out = head(EntryKind::Reregistration, record.record.party, logged);
        put_record(&mut out, record);
        put_str16(&mut out, reason);
        Ok(Self::secretariat_sign(out, secretariat))
    }

    /// Entry bytes for a Secretariat revocation, signed with `secretariat`.
    pub fn revocation_bytes(
        party: PartyCode,
        reason: &str,
        logged: UnixMillis,
        secretariat: &SigningKey,
    ) -> Result<Vec<u8>, DirectoryError> {
        check_reason(reason)?;
        let mut out = head(EntryKind::Revocation, party, logged);
        put_str16(&mut out, reason);
        Ok(Self::secretariat_sign(out, secretariat))
    }

    fn secretariat_sign(mut out: Vec<u8>, key: &SigningKey) -> Vec<u8> {
        out.extend_from_slice(&key.key_id().0);
        let sig = key.sign(DOMAIN_SECRETARIAT_ACTION, &out);
        out.extend_from_slice(&sig);
        out
    }

    /// Parses entry bytes and checks every signature the entry carries on its
    /// own: the record's root signature, and for kinds 2 and 3 the
    /// Secretariat's. (Whether the root key is the *right* one depends on
    /// the Party's history: see [`super::rules`].) `at` names the entry in errors.
    pub fn parse(
        bytes: &[u8],
        secretariat: &VerifyingKey,
        at: &str,
    ) -> Result<Self, DirectoryError> {
        let bad = |m: String| DirectoryError::malformed(format!("log entry {at}"), m);
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(DirectoryError::TooLarge {
                what: format!("log entry {at}"),
                size: bytes.len(),
                limit: MAX_ENTRY_BYTES,
            });
        }
        let mut r = Reader::new(bytes);
        let dec = |e: crate::encoding::DecodeError| bad(e.to_string());
        if r.array::<4>("magic").map_err(dec)? != ENTRY_MAGIC {
            return Err(bad("does not start with GSPL".into()));
        }
        let version = r.u16("version").map_err(dec)?;
        if version != 1 {
            return Err(bad(format!("version {version}, only 1 is known")));
        }
        let kind = match r.u8("kind").map_err(dec)? {
            1 => EntryKind::Record,
            2 => EntryKind::Reregistration,
            3 => EntryKind::Revocation,
            k => return Err(bad(format!("unknown kind {k}"))),
        };
        let party = PartyCode::from_bytes(r.str8("party").map_err(dec)?)
            .ok_or_else(|| bad("party is not a Party code".into()))?;
        let logged = UnixMillis(r.u64("logged").map_err(dec)?);
        let mut record = None;
        if kind != EntryKind::Revocation {
            let len = r.u32("record length").map_err(dec)?;
            let rec = r
                .take(usize::try_from(len).unwrap_or(usize::MAX), "record")
                .map_err(dec)?;
            let root_sig = r.array::<64>("root signature").map_err(dec)?;
            let prev = if kind == EntryKind::Record {
                match r.u8("has_previous").map_err(dec)? {
                    0 => None,
                    1 => Some(r.array::<64>("previous root signature").map_err(dec)?),
                    v => return Err(bad(format!("has_previous is {v}, must be 0 or 1"))),
                }
            } else {
                None
            };
            let signed = SignedRecord::parse(rec, root_sig, prev)?;
            if signed.record.party != party {
                return Err(bad(format!(
                    "entry is for {party} but the record inside is for {}",
                    signed.record.party
                )));
            }
            record = Some(signed);
        }
        let mut reason = String::new();
        let mut secretariat_sig = None;
        if kind != EntryKind::Record {
            let len = r.u16("reason length").map_err(dec)?;
            let text = r.take(usize::from(len), "reason").map_err(dec)?;
            reason = std::str::from_utf8(text)
                .map_err(|_| bad("reason is not UTF-8".into()))?
                .to_owned();
            check_reason(&reason).map_err(|e| bad(e.to_string()))?;
            let signed_len = r.position() + 8;
            let key_id = KeyId(r.array::<8>("secretariat key id").map_err(dec)?);
            let signature = r.array::<64>("secretariat signature").map_err(dec)?;
            if key_id != secretariat.key_id() {
                return Err(DirectoryError::BadSignature {
                    what: format!(
                        "Secretariat signature of log entry {at} (key {key_id}, expected {})",
                        secretariat.key_id()
                    ),
                });
            }
            secretariat
                .verify(
                    DOMAIN_SECRETARIAT_ACTION,
                    bytes.get(..signed_len).unwrap_or_default(),
                    &signature,
                )
                .map_err(|_| DirectoryError::BadSignature {
                    what: format!("Secretariat signature of log entry {at}"),
                })?;
            secretariat_sig = Some(SecretariatSignature { key_id, signature });
        }
        r.finish("bytes after the last field").map_err(dec)?;
        Ok(LogEntry {
            kind,
            party,
            logged,
            record,
            reason,
            secretariat: secretariat_sig,
        })
    }
}
