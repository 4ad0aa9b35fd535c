//! Envelope seal/open throughput against the raw primitives, in the same run.
//!
//! `cargo bench -p gsp-federation --bench envelope`. For each body size
//! (1 KiB, 64 KiB, 16 MiB) it measures:
//! - `envelope_seal` / `envelope_open`: the crate's `seal` and `open`;
//! - `raw_seal` / `raw_open`: what a naive sign-then-encrypt costs with the
//!   same primitives called directly: ring Ed25519 sign (verify) over the
//!   body plus hpke single-shot seal (open) of the body, AES-256-GCM;
//! - the components alone: `ring_sign`, `ring_verify`, `hpke_seal_aes256gcm`,
//!   `hpke_open_aes256gcm`, `hpke_seal_chacha20poly1305` (to document the
//!   AEAD choice) and `sha256` (the body digest the envelope signs).
//!
//! BENCHMARKS.md reports the figures and the envelope/raw ratios.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gsp_federation::keys::{EncryptionKey, HpkeKem};
use gsp_federation::*;
use hpke::{Deserializable, OpModeR, OpModeS};
use ring::signature::{self, Ed25519KeyPair};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;
use uuid::Uuid;

/// A replay store that never remembers, so one envelope can be opened repeatedly.
struct AlwaysNew;
impl SeenIds for AlwaysNew {
    fn first_sighting(&self, _: PartyCode, _: Uuid, _: UnixMillis) -> Result<bool, String> {
        Ok(true)
    }
}

const SIZES: [(usize, &str); 3] = [
    (1024, "1KiB"),
    (64 * 1024, "64KiB"),
    (16 * 1024 * 1024, "16MiB"),
];

fn bench(c: &mut Criterion) {
    let now = UnixMillis(1_800_000_000_000);
    let fra = PartyCode::parse("FRA").unwrap();
    let ken = PartyCode::parse("KEN").unwrap();
    let signer = SigningKey::from_seed(&[1; 32]).unwrap();
    let ring_pair = Ed25519KeyPair::from_seed_unchecked(&[1; 32]).unwrap();
    let enc_key = EncryptionKey::from_bytes(&[2; 32]).unwrap();
    let pk = enc_key.public_key();
    let hpke_pk = <HpkeKem as hpke::Kem>::PublicKey::from_bytes(&pk.0).unwrap();
    let hpke_sk = <HpkeKem as hpke::Kem>::PrivateKey::from_bytes(&enc_key.to_bytes()[..]).unwrap();
    let ours = vec![RecipientKey {
        key: enc_key,
        validity: Validity::ALWAYS,
    }];
    let mut directory = HashMap::new();
    directory.insert(
        fra,
        vec![SenderKey {
            key: signer.verifying_key(),
            validity: Validity::ALWAYS,
        }],
    );
    let ctx = OpenContext {
        us: ken,
        our_keys: &ours,
        sender_keys: &directory,
        seen: &AlwaysNew,
        now,
        skew: Duration::from_secs(300),
        max_envelope: MAX_ENVELOPE,
    };
    let draft = MessageDraft::new(
        fra,
        ken,
        Uuid::from_u128(1),
        "application/octet-stream",
        now,
        Duration::from_secs(3600),
    );
    let aad = [0u8; 56];
    let info = b"GSP-FED-1 envelope hpke\0";

    for (size, label) in SIZES {
        let body: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let mut group = c.benchmark_group(label);
        group.throughput(Throughput::Bytes(size as u64));
        if size >= 1 << 20 {
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(4))
                .warm_up_time(Duration::from_secs(1));
        } else {
            group
                .measurement_time(Duration::from_secs(3))
                .warm_up_time(Duration::from_secs(1));
        }

        group.bench_function(BenchmarkId::new("envelope_seal", label), |b| {
            b.iter(|| black_box(seal(&draft, black_box(&body), &signer, &pk).unwrap()))
        });
        let envelope = seal(&draft, &body, &signer, &pk).unwrap();
        group.bench_function(BenchmarkId::new("envelope_open", label), |b| {
            b.iter(|| black_box(open(black_box(&envelope), &ctx).unwrap()))
        });

        group.bench_function(BenchmarkId::new("raw_seal", label), |b| {
            b.iter(|| {
                let sig = ring_pair.sign(black_box(&body));
                let ct = hpke::single_shot_seal::<
                    hpke::aead::AesGcm256,
                    hpke::kdf::HkdfSha256,
                    HpkeKem,
                >(&OpModeS::Base, &hpke_pk, info, &body, &aad)
                .unwrap();
                black_box((sig, ct))
            })
        });
        let sig = ring_pair.sign(&body);
        let (encapped, ct) = hpke::single_shot_seal::<
            hpke::aead::AesGcm256,
            hpke::kdf::HkdfSha256,
            HpkeKem,
        >(&OpModeS::Base, &hpke_pk, info, &body, &aad)
        .unwrap();
        let public =
            signature::UnparsedPublicKey::new(&signature::ED25519, signer.verifying_key().0);
        group.bench_function(BenchmarkId::new("raw_open", label), |b| {
            b.iter(|| {
                let pt = hpke::single_shot_open::<
                    hpke::aead::AesGcm256,
                    hpke::kdf::HkdfSha256,
                    HpkeKem,
                >(
                    &OpModeR::Base,
                    &hpke_sk,
                    &encapped,
                    info,
                    black_box(&ct),
                    &aad,
                )
                .unwrap();
                public.verify(&pt, sig.as_ref()).unwrap();
                black_box(pt)
            })
        });

        group.bench_function(BenchmarkId::new("ring_sign", label), |b| {
            b.iter(|| black_box(ring_pair.sign(black_box(&body))))
        });
        group.bench_function(BenchmarkId::new("ring_verify", label), |b| {
            b.iter(|| public.verify(black_box(&body), sig.as_ref()).unwrap())
        });
        group.bench_function(BenchmarkId::new("hpke_seal_aes256gcm", label), |b| {
            b.iter(|| {
                black_box(
                    hpke::single_shot_seal::<hpke::aead::AesGcm256, hpke::kdf::HkdfSha256, HpkeKem>(
                        &OpModeS::Base, &hpke_pk, info, black_box(&body), &aad,
                    )
                    .unwrap(),
                )
            })
        });
        group.bench_function(BenchmarkId::new("hpke_open_aes256gcm", label), |b| {
            b.iter(|| {
                black_box(
                    hpke::single_shot_open::<hpke::aead::AesGcm256, hpke::kdf::HkdfSha256, HpkeKem>(
                        &OpModeR::Base, &hpke_sk, &encapped, info, black_box(&ct), &aad,
                    )
                    .unwrap(),
                )
            })
        });
        group.bench_function(BenchmarkId::new("hpke_seal_chacha20poly1305", label), |b| {
            b.iter(|| {
                black_box(
                    hpke::single_shot_seal::<
                        hpke::aead::ChaCha20Poly1305,
                        hpke::kdf::HkdfSha256,
                        HpkeKem,
                    >(&OpModeS::Base, &hpke_pk, info, black_box(&body), &aad)
                    .unwrap(),
                )
            })
        });
        group.bench_function(BenchmarkId::new("sha256", label), |b| {
            b.iter(|| black_box(gsp_federation::envelope::sha256(black_box(&body))))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
