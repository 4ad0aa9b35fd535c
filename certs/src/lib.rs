//! Party identity and node certificates for GSP.
//!
//! Makes and loads a Party's root identity key and a node's TLS certificate,
//! message-signing key and message-encryption key; rotates them with overlap
//! and prints fingerprints an operator can compare on paper. Private key files
//! are created 0600 and refused when others can read them. It does not speak
//! any network protocol and does not build TLS configurations: it hands the
//! node DER/PEM bytes and the SPKI pin ([`spki_sha256`]).
//!
//! The key types, key ids, fingerprints and Party codes themselves live in
//! `gsp-federation` (the wire format needs them); this crate re-exports them.

mod der;
pub mod error;
pub mod files;
pub mod identity;
pub mod pkcs8;

pub use error::CertsError;
pub use gsp_federation::PartyCode;
pub use gsp_federation::keys::{fingerprint, group_hex};
pub use identity::{
    DEFAULT_OVERLAP, DEFAULT_TLS_DAYS, Identity, IdentityDoc, InitOptions, KeyKind, RotationReport,
    TlsCredentials, format_instant, init, rotate, show, spki_sha256,
};
