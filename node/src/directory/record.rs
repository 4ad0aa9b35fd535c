//! Building this node's own directory record from its identity folder and
//! its settings, signed with the Party root key (`gsp directory record`), so
//! an operator never writes key material by hand. The demo calls
//! [`build_record`] directly.

use gsp_certs::Identity;
use gsp_federation::UnixMillis;
use gsp_federation::directory::{
    CodePattern, DirectoryError, EncryptionKeyEntry, FocalPoint, Hex32, KeyEntry, PartyRecord,
    PinEntry, RecordStatus, SignedRecord, TemplateEntry, record::RECORD_FORMAT,
};
use gsp_federation::keys::SigningKey;

/// The templates this implementation understands (all of `federation-spec/templates`).
pub const KNOWN_TEMPLATES: [&str; 5] = [
    "uid-verification",
    "supply-chain-trace",
    "seizure",
    "operator-licence",
    "free-text",
];

/// What the record says beyond the keys.
#[derive(Debug, Clone)]
pub struct RecordInputs {
    /// Federation URLs (`https://host:port`).
    pub node_urls: Vec<String>,
    /// Focal points and competent authorities.
    pub focal_points: Vec<FocalPoint>,
    /// Code patterns of the library.
    pub code_patterns: Vec<CodePattern>,
    /// Templates accepted (default: every known template, version 1).
    pub templates: Option<Vec<TemplateEntry>>,
    /// Active, or a withdrawal.
    pub status: RecordStatus,
    /// `issued` (must be later than the previous record's).
    pub issued: UnixMillis,
}

/// Why a record could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The identity folder could not be read.
    #[error("{0}")]
    Keys(#[from] gsp_certs::CertsError),
    /// The record breaks a rule.
    #[error("{0}")]
    Record(#[from] DirectoryError),
    /// identity.json holds a malformed key.
    #[error("identity.json: {0}")]
    Identity(String),
}

fn hex32(what: &str, s: &str) -> Result<Hex32, RecordError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| RecordError::Identity(format!("{what} is not 32 bytes of hex")))?;
    Ok(Hex32(out))
}

/// Builds the record from `identity` (its public keys, with validity) and
/// `inputs`, and signs it with the identity's root key (plus `previous_root`
/// for a root-key change).
pub fn build_record(
    identity: &Identity,
    inputs: &RecordInputs,
    previous_root: Option<&SigningKey>,
) -> Result<SignedRecord, RecordError> {
    let doc = &identity.doc;
    let active = inputs.status == RecordStatus::Active;
    let mut record = PartyRecord {
        format: RECORD_FORMAT.into(),
        party: doc.party,
        issued: inputs.issued,
        status: inputs.status,
        root_key: hex32("root key", &doc.root.public_key)?,
        node_urls: Vec::new(),
        tls_pins: Vec::new(),
        signing_keys: Vec::new(),
        encryption_keys: Vec::new(),
        protocol_versions: vec![1],
        templates: inputs.templates.clone().unwrap_or_else(|| {
            KNOWN_TEMPLATES
                .iter()
                .map(|n| TemplateEntry {
                    name: (*n).into(),
                    versions: vec![1],
                })
                .collect()
        }),
        focal_points: inputs.focal_points.clone(),
        code_patterns: inputs.code_patterns.clone(),
    };
    if active {
        record.node_urls = inputs.node_urls.clone();
        for e in &doc.tls {
            record.tls_pins.push(PinEntry {
                spki_sha256: hex32("TLS pin", &e.spki_sha256)?,
                not_before: e.validity.not_before,
                not_after: e.validity.not_after,
            });
        }
        for e in &doc.signing {
            record.signing_keys.push(KeyEntry {
                public_key: hex32("signing key", &e.public_key)?,
                not_before: e.validity.not_before,
                not_after: e.validity.not_after,
            });
        }
        for e in &doc.encryption {
            record.encryption_keys.push(EncryptionKeyEntry {
                public_key: hex32("encryption key", &e.public_key)?,
                not_before: e.validity.not_before,
                not_after: e.validity.not_after,
                current: e.current,
            });
        }
    }
    let root = identity.root_key()?;
    Ok(SignedRecord::sign(&record, &root, previous_root)?)
}

/// A demonstration record's extras for `party`: the pattern of `gsp gen`'s
/// codes and one focal point (used by `gsp directory record --demo-details`
/// and the demo).
pub fn demo_details(party: gsp_federation::PartyCode) -> (Vec<FocalPoint>, Vec<CodePattern>) {
    let p = party.as_str();
    (
        vec![FocalPoint {
            name: format!("GSP focal point of {p}"),
            role: "national focal point (Art. 8.8)".into(),
            authority: format!("Tracking and tracing authority of {p}"),
            contact: format!("gsp-focal-point@{}.example", p.to_ascii_lowercase()),
        }],
        vec![CodePattern {
            kind: gsp_federation::directory::PatternKind::Regex,
            pattern: crate::data::synthetic::code_pattern(p)
                .trim_start_matches('^')
                .trim_end_matches('$')
                .to_owned(),
            issuer: party,
            description: format!("unit-level codes issued by {p} (pack, carton, case, pallet)"),
        }],
    )
}
