//! Why an envelope was refused, as typed errors with stable codes.
//!
//! Every way `open` can fail is an [`OpenError`] variant, and every variant has
//! a stable snake_case code ([`OpenError::code`]) that SPEC.md §8 lists and the
//! node sends back over HTTP and in receipts. Codes are part of the protocol:
//! never rename one; add new ones instead.

use crate::encoding::DecodeError;
use crate::keys::KeyId;
use crate::party::PartyCode;
use crate::timestamp::UnixMillis;

/// A refused envelope. The `Display` text is for logs and operators; the
/// [`code`](OpenError::code) is for machines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The envelope is longer than the receiver's limit.
    #[error("envelope is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Size received.
        size: usize,
        /// The receiver's limit.
        limit: usize,
    },
    /// The framing (magic, lengths) is broken.
    #[error("malformed envelope: {0}")]
    MalformedEnvelope(DecodeError),
    /// The envelope's protocol version is not one this implementation speaks.
    #[error("unknown protocol version {0} (this node speaks version 1)")]
    UnknownVersion(u16),
    /// The routing header cannot be parsed or breaks a rule.
    #[error("malformed routing header: {0}")]
    MalformedHeader(String),
    /// The envelope is addressed to another Party.
    #[error("envelope is addressed to {to}, this node is {us}")]
    WrongRecipient {
        /// The recipient named in the header.
        to: PartyCode,
        /// Who we are.
        us: PartyCode,
    },
    /// The envelope is sealed to an encryption key we do not hold (or no longer accept).
    #[error(
        "envelope is sealed to encryption key {0}, which this node does not hold or no longer accepts"
    )]
    UnknownRecipientKey(KeyId),
    /// `created` is further in the future than the allowed clock skew.
    #[error("envelope was created at {created:?}, in the future of this node's clock {now:?}")]
    NotYetValid {
        /// The header's creation time.
        created: UnixMillis,
        /// Our clock.
        now: UnixMillis,
    },
    /// `expires` has passed (beyond the allowed clock skew).
    #[error("envelope expired at {expires:?}; this node's clock says {now:?}")]
    Expired {
        /// The header's expiry time.
        expires: UnixMillis,
        /// Our clock.
        now: UnixMillis,
    },
    /// HPKE decryption failed: wrong key, or the header or ciphertext was altered.
    #[error("decryption failed: the envelope was altered or sealed to another key")]
    DecryptFailed,
    /// The decrypted plaintext is not a signature, signed header and body.
    #[error("malformed payload: {0}")]
    MalformedPayload(String),
    /// The signed header names a signing key the sender does not publish.
    #[error("{party} publishes no signing key {key_id}")]
    UnknownSigningKey {
        /// The sender.
        party: PartyCode,
        /// The key id in the signed header.
        key_id: KeyId,
    },
    /// The sender's signing key exists but is outside its validity window.
    #[error("signing key {0} is outside its validity window")]
    SigningKeyNotValid(KeyId),
    /// The signature does not verify, or the body is not the one signed.
    #[error("bad signature: {0}")]
    BadSignature(&'static str),
    /// The signed header disagrees with the routing header.
    #[error("the signed header does not match the routing header (field {0})")]
    HeaderMismatch(&'static str),
    /// A message with this id from this sender was already accepted.
    #[error("message {0} from {1} was already received")]
    Replayed(uuid::Uuid, PartyCode),
    /// The body does not conform to the template's schema.
    #[error("body does not conform to its template: {0}")]
    InvalidBody(String),
    /// The node's replay store failed; the envelope may be retried.
    #[error("internal error: {0}")]
    Internal(String),
}

impl OpenError {
    /// The stable machine-readable code (SPEC.md §8).
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::MalformedEnvelope(_) => "malformed_envelope",
            Self::UnknownVersion(_) => "unknown_version",
            Self::MalformedHeader(_) => "malformed_header",
            Self::WrongRecipient { .. } => "wrong_recipient",
            Self::UnknownRecipientKey(_) => "unknown_recipient_key",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::Expired { .. } => "expired",
            Self::DecryptFailed => "decrypt_failed",
            Self::MalformedPayload(_) => "malformed_payload",
            Self::UnknownSigningKey { .. } => "unknown_signing_key",
            Self::SigningKeyNotValid(_) => "signing_key_not_valid",
            Self::BadSignature(_) => "bad_signature",
            Self::HeaderMismatch(_) => "header_mismatch",
            Self::Replayed(..) => "replayed",
            Self::InvalidBody(_) => "invalid_body",
            Self::Internal(_) => "internal_error",
        }
    }

    /// Whether the sender may usefully send the same envelope again later
    /// (only when the failure was ours, not the envelope's).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Internal(_))
    }
}

/// Every code [`OpenError::code`] can return, in the order of the checks.
pub const OPEN_ERROR_CODES: [&str; 17] = [
    "too_large",
    "malformed_envelope",
    "unknown_version",
    "malformed_header",
    "wrong_recipient",
    "unknown_recipient_key",
    "not_yet_valid",
    "expired",
    "decrypt_failed",
    "malformed_payload",
    "unknown_signing_key",
    "signing_key_not_valid",
    "bad_signature",
    "header_mismatch",
    "replayed",
    "invalid_body",
    "internal_error",
];

/// Why a message could not be sealed: the draft breaks a protocol rule, or
/// the system random generator failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// A field of the draft breaks a rule of SPEC.md (the message names it).
    #[error("invalid message: {0}")]
    InvalidDraft(String),
    /// The body is larger than the protocol allows.
    #[error("body is {size} bytes, more than the protocol limit of {limit}")]
    TooLarge {
        /// Body size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body does not conform to its template's schema.
    #[error("body does not conform to its template: {0}")]
    InvalidBody(String),
    /// The recipient's public key is not a valid X25519 key.
    #[error("the recipient's encryption key is invalid")]
    BadRecipientKey,
    /// The random generator or HPKE failed.
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
}
