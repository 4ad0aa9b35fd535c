//! Checkpoints: the Secretariat's signed statement of the log's size and root
//! hash at a moment (SPEC.md §18.5). Nodes keep the last one they accepted,
//! check every later one for consistency with it, and carry theirs in every
//! federation message header so peers can compare.
//!
//! Layout, 126 bytes:
//!
//! ```text
//! "GSPC" | u16 version=1 | u64 tree_size | bytes[32] root_hash | u64 time
//! | bytes[8] key_id | bytes[64] signature
//! ```
//!
//! The signature is Ed25519 by the Secretariat key over the checkpoint domain
//! string followed by the first 62 bytes (everything before the signature).

use super::DOMAIN_CHECKPOINT;
use super::error::DirectoryError;
use crate::encoding::Reader;
use crate::keys::{KeyId, SigningKey, VerifyingKey};
use crate::log::Hash;
use crate::timestamp::UnixMillis;
use base64::Engine as _;

/// The four bytes every checkpoint starts with: ASCII `GSPC`.
pub const CHECKPOINT_MAGIC: [u8; 4] = *b"GSPC";
/// Length of an encoded checkpoint.
pub const CHECKPOINT_LEN: usize = 126;
const SIGNED_LEN: usize = CHECKPOINT_LEN - 64;

/// A signed checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Number of leaves in the log.
    pub size: u64,
    /// RFC 9162 root hash of those leaves.
    pub root: Hash,
    /// When the Secretariat signed it.
    pub time: UnixMillis,
    /// Key id of the Secretariat key.
    pub key_id: KeyId,
    /// The signature.
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// Makes and signs a checkpoint.
    pub fn sign(size: u64, root: Hash, time: UnixMillis, key: &SigningKey) -> Self {
        let mut c = Checkpoint {
            size,
            root,
            time,
            key_id: key.key_id(),
            signature: [0; 64],
        };
        let bytes = c.to_bytes();
        c.signature = key.sign(
            DOMAIN_CHECKPOINT,
            bytes.get(..SIGNED_LEN).unwrap_or_default(),
        );
        c
    }

    /// The 126 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHECKPOINT_LEN);
        out.extend_from_slice(&CHECKPOINT_MAGIC);
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.time.0.to_be_bytes());
        out.extend_from_slice(&self.key_id.0);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Base64 of the bytes, as the `GSP-Directory-Checkpoint` header carries it.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_bytes())
    }

    /// Parses and verifies a checkpoint against the Secretariat key.
    pub fn parse(bytes: &[u8], secretariat: &VerifyingKey) -> Result<Self, DirectoryError> {
        let bad = |m: String| DirectoryError::malformed("checkpoint", m);
        if bytes.len() != CHECKPOINT_LEN {
            return Err(bad(format!(
                "is {} bytes, a checkpoint is {CHECKPOINT_LEN}",
                bytes.len()
            )));
        }
        let mut r = Reader::new(bytes);
        let dec = |e: crate::encoding::DecodeError| bad(e.to_string());
        if r.array::<4>("magic").map_err(dec)? != CHECKPOINT_MAGIC {
            return Err(bad("does not start with GSPC".into()));
        }
        let version = r.u16("version").map_err(dec)?;
        if version != 1 {
            return Err(bad(format!("version {version}, only 1 is known")));
        }
        let c = Checkpoint {
            size: r.u64("tree_size").map_err(dec)?,
            root: r.array::<32>("root_hash").map_err(dec)?,
            time: UnixMillis(r.u64("time").map_err(dec)?),
            key_id: KeyId(r.array::<8>("key_id").map_err(dec)?),
            signature: r.array::<64>("signature").map_err(dec)?,
        };
        if c.key_id != secretariat.key_id() {
            return Err(DirectoryError::BadSignature {
                what: format!(
                    "checkpoint (signed by key {}, the Secretariat key is {})",
                    c.key_id,
                    secretariat.key_id()
                ),
            });
        }
        secretariat
            .verify(
                DOMAIN_CHECKPOINT,
                bytes.get(..SIGNED_LEN).unwrap_or_default(),
                &c.signature,
            )
            .map_err(|_| DirectoryError::BadSignature {
                what: "checkpoint".into(),
            })?;
        Ok(c)
    }

    /// Parses the base64 form.
    pub fn from_base64(text: &str, secretariat: &VerifyingKey) -> Result<Self, DirectoryError> {
        if text.len() > 4 * CHECKPOINT_LEN {
            return Err(DirectoryError::malformed(
                "checkpoint",
                "base64 text too long",
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| DirectoryError::malformed("checkpoint", format!("not base64: {e}")))?;
        Self::parse(&bytes, secretariat)
    }
}
