//! Seal/open behaviour through the public API: the happy path and each
//! rejection, checked by error code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsp_federation::keys::EncryptionKey;
use gsp_federation::*;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

struct World {
    fra_sign: SigningKey,
    ken_enc: Vec<RecipientKey>,
    directory: HashMap<PartyCode, Vec<SenderKey>>,
    seen: InMemorySeenIds,
}

fn fra() -> PartyCode {
    PartyCode::parse("FRA").unwrap()
}
fn ken() -> PartyCode {
    PartyCode::parse("KEN").unwrap()
}

fn world() -> World {
    let fra_sign = SigningKey::from_seed(&[1; 32]).unwrap();
    let ken_enc = vec![RecipientKey {
        key: EncryptionKey::from_bytes(&[2; 32]).unwrap(),
        validity: Validity::ALWAYS,
    }];
    let mut directory = HashMap::new();
    directory.insert(
        fra(),
        vec![SenderKey {
            key: fra_sign.verifying_key(),
            validity: Validity::ALWAYS,
        }],
    );
    World {
        fra_sign,
        ken_enc,
        directory,
        seen: InMemorySeenIds::new(),
    }
}

impl World {
    fn ctx(&self) -> OpenContext<'_> {
        OpenContext {
            us: ken(),
            our_keys: &self.ken_enc,
            sender_keys: &self.directory,
            seen: &self.seen,
            now: NOW,
            skew: Duration::from_secs(300),
            max_envelope: MAX_ENVELOPE,
        }
    }
    fn draft(&self) -> MessageDraft {
        MessageDraft::new(
            fra(),
            ken(),
            Uuid::from_u128(99),
            "application/octet-stream",
            NOW,
            Duration::from_secs(86_400),
        )
    }
    fn seal(&self, draft: &MessageDraft, body: &[u8]) -> Vec<u8> {
        seal(
            draft,
            body,
            &self.fra_sign,
            &self.ken_enc[0].key.public_key(),
        )
        .unwrap()
    }
}

fn code(r: Result<OpenedMessage, OpenError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn round_trip() {
    let w = world();
    let d = w.draft();
    let env = w.seal(&d, b"hello Kenya");
    let m = open(&env, &w.ctx()).unwrap();
    assert_eq!(m.body(), b"hello Kenya");
    assert_eq!(m.header.routing.message_id, d.message_id);
    assert_eq!(m.header.case_id, d.case_id);
    assert_eq!(m.into_body(), b"hello Kenya".to_vec());
}

#[test]
fn empty_body_round_trips() {
    let w = world();
    let env = w.seal(&w.draft(), b"");
    assert_eq!(open(&env, &w.ctx()).unwrap().body(), b"");
}

#[test]
fn second_delivery_is_replayed() {
    let w = world();
    let env = w.seal(&w.draft(), b"x");
    assert_eq!(code(open(&env, &w.ctx())), "ok");
    assert_eq!(code(open(&env, &w.ctx())), "replayed");
}

#[test]
fn wrong_recipient() {
    let w = world();
    let mut d = w.draft();
    d.to = PartyCode::parse("BRA").unwrap();
    let env = w.seal(&d, b"x");
    assert_eq!(code(open(&env, &w.ctx())), "wrong_recipient");
}

#[test]
fn sealed_to_a_key_we_do_not_hold() {
    let w = world();
    let other = EncryptionKey::from_bytes(&[3; 32]).unwrap().public_key();
    let env = seal(&w.draft(), b"x", &w.fra_sign, &other).unwrap();
    assert_eq!(code(open(&env, &w.ctx())), "unknown_recipient_key");
}

#[test]
fn freshness() {
    let w = world();
    let mut d = w.draft();
    d.created = UnixMillis(NOW.0 - 2 * 86_400_000);
    d.expires = UnixMillis(NOW.0 - 86_400_000);
    assert_eq!(code(open(&w.seal(&d, b"x"), &w.ctx())), "expired");
    let mut d = w.draft();
    d.created = UnixMillis(NOW.0 + 301_000);
    d.expires = UnixMillis(NOW.0 + 86_400_000);
    assert_eq!(code(open(&w.seal(&d, b"x"), &w.ctx())), "not_yet_valid");
    // Inside the skew both ways is fine.
    let mut d = w.draft();
    d.created = UnixMillis(NOW.0 + 299_000);
    assert_eq!(code(open(&w.seal(&d, b"x"), &w.ctx())), "ok");
    let mut d = w.draft();
    d.created = UnixMillis(NOW.0 - 86_400_000);
    d.expires = UnixMillis(NOW.0 - 299_000);
    assert_eq!(code(open(&w.seal(&d, b"x"), &w.ctx())), "ok");
}

#[test]
fn unknown_and_expired_signing_keys() {
    let mut w = world();
    let stranger = SigningKey::from_seed(&[4; 32]).unwrap();
    let env = seal(&w.draft(), b"x", &stranger, &w.ken_enc[0].key.public_key()).unwrap();
    assert_eq!(code(open(&env, &w.ctx())), "unknown_signing_key");

    w.directory.get_mut(&fra()).unwrap()[0].validity = Validity {
        not_before: UnixMillis(0),
        not_after: UnixMillis(NOW.0 - 3_600_000),
    };
    let env = w.seal(&w.draft(), b"x");
    assert_eq!(code(open(&env, &w.ctx())), "signing_key_not_valid");
}

#[test]
fn overlapping_keys_both_open() {
    let mut w = world();
    let new_sign = SigningKey::from_seed(&[5; 32]).unwrap();
    w.directory.get_mut(&fra()).unwrap().push(SenderKey {
        key: new_sign.verifying_key(),
        validity: Validity::ALWAYS,
    });
    let new_enc = EncryptionKey::from_bytes(&[6; 32]).unwrap();
    let new_pub = new_enc.public_key();
    w.ken_enc.push(RecipientKey {
        key: new_enc,
        validity: Validity::ALWAYS,
    });
    let old_pub = w.ken_enc[0].key.public_key();
    for (signer, to) in [
        (&w.fra_sign, old_pub),
        (&new_sign, new_pub),
        (&new_sign, old_pub),
    ] {
        let env = seal(&w.draft(), b"x", signer, &to).unwrap();
        assert_eq!(code(open(&env, &w.ctx())), "ok");
    }
}

#[test]
fn size_limit_and_version() {
    let w = world();
    let env = w.seal(&w.draft(), &[0u8; 2000]);
    let mut ctx = w.ctx();
    ctx.max_envelope = 1024;
    assert_eq!(code(open(&env, &ctx)), "too_large");
    let mut v2 = env.clone();
    v2[5] = 2;
    assert_eq!(code(open(&v2, &w.ctx())), "unknown_version");
    let mut bad_magic = env.clone();
    bad_magic[0] = b'X';
    assert_eq!(code(open(&bad_magic, &w.ctx())), "malformed_envelope");
    assert_eq!(code(open(&[], &w.ctx())), "malformed_envelope");
    let mut trailing = env.clone();
    trailing.push(0);
    assert_eq!(code(open(&trailing, &w.ctx())), "malformed_envelope");
}

#[test]
fn tampering_is_caught() {
    let w = world();
    let env = w.seal(&w.draft(), b"some body");
    // Header: change `created` by one millisecond (offset 8 + 16 + 4 + 4 + 8 + 7).
    let mut t = env.clone();
    t[8 + 16 + 4 + 4 + 8 + 7] ^= 1;
    assert_eq!(code(open(&t, &w.ctx())), "decrypt_failed");
    // Ciphertext: last body byte before the tag.
    let mut t = env.clone();
    let n = t.len();
    t[n - 17] ^= 0x80;
    assert_eq!(code(open(&t, &w.ctx())), "decrypt_failed");
}

#[test]
fn seal_refuses_bad_drafts() {
    let w = world();
    let pk = w.ken_enc[0].key.public_key();
    let mut d = w.draft();
    d.content_type = String::new();
    assert!(seal(&d, b"", &w.fra_sign, &pk).is_err());
    let mut d = w.draft();
    d.expires = d.created;
    assert!(seal(&d, b"", &w.fra_sign, &pk).is_err());
    let mut d = w.draft();
    d.message_id = Uuid::from_u128(1);
    assert!(seal(&d, b"", &w.fra_sign, &pk).is_err());
    let mut d = w.draft();
    d.template = Some(TemplateRef {
        name: "Bad Name".into(),
        version: 1,
        part: Part::Request,
    });
    assert!(seal(&d, b"", &w.fra_sign, &pk).is_err());
}
