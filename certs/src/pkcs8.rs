//! PKCS#8 (RFC 5208 / RFC 5958, RFC 8410) for the two curve-25519 key kinds.
//!
//! Both encodings are fixed-length, so they are written and recognised as a
//! fixed prefix plus key bytes rather than through a general ASN.1 parser.
//! Ed25519 keys are written as PKCS#8 v2 (with the public key), the form ring
//! produces and checks; v1 files (OpenSSL's `genpkey -algorithm ed25519`,
//! which ring's `from_pkcs8` refuses) are accepted on load. X25519 keys are
//! PKCS#8 v1, as OpenSSL writes them.

use gsp_federation::keys::{EncryptionKey, SigningKey};
use zeroize::Zeroizing;

const ED25519_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const ED25519_V2_PREFIX: [u8; 16] = [
    0x30, 0x53, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const ED25519_V2_MIDDLE: [u8; 5] = [0xa1, 0x23, 0x03, 0x21, 0x00];
const X25519_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
];

/// An Ed25519 key as PKCS#8 v2 DER.
pub fn ed25519_to_pkcs8(key: &SigningKey) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(85));
    out.extend_from_slice(&ED25519_V2_PREFIX);
    out.extend_from_slice(key.seed());
    out.extend_from_slice(&ED25519_V2_MIDDLE);
    out.extend_from_slice(&key.verifying_key().0);
    out
}

/// Reads an Ed25519 key from PKCS#8 v1 or v2 DER. For v2 the embedded public
/// key must match the seed (ring checks it).
pub fn ed25519_from_pkcs8(der: &[u8]) -> Result<SigningKey, String> {
    if der.len() == 48 && der.starts_with(&ED25519_V1_PREFIX) {
        return SigningKey::from_seed(der.get(16..).unwrap_or_default()).map_err(|e| e.to_string());
    }
    if der.len() == 85 && der.starts_with(&ED25519_V2_PREFIX) {
        ring::signature::Ed25519KeyPair::from_pkcs8(der)
            .map_err(|e| format!("PKCS#8 v2 Ed25519 key rejected by ring: {e}"))?;
        return SigningKey::from_seed(der.get(16..48).unwrap_or_default())
            .map_err(|e| e.to_string());
    }
    Err("not an Ed25519 PKCS#8 private key".into())
}

/// An X25519 key as PKCS#8 v1 DER.
pub fn x25519_to_pkcs8(key: &EncryptionKey) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(48));
    out.extend_from_slice(&X25519_V1_PREFIX);
    out.extend_from_slice(key.to_bytes().as_slice());
    out
}

/// Reads an X25519 key from PKCS#8 v1 DER.
pub fn x25519_from_pkcs8(der: &[u8]) -> Result<EncryptionKey, String> {
    if der.len() == 48 && der.starts_with(&X25519_V1_PREFIX) {
        return EncryptionKey::from_bytes(der.get(16..).unwrap_or_default())
            .map_err(|e| e.to_string());
    }
    Err("not an X25519 PKCS#8 private key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_v2_is_what_ring_makes_and_v1_loads() {
        let key = SigningKey::from_seed(&[3; 32]).unwrap();
        let v2 = ed25519_to_pkcs8(&key);
        ring::signature::Ed25519KeyPair::from_pkcs8(&v2).unwrap();
        assert_eq!(
            ed25519_from_pkcs8(&v2).unwrap().verifying_key(),
            key.verifying_key()
        );
        let mut v1 = ED25519_V1_PREFIX.to_vec();
        v1.extend_from_slice(&[3; 32]);
        assert_eq!(
            ed25519_from_pkcs8(&v1).unwrap().verifying_key(),
            key.verifying_key()
        );
        let mut wrong_pub = v2.to_vec();
        wrong_pub[84] ^= 1;
        assert!(ed25519_from_pkcs8(&wrong_pub).is_err());
    }

    #[test]
    fn x25519_round_trip() {
        let key = EncryptionKey::from_bytes(&[9; 32]).unwrap();
        let der = x25519_to_pkcs8(&key);
        assert_eq!(
            x25519_from_pkcs8(&der).unwrap().public_key(),
            key.public_key()
        );
        assert!(x25519_from_pkcs8(&der[..47]).is_err());
    }
}
