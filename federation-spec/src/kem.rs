//! DHKEM(X25519, HKDF-SHA256) of RFC 9180 §4.1 (KEM id `0x0020`), in the
//! `hpke` crate's KEM slot.
//!
//! The wire result is exactly RFC 9180's — the same bytes as the `hpke`
//! crate's own `X25519HkdfSha256` for the same inputs (tested below) — but
//! with less work per message, which matters because every envelope pays it:
//!
//! - **Encap** derives the ephemeral key pair once (`DeriveKeyPair(ikmE)`,
//!   one fixed-base multiplication) and then does the one Diffie-Hellman;
//!   the crate's version computes the ephemeral public key a second time.
//! - **Decap** takes the recipient's public key (part of the KEM context)
//!   from the private key, where it was computed once when the key was
//!   loaded, instead of recomputing it for every envelope opened.
//!
//! - **X25519** with `curve25519-dalek` (constant time), with its base-point
//!   tables for the fixed-base multiplication (the `hpke` crate builds it
//!   without them), and the Diffie-Hellman through the Edwards form of the
//!   curve, whose variable-base multiplication uses AVX2 where the CPU has
//!   it (a fifth faster than the Montgomery ladder on this project's
//!   machines); a peer's point that has no Edwards form (one on the twist)
//!   goes through the ladder. Both give RFC 7748's result, tested below.
//!
//! The HKDF is ring's. Only base mode without a sender key is offered: the
//! protocol uses nothing else (SPEC.md §2.2), and the other modes are refused.

use curve25519_dalek::montgomery::MontgomeryPoint;
use hpke::hybrid_array::typenum::U32;
use hpke::kem::SharedSecret;
use hpke::rand_core::CryptoRng;
use hpke::{Deserializable, HpkeError, Serializable};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, Zeroizing};

/// RFC 9180 `suite_id` of this KEM: `"KEM" || I2OSP(0x0020, 2)`.
const SUITE_ID: [u8; 5] = *b"KEM\x00\x20";
/// RFC 9180's version label of every labeled HKDF call.
const VERSION_LABEL: &[u8] = b"HPKE-v1";

/// DHKEM(X25519, HKDF-SHA256).
pub struct X25519Kem;

/// An X25519 public key (`Npk` = 32 bytes), also the encapsulated key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

/// An X25519 private key, stored clamped (RFC 9180 `SerializePrivateKey`
/// clamps), with its public key computed once.
#[derive(Clone)]
pub struct PrivateKey {
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl PrivateKey {
    fn from_scalar(bytes: [u8; 32]) -> PrivateKey {
        let mut secret = Zeroizing::new(bytes);
        // RFC 7748 §5 clamping.
        secret[0] &= 248;
        secret[31] &= 127;
        secret[31] |= 64;
        let public = MontgomeryPoint::mul_base_clamped(*secret).0;
        PrivateKey { secret, public }
    }
}

impl ConstantTimeEq for PrivateKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.secret.ct_eq(&*other.secret)
    }
}

/// X25519(`k`, `u`) of RFC 7748 for a clamped `k`: through the Edwards form
/// of `u` when it has one (the result's u-coordinate does not depend on
/// which of the two Edwards points is taken), by the Montgomery ladder when
/// it does not. `u` is public; the multiplication is constant time in `k`.
fn x25519(k: &[u8; 32], u: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let point = MontgomeryPoint(*u);
    Zeroizing::new(match point.to_edwards(0) {
        Some(edwards) => edwards.mul_clamped(*k).to_montgomery().0,
        None => point.mul_clamped(*k).0,
    })
}

impl Serializable for PublicKey {
    type OutputSize = U32;

    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0);
    }
}

impl Deserializable for PublicKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let bytes: [u8; 32] = encoded
            .try_into()
            .map_err(|_| HpkeError::IncorrectInputLength(32, encoded.len()))?;
        Ok(PublicKey(bytes))
    }
}

impl Serializable for PrivateKey {
    type OutputSize = U32;

    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&*self.secret);
    }
}

impl Deserializable for PrivateKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let bytes: [u8; 32] = encoded
            .try_into()
            .map_err(|_| HpkeError::IncorrectInputLength(32, encoded.len()))?;
        Ok(PrivateKey::from_scalar(bytes))
    }
}

/// `LabeledExtract(salt, label, ikm)` (RFC 9180 §4) with HKDF-SHA256.
fn labeled_extract(salt: &[u8], label: &[u8], ikm: &[u8]) -> ring::hkdf::Prk {
    let mut input = Zeroizing::new(Vec::with_capacity(
        VERSION_LABEL.len() + SUITE_ID.len() + label.len() + ikm.len(),
    ));
    input.extend_from_slice(VERSION_LABEL);
    input.extend_from_slice(&SUITE_ID);
    input.extend_from_slice(label);
    input.extend_from_slice(ikm);
    ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(&input)
}

/// Output length for ring's HKDF-Expand.
struct Len32;

impl ring::hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// `LabeledExpand(prk, label, info, 32)` (RFC 9180 §4) with HKDF-SHA256.
fn labeled_expand(
    prk: &ring::hkdf::Prk,
    label: &[u8],
    info: &[u8],
    out: &mut [u8; 32],
) -> Result<(), ring::error::Unspecified> {
    let length = 32u16.to_be_bytes();
    let parts: [&[u8]; 5] = [&length, VERSION_LABEL, &SUITE_ID, label, info];
    prk.expand(&parts, Len32)?.fill(out)
}

/// `ExtractAndExpand(dh, kem_context)` of RFC 9180 §4.1.
fn shared_secret(
    dh: &[u8; 32],
    enc: &[u8; 32],
    pk_recipient: &[u8; 32],
) -> Result<SharedSecret<X25519Kem>, ring::error::Unspecified> {
    // An all-zero result means a low-order point: refused (RFC 9180 §7.1.4).
    if bool::from(dh.ct_eq(&[0u8; 32])) {
        return Err(ring::error::Unspecified);
    }
    let prk = labeled_extract(b"", b"eae_prk", dh);
    let mut kem_context = [0u8; 64];
    kem_context[..32].copy_from_slice(enc);
    kem_context[32..].copy_from_slice(pk_recipient);
    let mut out = [0u8; 32];
    labeled_expand(&prk, b"shared_secret", &kem_context, &mut out)?;
    let mut secret = SharedSecret::<X25519Kem>::default();
    secret.0.copy_from_slice(&out);
    out.zeroize();
    Ok(secret)
}

impl hpke::Kem for X25519Kem {
    type PublicKey = PublicKey;
    type PrivateKey = PrivateKey;
    type EncappedKey = PublicKey;
    type NSecret = U32;
    const KEM_ID: u16 = 0x0020;

    fn sk_to_pk(sk: &PrivateKey) -> PublicKey {
        PublicKey(sk.public)
    }

    /// RFC 9180 §7.1.3 `DeriveKeyPair` for X25519.
    fn derive_keypair(ikm: &[u8]) -> (PrivateKey, PublicKey) {
        let prk = labeled_extract(b"", b"dkp_prk", ikm);
        let mut sk = [0u8; 32];
        if labeled_expand(&prk, b"sk", b"", &mut sk).is_err() {
            // HKDF-SHA256 refuses only outputs over 255 × 32 bytes; this is 32.
            // Never carry on with an all-zero key.
            unreachable!("HKDF-Expand of 32 bytes failed");
        }
        let private = PrivateKey::from_scalar(sk);
        sk.zeroize();
        let public = PublicKey(private.public);
        (private, public)
    }

    fn decap(
        sk_recip: &PrivateKey,
        pk_sender_id: Option<&PublicKey>,
        encapped_key: &PublicKey,
    ) -> Result<SharedSecret<Self>, HpkeError> {
        if pk_sender_id.is_some() {
            return Err(HpkeError::DecapError);
        }
        let dh = x25519(&sk_recip.secret, &encapped_key.0);
        shared_secret(&dh, &encapped_key.0, &sk_recip.public).map_err(|_| HpkeError::DecapError)
    }

    fn encap_with_rng(
        pk_recip: &PublicKey,
        sender_id_keypair: Option<(&PrivateKey, &PublicKey)>,
        csprng: &mut impl CryptoRng,
    ) -> Result<(SharedSecret<Self>, PublicKey), HpkeError> {
        if sender_id_keypair.is_some() {
            return Err(HpkeError::EncapError);
        }
        // GenerateKeyPair = DeriveKeyPair(random Nsk bytes), as the crate does.
        let mut ikm = Zeroizing::new([0u8; 32]);
        csprng.fill_bytes(ikm.as_mut());
        let (sk_eph, pk_eph) = Self::derive_keypair(ikm.as_ref());
        let dh = x25519(&sk_eph.secret, &pk_recip.0);
        let secret =
            shared_secret(&dh, &pk_eph.0, &pk_recip.0).map_err(|_| HpkeError::EncapError)?;
        Ok((secret, pk_eph))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpke::Kem as _;

    type Theirs = hpke::kem::X25519HkdfSha256;

    /// Replays fixed bytes, as a test RNG.
    struct Fixed([u8; 32]);

    impl hpke::rand_core::TryRng for Fixed {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(u32::from_le_bytes([
                self.0[0], self.0[1], self.0[2], self.0[3],
            ]))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(u64::from(self.try_next_u32()?))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for (i, b) in dst.iter_mut().enumerate() {
                *b = self.0[i % 32];
            }
            Ok(())
        }
    }

    impl hpke::rand_core::TryCryptoRng for Fixed {}

    fn seeds() -> impl Iterator<Item = [u8; 32]> {
        (0u8..24).map(|i| {
            let mut s = [0u8; 32];
            for (j, b) in s.iter_mut().enumerate() {
                *b = i.wrapping_mul(37).wrapping_add(j as u8).wrapping_mul(11);
            }
            s
        })
    }

    #[test]
    fn key_derivation_matches_the_hpke_crate() {
        for ikm in seeds() {
            let (sk, pk) = X25519Kem::derive_keypair(&ikm);
            let (their_sk, their_pk) = Theirs::derive_keypair(&ikm);
            assert_eq!(sk.to_bytes().as_slice(), their_sk.to_bytes().as_slice());
            assert_eq!(pk.to_bytes().as_slice(), their_pk.to_bytes().as_slice());
            let loaded = PrivateKey::from_bytes(&their_sk.to_bytes()).unwrap();
            assert_eq!(X25519Kem::sk_to_pk(&loaded), pk);
        }
    }

    #[test]
    fn encap_and_decap_agree_with_the_hpke_crate_both_ways() {
        for ikm in seeds() {
            let (sk_r, pk_r) = X25519Kem::derive_keypair(&ikm);
            let their_sk_r =
                <Theirs as hpke::Kem>::PrivateKey::from_bytes(&sk_r.to_bytes()).unwrap();
            let their_pk_r =
                <Theirs as hpke::Kem>::PublicKey::from_bytes(&pk_r.to_bytes()).unwrap();
            let eph = [ikm[3] ^ 0x5a; 32];

            // Same ephemeral input: same encapsulated key and shared secret.
            let (ours, enc) = X25519Kem::encap_with_rng(&pk_r, None, &mut Fixed(eph)).unwrap();
            let (theirs, their_enc) =
                Theirs::encap_with_rng(&their_pk_r, None, &mut Fixed(eph)).unwrap();
            assert_eq!(enc.to_bytes().as_slice(), their_enc.to_bytes().as_slice());
            assert_eq!(ours.0.as_slice(), theirs.0.as_slice());

            // Each opens what the other sealed.
            let their_enc_parsed =
                <Theirs as hpke::Kem>::EncappedKey::from_bytes(&enc.to_bytes()).unwrap();
            let opened_by_them = Theirs::decap(&their_sk_r, None, &their_enc_parsed).unwrap();
            assert_eq!(opened_by_them.0.as_slice(), ours.0.as_slice());
            let our_enc = PublicKey::from_bytes(&their_enc.to_bytes()).unwrap();
            let opened_by_us = X25519Kem::decap(&sk_r, None, &our_enc).unwrap();
            assert_eq!(opened_by_us.0.as_slice(), theirs.0.as_slice());
        }
    }

    #[test]
    fn x25519_matches_the_montgomery_ladder_on_the_curve_and_on_the_twist() {
        let mut via_edwards = 0;
        for i in 0u8..200 {
            let mut u = [0u8; 32];
            let mut k = [0u8; 32];
            for j in 0..32u8 {
                u[usize::from(j)] = i.wrapping_mul(97).wrapping_add(j.wrapping_mul(31)) ^ 0x3c;
                k[usize::from(j)] = i.wrapping_mul(13).wrapping_add(j.wrapping_mul(7)) ^ 0xa5;
            }
            k[0] &= 248;
            k[31] &= 127;
            k[31] |= 64;
            let point = MontgomeryPoint(u);
            via_edwards += usize::from(point.to_edwards(0).is_some());
            assert_eq!(*x25519(&k, &u), point.mul_clamped(k).0, "u = {u:02x?}");
        }
        // Roughly half of all u are on the curve, half on the twist: both
        // paths were taken.
        assert!(
            (40..160).contains(&via_edwards),
            "{via_edwards} of 200 on the curve"
        );
    }

    #[test]
    fn low_order_points_and_other_modes_are_refused() {
        let (sk, pk) = X25519Kem::derive_keypair(&[7; 32]);
        // The all-zero point gives an all-zero shared secret.
        let zero = PublicKey([0; 32]);
        assert!(X25519Kem::decap(&sk, None, &zero).is_err());
        assert!(X25519Kem::encap_with_rng(&zero, None, &mut Fixed([1; 32])).is_err());
        assert!(X25519Kem::decap(&sk, Some(&pk), &pk).is_err());
        assert!(X25519Kem::encap_with_rng(&pk, Some((&sk, &pk)), &mut Fixed([1; 32])).is_err());
        assert!(PublicKey::from_bytes(&[0; 31]).is_err());
        assert!(PrivateKey::from_bytes(&[0; 33]).is_err());
    }
}
