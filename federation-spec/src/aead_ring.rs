//! ring's AES-256-GCM in HPKE's AEAD slot.
//!
//! The `hpke` crate does the RFC 9180 work (KEM, key schedule, nonce
//! sequence); it is generic over the AEAD implementation. Its own AES-256-GCM
//! (RustCrypto `aes-gcm`) runs at about a sixth of the speed of ring's on the
//! x86-64 servers nodes run on, and for 16 MiB bodies the AEAD is most of the
//! cost of an envelope. This module plugs ring's implementation of the same
//! algorithm (RFC 9180 AEAD id `0x0002`) into that slot. The bytes are
//! identical — the test vectors and the independent Python check prove it —
//! only the speed differs.

use aead::consts::{U12, U16, U32};
use aead::inout::InOutBuf;
use aead::{AeadCore, AeadInOut, Key, KeyInit, KeySizeUser, Nonce, Tag, TagPosition};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, UnboundKey};

/// AES-256-GCM implemented by ring, usable as `hpke`'s AEAD (id `0x0002`).
pub struct RingAes256Gcm;

impl hpke::aead::Aead for RingAes256Gcm {
    type AeadImpl = RingAes256GcmImpl;
    const AEAD_ID: u16 = 0x0002;
}

/// The keyed cipher `hpke` instantiates from the HPKE key schedule.
#[derive(Clone)]
pub struct RingAes256GcmImpl {
    // `None` only if ring refused a 32-byte key, which it never does; then
    // every operation fails rather than panicking.
    key: Option<std::sync::Arc<LessSafeKey>>,
}

impl KeySizeUser for RingAes256GcmImpl {
    type KeySize = U32;
}

impl KeyInit for RingAes256GcmImpl {
    fn new(key: &Key<Self>) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, key.as_slice())
            .ok()
            .map(|k| std::sync::Arc::new(LessSafeKey::new(k)));
        Self { key }
    }
}

impl AeadCore for RingAes256GcmImpl {
    type NonceSize = U12;
    type TagSize = U16;
    const TAG_POSITION: TagPosition = TagPosition::Postfix;
}

fn ring_nonce(nonce: &Nonce<RingAes256GcmImpl>) -> Result<ring::aead::Nonce, aead::Error> {
    ring::aead::Nonce::try_assume_unique_for_key(nonce.as_slice()).map_err(|_| aead::Error)
}

impl AeadInOut for RingAes256GcmImpl {
    fn encrypt_inout_detached(
        &self,
        nonce: &Nonce<Self>,
        associated_data: &[u8],
        buffer: InOutBuf<'_, '_, u8>,
    ) -> aead::Result<Tag<Self>> {
        let key = self.key.as_ref().ok_or(aead::Error)?;
        let data = buffer.into_out_with_copied_in();
        let tag = key
            .seal_in_place_separate_tag(ring_nonce(nonce)?, Aad::from(associated_data), data)
            .map_err(|_| aead::Error)?;
        let mut out = Tag::<Self>::default();
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn decrypt_inout_detached(
        &self,
        nonce: &Nonce<Self>,
        associated_data: &[u8],
        buffer: InOutBuf<'_, '_, u8>,
        tag: &Tag<Self>,
    ) -> aead::Result<()> {
        let key = self.key.as_ref().ok_or(aead::Error)?;
        let tag = ring::aead::Tag::try_from(tag.as_slice()).map_err(|_| aead::Error)?;
        let data = buffer.into_out_with_copied_in();
        key.open_in_place_separate_tag(
            ring_nonce(nonce)?,
            Aad::from(associated_data),
            tag,
            data,
            0..,
        )
        .map(|_| ())
        .map_err(|_| aead::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rustcrypto_aes256gcm() {
        let key = Key::<RingAes256GcmImpl>::from([7u8; 32]);
        let nonce = Nonce::<RingAes256GcmImpl>::from([9u8; 12]);
        let ours = RingAes256GcmImpl::new(&key);
        let theirs = <hpke::aead::AesGcm256 as hpke::aead::Aead>::AeadImpl::new(&key);
        for len in [0usize, 1, 15, 16, 17, 1000, 70_000] {
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut a = pt.clone();
            let mut b = pt.clone();
            let ta = ours
                .encrypt_inout_detached(&nonce, b"aad", InOutBuf::from(&mut a[..]))
                .unwrap();
            let tb = theirs
                .encrypt_inout_detached(&nonce, b"aad", InOutBuf::from(&mut b[..]))
                .unwrap();
            assert_eq!(a, b);
            assert_eq!(ta.as_slice(), tb.as_slice());
            let mut out = vec![0u8; len];
            ours.decrypt_inout_detached(&nonce, b"aad", InOutBuf::new(&a, &mut out).unwrap(), &ta)
                .unwrap();
            assert_eq!(out, pt);
            if len > 0 {
                a[0] ^= 1;
                assert!(
                    ours.decrypt_inout_detached(&nonce, b"aad", InOutBuf::from(&mut a[..]), &ta)
                        .is_err()
                );
            }
        }
    }
}
