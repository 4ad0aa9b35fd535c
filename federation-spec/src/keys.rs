//! Keys as the protocol uses them: Ed25519 signing keys, X25519 (HPKE)
//! encryption keys, key ids, validity windows and printable fingerprints.
//!
//! Private keys here are raw 32-byte secrets (an Ed25519 seed, an X25519
//! scalar), which is what the test vectors publish and what any Ed25519 or
//! HPKE library takes. Reading and writing key *files* (PKCS#8, permissions,
//! rotation) is the job of the `gsp-certs` crate, not this module.

use crate::timestamp::UnixMillis;
use hpke::{Deserializable, Kem as _, Serializable};
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;
use zeroize::Zeroizing;

/// The HPKE KEM of protocol version 1: DHKEM(X25519, HKDF-SHA256).
pub type HpkeKem = crate::kem::X25519Kem;

/// Domain-separation strings: every signature and the HPKE `info` start with
/// one of these, so a signature made for one purpose can never be replayed as
/// another (SPEC.md §2.3). Each ends with a zero byte.
pub mod domain {
    /// Prefix of the bytes an Ed25519 message signature covers.
    pub const MESSAGE_SIGNATURE: &[u8] = b"GSP-FED-1 message signature\0";
    /// Prefix of the bytes an Ed25519 receipt signature covers.
    pub const RECEIPT_SIGNATURE: &[u8] = b"GSP-FED-1 receipt signature\0";
    /// Prefix of the bytes a Party root key signs in a directory record.
    pub const DIRECTORY_RECORD: &[u8] = b"GSP-FED-1 directory record\0";
    /// The HPKE `info` parameter of every envelope.
    pub const HPKE_INFO: &[u8] = b"GSP-FED-1 envelope hpke\0";
}

/// A key id: the first 8 bytes of SHA-256 over the raw public key
/// (32 bytes for Ed25519 and X25519; the DER SubjectPublicKeyInfo for TLS keys).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The key id of a public key given as bytes.
    pub fn of(public_key: &[u8]) -> Self {
        let digest = Sha256::digest(public_key);
        let mut id = [0u8; 8];
        id.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
        Self(id)
    }

    /// Lower-case hex, 16 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 16 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut id = [0u8; 8];
        hex::decode_to_slice(s, &mut id).ok()?;
        Some(Self(id))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_hex(&s).ok_or_else(|| serde::de::Error::custom("a key id is 16 hex digits"))
    }
}

/// SHA-256 of `bytes` printed for people: upper-case hex in groups of four,
/// separated by spaces (`3F2A 9C1B …`, 16 groups), easy to read aloud or
/// compare on paper.
pub fn fingerprint(bytes: &[u8]) -> String {
    group_hex(&Sha256::digest(bytes))
}

/// Prints bytes as upper-case hex in space-separated groups of four digits.
pub fn group_hex(bytes: &[u8]) -> String {
    let hex = hex::encode_upper(bytes);
    let groups: Vec<&str> = hex
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    groups.join(" ")
}

/// Why a key could not be built from bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The bytes have the wrong length for this kind of key.
    #[error("a {kind} is {expected} bytes, got {got}")]
    Length {
        /// Which kind of key.
        kind: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The bytes are the right length but not a valid key.
    #[error("not a valid {0}")]
    Invalid(&'static str),
}

/// An Ed25519 signing key (message-signing key or Party root key).
///
/// Holds the 32-byte seed (RFC 8032 private key) so it can be written back
/// out; the seed is zeroed when dropped.
pub struct SigningKey {
    seed: Zeroizing<[u8; 32]>,
    pair: Ed25519KeyPair,
}

impl SigningKey {
    /// Builds the key from its 32-byte RFC 8032 seed.
    pub fn from_seed(seed: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = seed.try_into().map_err(|_| KeyError::Length {
            kind: "Ed25519 seed",
            expected: 32,
            got: seed.len(),
        })?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&arr)
            .map_err(|_| KeyError::Invalid("Ed25519 seed"))?;
        Ok(Self {
            seed: Zeroizing::new(arr),
            pair,
        })
    }

    /// Makes a new random key with the operating system's generator.
    pub fn generate() -> Result<Self, KeyError> {
        let seed = random_32()?;
        Self::from_seed(seed.as_slice())
    }

    /// The 32-byte seed. Secret: handle with care.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        VerifyingKey(bytes)
    }

    /// The key id of the public half.
    pub fn key_id(&self) -> KeyId {
        self.verifying_key().key_id()
    }

    /// Signs `domain || message` (see [`domain`]).
    pub fn sign(&self, domain: &[u8], message: &[u8]) -> [u8; 64] {
        let mut input = Vec::with_capacity(domain.len() + message.len());
        input.extend_from_slice(domain);
        input.extend_from_slice(message);
        let sig = self.pair.sign(&input);
        let mut out = [0u8; 64];
        out.copy_from_slice(sig.as_ref());
        out
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, secret hidden)", self.key_id())
    }
}

/// An Ed25519 public key (32 bytes, RFC 8032 encoding).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyingKey(pub [u8; 32]);

/// A signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the Ed25519 signature does not verify")]
pub struct BadSignature;

impl VerifyingKey {
    /// Builds the key from 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Length {
            kind: "Ed25519 public key",
            expected: 32,
            got: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(&self.0)
    }

    /// The SHA-256 fingerprint in groups of four hex digits.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }

    /// Verifies a signature over `domain || message`.
    pub fn verify(&self, domain: &[u8], message: &[u8], sig: &[u8]) -> Result<(), BadSignature> {
        let mut input = Vec::with_capacity(domain.len() + message.len());
        input.extend_from_slice(domain);
        input.extend_from_slice(message);
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(&input, sig)
            .map_err(|_| BadSignature)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", hex::encode(self.0))
    }
}

/// An X25519 private key used as an HPKE recipient key (the message-encryption
/// key). Stored clamped, as RFC 9180 `SerializePrivateKey` outputs it.
pub struct EncryptionKey {
    secret: <HpkeKem as hpke::Kem>::PrivateKey,
    public: EncryptionPublicKey,
}

impl EncryptionKey {
    /// Builds the key from a 32-byte X25519 private key (clamped on input, as
    /// RFC 9180 `DeserializePrivateKey` requires).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != 32 {
            return Err(KeyError::Length {
                kind: "X25519 private key",
                expected: 32,
                got: bytes.len(),
            });
        }
        let secret = <HpkeKem as hpke::Kem>::PrivateKey::from_bytes(bytes)
            .map_err(|_| KeyError::Invalid("X25519 private key"))?;
        let pk = HpkeKem::sk_to_pk(&secret);
        let mut public = [0u8; 32];
        public.copy_from_slice(&pk.to_bytes());
        Ok(Self {
            secret,
            public: EncryptionPublicKey(public),
        })
    }

    /// Makes a new random key with the operating system's generator.
    pub fn generate() -> Result<Self, KeyError> {
        let bytes = random_32()?;
        Self::from_bytes(bytes.as_slice())
    }

    /// The 32-byte (clamped) private key. Secret: handle with care.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.secret.to_bytes());
        out
    }

    /// The public half.
    pub fn public_key(&self) -> EncryptionPublicKey {
        self.public
    }

    /// The key id of the public half.
    pub fn key_id(&self) -> KeyId {
        self.public.key_id()
    }

    pub(crate) fn hpke_secret(&self) -> &<HpkeKem as hpke::Kem>::PrivateKey {
        &self.secret
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey({}, secret hidden)", self.key_id())
    }
}

/// An X25519 public key (32 bytes), the HPKE recipient public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncryptionPublicKey(pub [u8; 32]);

impl EncryptionPublicKey {
    /// Builds the key from 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Length {
            kind: "X25519 public key",
            expected: 32,
            got: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(&self.0)
    }

    /// The SHA-256 fingerprint in groups of four hex digits.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }

    pub(crate) fn hpke_public(&self) -> Result<<HpkeKem as hpke::Kem>::PublicKey, KeyError> {
        <HpkeKem as hpke::Kem>::PublicKey::from_bytes(&self.0)
            .map_err(|_| KeyError::Invalid("X25519 public key"))
    }
}

impl fmt::Debug for EncryptionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionPublicKey({})", hex::encode(self.0))
    }
}

/// When a key may be used: from `not_before` to `not_after`, both inclusive.
///
/// After a rotation the previous key keeps a window that ends at the end of
/// the overlap period, so messages made just before the rotation still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validity {
    /// First instant the key is valid.
    pub not_before: UnixMillis,
    /// Last instant the key is valid.
    pub not_after: UnixMillis,
}

impl Validity {
    /// A window with no end in practice (until the year 292 million).
    pub const ALWAYS: Validity = Validity {
        not_before: UnixMillis(0),
        not_after: UnixMillis(u64::MAX),
    };

    /// Whether `now` falls in the window widened by `skew` on both sides.
    pub fn contains(&self, now: UnixMillis, skew: Duration) -> bool {
        now >= self.not_before.saturating_sub(skew) && now <= self.not_after.saturating_add(skew)
    }
}

/// One of a sender's published message-signing keys with its validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderKey {
    /// The public key.
    pub key: VerifyingKey,
    /// When it may be used.
    pub validity: Validity,
}

/// One of our own message-encryption keys with its validity.
#[derive(Debug)]
pub struct RecipientKey {
    /// The private key.
    pub key: EncryptionKey,
    /// When messages sealed to it are accepted.
    pub validity: Validity,
}

fn random_32() -> Result<Zeroizing<[u8; 32]>, KeyError> {
    use ring::rand::SecureRandom as _;
    let mut out = Zeroizing::new([0u8; 32]);
    ring::rand::SystemRandom::new()
        .fill(out.as_mut_slice())
        .map_err(|_| KeyError::Invalid("random generator output"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_grouped_upper_hex() {
        let fp = fingerprint(b"");
        assert_eq!(
            fp,
            "E3B0 C442 98FC 1C14 9AFB F4C8 996F B924 27AE 41E4 649B 934C A495 991B 7852 B855"
        );
    }

    #[test]
    fn rfc8032_test_1() {
        // RFC 8032 §7.1 TEST 1: empty message.
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        let key = SigningKey::from_seed(&seed).unwrap();
        assert_eq!(
            hex::encode(key.verifying_key().0),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = key.sign(b"", b"");
        assert_eq!(
            hex::encode(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        key.verifying_key().verify(b"", b"", &sig).unwrap();
        assert!(
            key.verifying_key()
                .verify(domain::RECEIPT_SIGNATURE, b"", &sig)
                .is_err()
        );
    }

    #[test]
    fn x25519_key_round_trips_clamped() {
        let key = EncryptionKey::from_bytes(&[0xff; 32]).unwrap();
        let again = EncryptionKey::from_bytes(key.to_bytes().as_slice()).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        assert_eq!(key.to_bytes()[0] & 7, 0);
        assert!(EncryptionKey::from_bytes(&[1; 31]).is_err());
    }

    #[test]
    fn validity_window_with_skew() {
        let v = Validity {
            not_before: UnixMillis(1000),
            not_after: UnixMillis(2000),
        };
        let skew = Duration::from_millis(100);
        assert!(v.contains(UnixMillis(900), skew));
        assert!(!v.contains(UnixMillis(899), skew));
        assert!(v.contains(UnixMillis(2100), skew));
        assert!(!v.contains(UnixMillis(2101), skew));
        assert!(Validity::ALWAYS.contains(UnixMillis(u64::MAX), skew));
    }
}
