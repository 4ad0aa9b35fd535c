//! A Party record: what a Party publishes about itself in the directory —
//! node URLs, TLS pins, message keys with validity, accepted templates,
//! focal points and competent authorities, unique-identifier code patterns —
//! and the root-key signature over its exact bytes.
//!
//! A record is a JSON object (SPEC.md §18.2). It is signed and carried as
//! **bytes**: the signature covers `"GSP-FED-1 directory record\0" || record
//! bytes`, and everyone passes those bytes along unchanged, so no JSON
//! canonicalisation is ever needed. Parsing is strict (unknown fields,
//! duplicate fields, wrong types and broken rules are refused with the field
//! named) and bounded ([`MAX_RECORD_BYTES`]).

use super::error::DirectoryError;
use super::patterns;
use crate::keys::{EncryptionPublicKey, SigningKey, Validity, VerifyingKey, domain, fingerprint};
use crate::party::PartyCode;
use crate::timestamp::UnixMillis;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The `format` value of a version-1 record.
pub const RECORD_FORMAT: &str = "gsp-directory-record/1";
/// The `format` value of a submission file.
pub const SUBMISSION_FORMAT: &str = "gsp-directory-submission/1";
/// Largest record, in bytes.
pub const MAX_RECORD_BYTES: usize = 65_536;

/// A 32-byte value written as 64 lower-case hex digits (keys, pins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hex32(pub [u8; 32]);

impl Serialize for Hex32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Hex32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(serde::de::Error::custom(
                "expected 64 lower-case hex digits (32 bytes)",
            ));
        }
        hex::decode_to_slice(&s, &mut out).map_err(|_| {
            serde::de::Error::custom("expected 64 lower-case hex digits (32 bytes)")
        })?;
        Ok(Hex32(out))
    }
}

/// Whether the Party's node is in service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordStatus {
    /// In service: peers may exchange with it.
    Active,
    /// Withdrawn by the Party: peers must not exchange with it.
    Revoked,
}

/// A public key with its validity window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The raw public key.
    pub public_key: Hex32,
    /// First instant of validity (Unix ms).
    pub not_before: UnixMillis,
    /// Last instant of validity (Unix ms; 2^64−1 for "until rotated").
    pub not_after: UnixMillis,
}

/// A message-encryption key with its validity, and whether senders seal to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionKeyEntry {
    /// The X25519 public key.
    pub public_key: Hex32,
    /// First instant of validity.
    pub not_before: UnixMillis,
    /// Last instant of validity.
    pub not_after: UnixMillis,
    /// True for exactly one key: the one senders seal to.
    pub current: bool,
}

/// A TLS certificate pin with its validity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinEntry {
    /// SHA-256 of the certificate's DER SubjectPublicKeyInfo.
    pub spki_sha256: Hex32,
    /// First instant peers accept it.
    pub not_before: UnixMillis,
    /// Last instant peers accept it.
    pub not_after: UnixMillis,
}

/// A template the node accepts, with its versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateEntry {
    /// Template name (`a-z`, `0-9`, `-`; 1–64 bytes).
    pub name: String,
    /// Accepted versions (1–16 of them, each ≥ 1).
    pub versions: Vec<u16>,
}

/// A focal point or competent authority (Protocol Art. 8.8, 22).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalPoint {
    /// Person or office name.
    pub name: String,
    /// Role, e.g. "national focal point" or "competent authority (customs)".
    pub role: String,
    /// The authority the person or office belongs to.
    pub authority: String,
    /// How to reach them: e-mail, telephone, postal address.
    pub contact: String,
}

/// How a code pattern matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatternKind {
    /// The code starts with `pattern`.
    Prefix,
    /// The whole code matches the regular expression `pattern`.
    Regex,
}

/// A unique-identifier code pattern of the library (which Party issued a code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodePattern {
    /// Prefix or regular expression.
    pub kind: PatternKind,
    /// The prefix or the expression (printable ASCII, 1–256 bytes).
    pub pattern: String,
    /// The Party that issues codes of this shape.
    pub issuer: PartyCode,
    /// What these codes are, for officers.
    pub description: String,
}

/// A Party record (SPEC.md §18.2). Every field is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyRecord {
    /// Always [`RECORD_FORMAT`].
    pub format: String,
    /// The Party.
    pub party: PartyCode,
    /// When the Party made it; strictly increasing from one record to the next.
    pub issued: UnixMillis,
    /// Active, or revoked by the Party.
    pub status: RecordStatus,
    /// The Party root key that signs this record and the next one.
    pub root_key: Hex32,
    /// Federation endpoints (`https://…`).
    pub node_urls: Vec<String>,
    /// TLS pins of the node's certificates (current and overlapping).
    pub tls_pins: Vec<PinEntry>,
    /// Message-signing keys (current and overlapping).
    pub signing_keys: Vec<KeyEntry>,
    /// Message-encryption keys (exactly one current).
    pub encryption_keys: Vec<EncryptionKeyEntry>,
    /// Protocol versions the node speaks.
    pub protocol_versions: Vec<u16>,
    /// Templates the node accepts.
    pub templates: Vec<TemplateEntry>,
    /// Focal points and competent authorities.
    pub focal_points: Vec<FocalPoint>,
    /// Code patterns of the library.
    pub code_patterns: Vec<CodePattern>,
}

/// Limits on list lengths and text sizes in a record.
pub mod limits {
    /// Node URLs, TLS pins, signing keys, encryption keys: at most this many each.
    pub const KEYS: usize = 8;
    /// Templates.
    pub const TEMPLATES: usize = 32;
    /// Focal points.
    pub const FOCAL_POINTS: usize = 64;
    /// Code patterns.
    pub const PATTERNS: usize = 64;
    /// URL length in bytes.
    pub const URL: usize = 256;
    /// Name, role, authority: characters.
    pub const NAME: usize = 200;
    /// Contact and description: characters.
    pub const TEXT: usize = 500;
    /// Pattern length in bytes.
    pub const PATTERN: usize = 256;
}

/// Refuses empty, over-long text and text with control or bidirectional
/// formatting characters (which can make a name display as something else).
pub(crate) fn check_text(field: &str, s: &str, max_chars: usize) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    if s.chars().count() > max_chars {
        return Err(format!("{field} is longer than {max_chars} characters"));
    }
    if let Some(c) = s.chars().find(|c| {
        c.is_control()
            || matches!(*c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    }) {
        return Err(format!(
            "{field} contains the control or formatting character U+{:04X}",
            u32::from(c)
        ));
    }
    Ok(())
}

fn check_window(field: &str, nb: UnixMillis, na: UnixMillis) -> Result<(), String> {
    if nb > na {
        return Err(format!("{field}: not_before is after not_after"));
    }
    Ok(())
}

impl PartyRecord {
    /// Checks every field rule of SPEC.md §18.2 (including that each code
    /// pattern compiles within its limits).
    pub fn validate(&self) -> Result<(), DirectoryError> {
        let party = self.party.as_str();
        let bad = |m: String| DirectoryError::record(Some(party), m);
        if self.format != RECORD_FORMAT {
            return Err(bad(format!(
                "/format is {:?}, expected {RECORD_FORMAT:?}",
                self.format.chars().take(40).collect::<String>()
            )));
        }
        let lists = [
            ("/node_urls", self.node_urls.len()),
            ("/tls_pins", self.tls_pins.len()),
            ("/signing_keys", self.signing_keys.len()),
            ("/encryption_keys", self.encryption_keys.len()),
            ("/protocol_versions", self.protocol_versions.len()),
        ];
        for (name, len) in lists {
            if len > limits::KEYS {
                return Err(bad(format!(
                    "{name} has {len} entries, at most {} allowed",
                    limits::KEYS
                )));
            }
            if self.status == RecordStatus::Active && len == 0 {
                return Err(bad(format!("{name} is empty in an active record")));
            }
        }
        if self.status == RecordStatus::Revoked
            && (!self.node_urls.is_empty()
                || !self.tls_pins.is_empty()
                || !self.signing_keys.is_empty()
                || !self.encryption_keys.is_empty())
        {
            return Err(bad(
                "a revoked record lists no node URL, TLS pin, signing or encryption key".into(),
            ));
        }
        for (i, url) in self.node_urls.iter().enumerate() {
            let rest = url.strip_prefix("https://").unwrap_or_default();
            if rest.is_empty()
                || url.len() > limits::URL
                || !url.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(bad(format!(
                    "/node_urls/{i} must be an https:// URL of at most {} printable ASCII bytes",
                    limits::URL
                )));
            }
        }
        for (i, p) in self.tls_pins.iter().enumerate() {
            check_window(&format!("/tls_pins/{i}"), p.not_before, p.not_after).map_err(bad)?;
        }
        for (i, k) in self.signing_keys.iter().enumerate() {
            check_window(&format!("/signing_keys/{i}"), k.not_before, k.not_after).map_err(bad)?;
        }
        for (i, k) in self.encryption_keys.iter().enumerate() {
            check_window(&format!("/encryption_keys/{i}"), k.not_before, k.not_after)
                .map_err(bad)?;
        }
        let current = self.encryption_keys.iter().filter(|k| k.current).count();
        if self.status == RecordStatus::Active && current != 1 {
            return Err(bad(format!(
                "/encryption_keys must mark exactly one key current, not {current}"
            )));
        }
        if self.status == RecordStatus::Active && !self.protocol_versions.contains(&1) {
            return Err(bad("/protocol_versions must include 1".into()));
        }
        if self.templates.len() > limits::TEMPLATES {
            return Err(bad(format!(
                "/templates has more than {} entries",
                limits::TEMPLATES
            )));
        }
        for (i, t) in self.templates.iter().enumerate() {
            let name_ok = !t.name.is_empty()
                && t.name.len() <= 64
                && t.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !name_ok {
                return Err(bad(format!(
                    "/templates/{i}/name must be 1 to 64 bytes of a-z, 0-9 and -"
                )));
            }
            if t.versions.is_empty() || t.versions.len() > 16 || t.versions.contains(&0) {
                return Err(bad(format!(
                    "/templates/{i}/versions must list 1 to 16 versions, each at least 1"
                )));
            }
        }
        if self.focal_points.len() > limits::FOCAL_POINTS {
            return Err(bad(format!(
                "/focal_points has more than {} entries",
                limits::FOCAL_POINTS
            )));
        }
        for (i, f) in self.focal_points.iter().enumerate() {
            check_text(&format!("/focal_points/{i}/name"), &f.name, limits::NAME).map_err(bad)?;
            check_text(&format!("/focal_points/{i}/role"), &f.role, limits::NAME).map_err(bad)?;
            check_text(
                &format!("/focal_points/{i}/authority"),
                &f.authority,
                limits::NAME,
            )
            .map_err(bad)?;
            check_text(
                &format!("/focal_points/{i}/contact"),
                &f.contact,
                limits::TEXT,
            )
            .map_err(bad)?;
        }
        if self.code_patterns.len() > limits::PATTERNS {
            return Err(bad(format!(
                "/code_patterns has more than {} entries",
                limits::PATTERNS
            )));
        }
        for (i, p) in self.code_patterns.iter().enumerate() {
            check_text(
                &format!("/code_patterns/{i}/description"),
                &p.description,
                limits::TEXT,
            )
            .map_err(bad)?;
            patterns::compile(p).map_err(|message| DirectoryError::BadPattern {
                party: party.to_owned(),
                index: i,
                pattern: p.pattern.chars().take(80).collect(),
                message,
            })?;
        }
        Ok(())
    }

    /// The root key as a verifying key.
    pub fn root_key(&self) -> VerifyingKey {
        VerifyingKey(self.root_key.0)
    }

    /// Signing keys with validity, as the envelope's `open` wants them.
    pub fn sender_keys(&self) -> Vec<crate::keys::SenderKey> {
        self.signing_keys
            .iter()
            .map(|k| crate::keys::SenderKey {
                key: VerifyingKey(k.public_key.0),
                validity: Validity {
                    not_before: k.not_before,
                    not_after: k.not_after,
                },
            })
            .collect()
    }

    /// The encryption key senders seal to.
    pub fn current_encryption_key(&self) -> Option<EncryptionPublicKey> {
        self.encryption_keys
            .iter()
            .find(|k| k.current)
            .map(|k| EncryptionPublicKey(k.public_key.0))
    }

    /// Serialises the record as compact JSON: the bytes that get signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A record with its exact bytes and root-key signature(s), verified against
/// the root key it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRecord {
    /// The exact bytes signed.
    pub bytes: Vec<u8>,
    /// The parsed, validated record.
    pub record: PartyRecord,
    /// Ed25519 by `record.root_key` over the record domain string and `bytes`.
    pub root_signature: [u8; 64],
    /// When the record changes the root key: the previous root key's signature
    /// over the same input.
    pub previous_root_signature: Option<[u8; 64]>,
}

impl SignedRecord {
    /// Validates `record`, serialises it and signs it with `root` (which must
    /// be the key the record names) and, for a root-key change, `previous`.
    pub fn sign(
        record: &PartyRecord,
        root: &SigningKey,
        previous: Option<&SigningKey>,
    ) -> Result<Self, DirectoryError> {
        record.validate()?;
        if root.verifying_key().0 != record.root_key.0 {
            return Err(DirectoryError::record(
                Some(record.party.as_str()),
                "/root_key is not the key signing the record",
            ));
        }
        let bytes = record.to_bytes();
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(DirectoryError::TooLarge {
                what: format!("record of {}", record.party),
                size: bytes.len(),
                limit: MAX_RECORD_BYTES,
            });
        }
        let root_signature = root.sign(domain::DIRECTORY_RECORD, &bytes);
        let previous_root_signature = previous.map(|k| k.sign(domain::DIRECTORY_RECORD, &bytes));
        Ok(Self {
            bytes,
            record: record.clone(),
            root_signature,
            previous_root_signature,
        })
    }

    /// Parses record bytes, validates the record and checks the root
    /// signature against the root key the record names.
    pub fn parse(
        bytes: &[u8],
        root_signature: [u8; 64],
        previous_root_signature: Option<[u8; 64]>,
    ) -> Result<Self, DirectoryError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(DirectoryError::TooLarge {
                what: "record".into(),
                size: bytes.len(),
                limit: MAX_RECORD_BYTES,
            });
        }
        let record: PartyRecord = serde_json::from_slice(bytes)
            .map_err(|e| DirectoryError::record(None, format!("not a valid record: {e}")))?;
        record.validate()?;
        record
            .root_key()
            .verify(domain::DIRECTORY_RECORD, bytes, &root_signature)
            .map_err(|_| DirectoryError::BadSignature {
                what: format!(
                    "root signature of the record of {} (root key {})",
                    record.party,
                    fingerprint(&record.root_key.0)
                ),
            })?;
        Ok(Self {
            bytes: bytes.to_vec(),
            record,
            root_signature,
            previous_root_signature,
        })
    }

    /// Checks that `previous` (the root key registered before) signed this
    /// record: the proof a root-key change is the Party's own.
    pub fn verify_previous(&self, previous: &VerifyingKey) -> Result<(), DirectoryError> {
        let sig = self
            .previous_root_signature
            .ok_or_else(|| DirectoryError::WrongRootKey {
                party: self.record.party.to_string(),
                got: fingerprint(&self.record.root_key.0),
                registered: previous.fingerprint(),
            })?;
        previous
            .verify(domain::DIRECTORY_RECORD, &self.bytes, &sig)
            .map_err(|_| DirectoryError::WrongRootKey {
                party: self.record.party.to_string(),
                got: fingerprint(&self.record.root_key.0),
                registered: previous.fingerprint(),
            })
    }

    /// The submission a Party sends to the directory (and `gsp directory
    /// record` writes).
    pub fn to_submission(&self) -> Submission {
        let b64 = base64::engine::general_purpose::STANDARD;
        Submission {
            format: SUBMISSION_FORMAT.into(),
            record: b64.encode(&self.bytes),
            root_signature: b64.encode(self.root_signature),
            previous_root_signature: self.previous_root_signature.map(|s| b64.encode(s)),
        }
    }
}

/// A signed record as a Party submits it: JSON with the record bytes and
/// signatures in base64 (SPEC.md §18.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Always [`SUBMISSION_FORMAT`].
    pub format: String,
    /// The record bytes, base64.
    pub record: String,
    /// The root signature, base64 (64 bytes).
    pub root_signature: String,
    /// The previous root key's signature for a root-key change, or null.
    pub previous_root_signature: Option<String>,
}

pub(crate) fn sig64(what: &str, b64: &str) -> Result<[u8; 64], DirectoryError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| DirectoryError::malformed(what, format!("not base64: {e}")))?;
    bytes
        .try_into()
        .map_err(|_| DirectoryError::malformed(what, "a signature is 64 bytes"))
}

impl Submission {
    /// Parses a submission's JSON text (bounded).
    pub fn from_json(bytes: &[u8]) -> Result<Self, DirectoryError> {
        if bytes.len() > MAX_RECORD_BYTES * 2 {
            return Err(DirectoryError::TooLarge {
                what: "submission".into(),
                size: bytes.len(),
                limit: MAX_RECORD_BYTES * 2,
            });
        }
        let s: Submission = serde_json::from_slice(bytes)
            .map_err(|e| DirectoryError::malformed("submission", e.to_string()))?;
        if s.format != SUBMISSION_FORMAT {
            return Err(DirectoryError::malformed(
                "submission",
                format!("format must be {SUBMISSION_FORMAT:?}"),
            ));
        }
        Ok(s)
    }

    /// Decodes and verifies the record inside (see [`SignedRecord::parse`]).
    pub fn open(&self) -> Result<SignedRecord, DirectoryError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.record)
            .map_err(|e| {
                DirectoryError::malformed("submission /record", format!("not base64: {e}"))
            })?;
        let root = sig64("submission /root_signature", &self.root_signature)?;
        let prev = self
            .previous_root_signature
            .as_deref()
            .map(|s| sig64("submission /previous_root_signature", s))
            .transpose()?;
        SignedRecord::parse(&bytes, root, prev)
    }
}
