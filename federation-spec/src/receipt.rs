//! Receipts: the recipient's signed statement "I received exactly these bytes,
//! and accepted (or rejected) them".
//!
//! A receipt covers the SHA-256 of the exact envelope bytes received, so the
//! sender can later prove delivery of that envelope (non-repudiation of
//! receipt). It is separate from the HTTP status, travels in the HTTP response
//! body, and has its own byte layout (SPEC.md §9). It says nothing about what
//! the recipient will do with the message.

use crate::encoding::{Reader, put_str8};
use crate::envelope::sha256;
use crate::header::PROTOCOL_VERSION;
use crate::keys::{KeyId, SenderKey, SigningKey, domain};
use crate::party::PartyCode;
use crate::timestamp::UnixMillis;
use std::time::Duration;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// The four bytes every receipt starts with: ASCII `GSPR`.
pub const RECEIPT_MAGIC: [u8; 4] = *b"GSPR";

/// The recipient's verdict on an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The envelope passed every check and the message is stored.
    Accepted,
    /// The envelope was refused; the code is one of SPEC.md §8.
    Rejected(String),
}

/// A signed receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// SHA-256 of the exact envelope bytes received.
    pub envelope_sha256: [u8; 32],
    /// The message id from the routing header, or all zeros if it could not be read.
    pub message_id: Uuid,
    /// The Party issuing the receipt (the message's recipient).
    pub from: PartyCode,
    /// The Party the receipt is for (the message's sender, as authenticated by TLS).
    pub to: PartyCode,
    /// When the issuer received the envelope.
    pub received: UnixMillis,
    /// Accepted or rejected, with the error code.
    pub verdict: Verdict,
    /// Key id of the issuer's message-signing key.
    pub signer_key_id: KeyId,
    /// Ed25519 signature over the domain string and every preceding byte.
    pub signature: [u8; 64],
}

/// Why a receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The bytes are not a receipt.
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// The receipt's version is not 1.
    #[error("unknown receipt version {0}")]
    UnknownVersion(u16),
    /// The signing key is not one the issuer publishes, or not valid now.
    #[error("receipt signed by key {0}, which its issuer does not publish as valid")]
    UnknownSigningKey(KeyId),
    /// The signature does not verify.
    #[error("the receipt's signature does not verify")]
    BadSignature,
    /// The receipt is for other bytes than the envelope we sent.
    #[error("the receipt is for a different envelope")]
    WrongEnvelope,
}

/// SHA-256 of an envelope: what a receipt covers.
pub fn envelope_digest(envelope: &[u8]) -> [u8; 32] {
    sha256(envelope)
}

impl Receipt {
    /// Makes and signs a receipt.
    pub fn sign(
        envelope_sha256: [u8; 32],
        message_id: Uuid,
        from: PartyCode,
        to: PartyCode,
        received: UnixMillis,
        verdict: Verdict,
        key: &SigningKey,
    ) -> Self {
        let mut r = Self {
            envelope_sha256,
            message_id,
            from,
            to,
            received,
            verdict,
            signer_key_id: key.key_id(),
            signature: [0; 64],
        };
        r.signature = key.sign(domain::RECEIPT_SIGNATURE, &r.signed_bytes());
        r
    }

    /// The bytes the signature covers (after the domain string).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&RECEIPT_MAGIC);
        out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        out.extend_from_slice(&self.envelope_sha256);
        out.extend_from_slice(self.message_id.as_bytes());
        put_str8(&mut out, self.from.as_bytes());
        put_str8(&mut out, self.to.as_bytes());
        out.extend_from_slice(&self.received.0.to_be_bytes());
        match &self.verdict {
            Verdict::Accepted => {
                out.push(0);
                put_str8(&mut out, b"");
            }
            Verdict::Rejected(code) => {
                out.push(1);
                put_str8(&mut out, code.as_bytes());
            }
        }
        out.extend_from_slice(&self.signer_key_id.0);
        out
    }

    /// The receipt's wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.signed_bytes();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses a receipt (does not verify it).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ReceiptError> {
        let m = |e: crate::encoding::DecodeError| ReceiptError::Malformed(e.to_string());
        let mut r = Reader::new(bytes);
        let magic: [u8; 4] = r.array("receipt ends inside its magic number").map_err(m)?;
        if magic != RECEIPT_MAGIC {
            return Err(ReceiptError::Malformed("magic number is not `GSPR`".into()));
        }
        let version = r.u16("receipt ends inside `version`").map_err(m)?;
        if version != PROTOCOL_VERSION {
            return Err(ReceiptError::UnknownVersion(version));
        }
        let envelope_sha256 = r.array("receipt ends inside the digest").map_err(m)?;
        let message_id =
            Uuid::from_bytes(r.array("receipt ends inside the message id").map_err(m)?);
        let party = |b: &[u8]| {
            PartyCode::from_bytes(b)
                .ok_or_else(|| ReceiptError::Malformed("not a Party code".into()))
        };
        let from = party(r.str8("receipt ends inside `from`").map_err(m)?)?;
        let to = party(r.str8("receipt ends inside `to`").map_err(m)?)?;
        let received = UnixMillis(r.u64("receipt ends inside `received`").map_err(m)?);
        let verdict = r.u8("receipt ends inside `verdict`").map_err(m)?;
        let code = r.str8("receipt ends inside `code`").map_err(m)?;
        let verdict = match (verdict, code) {
            (0, b"") => Verdict::Accepted,
            (1, code)
                if !code.is_empty()
                    && code.iter().all(|b| b.is_ascii_lowercase() || *b == b'_') =>
            {
                Verdict::Rejected(String::from_utf8_lossy(code).into_owned())
            }
            _ => return Err(ReceiptError::Malformed("verdict and code disagree".into())),
        };
        let signer_key_id = KeyId(r.array("receipt ends inside the key id").map_err(m)?);
        let signature = r.array("receipt ends inside the signature").map_err(m)?;
        r.finish("bytes after the receipt's signature").map_err(m)?;
        Ok(Self {
            envelope_sha256,
            message_id,
            from,
            to,
            received,
            verdict,
            signer_key_id,
            signature,
        })
    }

    /// Verifies the signature with the issuer's published signing keys (valid
    /// at `now` give or take `skew`) and that the receipt covers `envelope`.
    pub fn verify(
        &self,
        envelope: &[u8],
        issuer_keys: &[SenderKey],
        now: UnixMillis,
        skew: Duration,
    ) -> Result<(), ReceiptError> {
        let key = issuer_keys
            .iter()
            .find(|k| k.key.key_id() == self.signer_key_id && k.validity.contains(now, skew))
            .ok_or(ReceiptError::UnknownSigningKey(self.signer_key_id))?;
        key.key
            .verify(
                domain::RECEIPT_SIGNATURE,
                &self.signed_bytes(),
                &self.signature,
            )
            .map_err(|_| ReceiptError::BadSignature)?;
        if !bool::from(envelope_digest(envelope).ct_eq(&self.envelope_sha256)) {
            return Err(ReceiptError::WrongEnvelope);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Validity;

    #[test]
    fn sign_parse_verify() {
        let key = SigningKey::from_seed(&[8; 32]).unwrap();
        let env = b"pretend envelope";
        let r = Receipt::sign(
            envelope_digest(env),
            Uuid::from_u128(5),
            PartyCode::parse("KEN").unwrap(),
            PartyCode::parse("FRA").unwrap(),
            UnixMillis(1),
            Verdict::Rejected("expired".into()),
            &key,
        );
        let bytes = r.to_bytes();
        let back = Receipt::from_bytes(&bytes).unwrap();
        assert_eq!(back, r);
        let keys = [SenderKey {
            key: key.verifying_key(),
            validity: Validity::ALWAYS,
        }];
        back.verify(env, &keys, UnixMillis(1), Duration::ZERO)
            .unwrap();
        assert_eq!(
            back.verify(b"other", &keys, UnixMillis(1), Duration::ZERO),
            Err(ReceiptError::WrongEnvelope)
        );
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 1;
            let ok = Receipt::from_bytes(&t)
                .and_then(|r| r.verify(env, &keys, UnixMillis(1), Duration::ZERO));
            assert!(ok.is_err(), "flip at byte {i} accepted");
        }
    }
}
