//! The GSP federation wire format.
//!
//! This crate holds the protocol's types and the code that seals and opens
//! message envelopes, makes and checks receipts, and validates template
//! bodies. It knows nothing of HTTP or databases: the node crate does the I/O,
//! this crate says what the bytes mean. The normative text is
//! `federation-spec/SPEC.md`; the test vectors in `federation-spec/vectors/`
//! pin it.
//!
//! The usual path:
//! - sender: [`MessageDraft::new`], then [`seal`] with its [`SigningKey`] and
//!   the recipient's [`EncryptionPublicKey`];
//! - recipient: [`open`] with an [`OpenContext`], then
//!   [`Receipt::accepted`] or [`Receipt::rejected`] over the envelope bytes.

mod aead_ring;
pub mod directory;
pub mod encoding;
pub mod envelope;
pub mod error;
pub mod frames;
#[doc(hidden)]
pub mod fuzzing;
pub mod header;
pub mod kem;
pub mod keys;
pub mod log;
pub mod party;
pub mod receipt;
pub mod replay;
pub mod templates;
pub mod timestamp;

pub use envelope::{
    MAX_BODY, MAX_ENVELOPE, MessageDraft, OpenContext, OpenedMessage, ParsedEnvelope, SenderKeys,
    open, parse, seal, seal_validated,
};
pub use error::{OpenError, SealError};
pub use header::{PROTOCOL_VERSION, RoutingHeader, SignedHeader};
pub use keys::{
    EncryptionKey, EncryptionPublicKey, KeyId, RecipientKey, SenderKey, SigningKey, Validity,
    VerifyingKey, fingerprint,
};
pub use party::PartyCode;
pub use receipt::{Receipt, Verdict, envelope_digest};
pub use replay::{InMemorySeenIds, SeenIds};
pub use templates::{Part, TemplateRef, ValidatedBody};
pub use timestamp::UnixMillis;
