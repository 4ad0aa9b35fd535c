//! Property tests: seal/open round trip for arbitrary bodies, every single-bit
//! flip of an envelope rejected, and the fuzz entry point on arbitrary and
//! mutated input (so stable CI exercises what `cargo fuzz` does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsp_federation::keys::EncryptionKey;
use gsp_federation::*;
use proptest::prelude::*;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

struct Fixture {
    signer: SigningKey,
    ours: Vec<RecipientKey>,
    directory: HashMap<PartyCode, Vec<SenderKey>>,
}

fn fixture() -> Fixture {
    let signer = SigningKey::from_seed(&[11; 32]).unwrap();
    let mut directory = HashMap::new();
    directory.insert(
        PartyCode::parse("BRA").unwrap(),
        vec![SenderKey {
            key: signer.verifying_key(),
            validity: Validity::ALWAYS,
        }],
    );
    Fixture {
        signer,
        ours: vec![RecipientKey {
            key: EncryptionKey::from_bytes(&[12; 32]).unwrap(),
            validity: Validity::ALWAYS,
        }],
        directory,
    }
}

fn draft(created_offset: u64) -> MessageDraft {
    MessageDraft::new(
        PartyCode::parse("BRA").unwrap(),
        PartyCode::parse("EU").unwrap(),
        Uuid::from_u128(3),
        "application/octet-stream",
        UnixMillis(NOW.0 - created_offset),
        Duration::from_secs(3600),
    )
}

fn try_open(f: &Fixture, env: &[u8]) -> Result<OpenedMessage, OpenError> {
    let seen = InMemorySeenIds::new();
    let ctx = OpenContext {
        us: PartyCode::parse("EU").unwrap(),
        our_keys: &f.ours,
        sender_keys: &f.directory,
        seen: &seen,
        now: NOW,
        skew: Duration::from_secs(300),
        max_envelope: MAX_ENVELOPE,
    };
    open(env, &ctx)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn seal_open_round_trip(body in proptest::collection::vec(any::<u8>(), 0..8192), offset in 0u64..3_000_000) {
        let f = fixture();
        let d = draft(offset);
        let env = seal(&d, &body, &f.signer, &f.ours[0].key.public_key()).unwrap();
        let m = try_open(&f, &env).unwrap();
        prop_assert_eq!(m.body(), &body[..]);
        prop_assert_eq!(m.header.routing.message_id, d.message_id);
        prop_assert_eq!(m.header.body_len, body.len() as u64);
    }

    #[test]
    fn any_single_bit_flip_is_rejected(body in proptest::collection::vec(any::<u8>(), 0..512), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let f = fixture();
        let env = seal(&draft(0), &body, &f.signer, &f.ours[0].key.public_key()).unwrap();
        let mut t = env.clone();
        let i = pos.index(t.len());
        t[i] ^= 1 << bit;
        prop_assert!(try_open(&f, &t).is_err(), "flip of bit {} of byte {} accepted", bit, i);
    }

    #[test]
    fn fuzz_entry_point_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        gsp_federation::fuzzing::open_any(&data);
    }

    #[test]
    fn fuzz_entry_point_on_mutated_vectors(which in 0usize..20, edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8), cut in any::<prop::sample::Index>()) {
        let vectors = vector_envelopes();
        let mut env = vectors[which % vectors.len()].clone();
        for (i, b) in edits {
            let n = env.len();
            env[i.index(n)] = b;
        }
        let keep = cut.index(env.len() + 1);
        env.truncate(keep.max(env.len() / 2));
        gsp_federation::fuzzing::open_any(&env);
    }
}

fn vector_envelopes() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        // Envelope vectors only: vectors/directory/ holds the directory's.
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        if let Some(e) = v["envelope"].as_str() {
            out.push(hex::decode(e).unwrap());
        }
    }
    out.sort();
    out
}

#[test]
fn every_bit_of_one_envelope_flipped_is_rejected() {
    let f = fixture();
    let env = seal(
        &draft(0),
        b"exhaustive",
        &f.signer,
        &f.ours[0].key.public_key(),
    )
    .unwrap();
    try_open(&f, &env).unwrap();
    for i in 0..env.len() {
        for bit in 0..8 {
            let mut t = env.clone();
            t[i] ^= 1 << bit;
            assert!(
                try_open(&f, &t).is_err(),
                "flip of bit {bit} of byte {i} accepted"
            );
        }
    }
}

#[test]
fn the_vectors_ok_envelopes_open_through_the_fuzz_fixture() {
    // The fuzz fixture uses the vectors' keys, so the seed corpus reaches the deep paths.
    let accepted = vector_envelopes()
        .iter()
        .filter(|e| gsp_federation::fuzzing::open_any(e))
        .count();
    assert!(accepted >= 3, "only {accepted} vector envelopes accepted"); // 2 ok + the replayed one (fresh store)
}
