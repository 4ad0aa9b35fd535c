//! The committed test vectors: each one is opened from its JSON description
//! alone (keys, context, envelope) with the expected outcome, its receipt is
//! reproduced byte for byte, the normal-case envelopes are re-sealed byte for
//! byte from the message and `ikm_e`, and the generator reproduces every file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/make-vectors.rs"]
#[allow(unused_imports)]
mod make_vectors;

use gsp_federation::envelope::{DangerTamper, danger_seal_with_ikm};
use gsp_federation::keys::EncryptionKey;
use gsp_federation::*;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn hex_field(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn load() -> Vec<Value> {
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("index.json")).unwrap()).unwrap();
    index["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            serde_json::from_str(
                &std::fs::read_to_string(dir().join(e["file"].as_str().unwrap())).unwrap(),
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn every_rejection_the_issue_names_has_a_vector() {
    let expects: Vec<String> = load()
        .iter()
        .map(|v| v["expect"].as_str().unwrap().to_owned())
        .collect();
    for code in [
        "ok",
        "bad_signature",
        "wrong_recipient",
        "decrypt_failed",
        "expired",
        "replayed",
        "unknown_version",
        "too_large",
        "malformed_envelope",
        "malformed_header",
        "unknown_recipient_key",
        "not_yet_valid",
        "malformed_payload",
        "unknown_signing_key",
        "signing_key_not_valid",
        "header_mismatch",
        "invalid_body",
    ] {
        assert!(expects.iter().any(|e| e == code), "no vector for {code}");
    }
}

#[test]
fn each_vector_opens_as_expected_and_its_receipt_matches() {
    for v in load() {
        let name = v["name"].as_str().unwrap();
        let r = &v["receiver"];
        let us = PartyCode::parse(r["party"].as_str().unwrap()).unwrap();
        let our_keys = [RecipientKey {
            key: EncryptionKey::from_bytes(&hex_field(&r["encryption_private_key"])).unwrap(),
            validity: Validity::ALWAYS,
        }];
        let s = &v["sender"];
        let from = PartyCode::parse(s["party"].as_str().unwrap()).unwrap();
        let published = s["published_signing_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| SenderKey {
                key: VerifyingKey::from_bytes(&hex_field(&k["public_key"])).unwrap(),
                validity: Validity {
                    not_before: UnixMillis(k["validity"]["not_before"].as_u64().unwrap()),
                    not_after: UnixMillis(k["validity"]["not_after"].as_u64().unwrap()),
                },
            })
            .collect();
        let directory: HashMap<PartyCode, Vec<SenderKey>> =
            [(from, published)].into_iter().collect();
        let seen = InMemorySeenIds::new();
        for s in r["already_seen"].as_array().unwrap() {
            let id = uuid::Uuid::parse_str(s["message_id"].as_str().unwrap()).unwrap();
            seen.first_sighting(
                PartyCode::parse(s["from"].as_str().unwrap()).unwrap(),
                id,
                UnixMillis(u64::MAX),
            )
            .unwrap();
        }
        let now = UnixMillis(r["now"].as_u64().unwrap());
        let ctx = OpenContext {
            us,
            our_keys: &our_keys,
            sender_keys: &directory,
            seen: &seen,
            now,
            skew: Duration::from_millis(r["skew_ms"].as_u64().unwrap()),
            max_envelope: r["max_envelope"].as_u64().unwrap() as usize,
        };
        let envelope = hex_field(&v["envelope"]);
        let outcome = open(&envelope, &ctx);
        let code = match &outcome {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        assert_eq!(
            code,
            v["expect"].as_str().unwrap(),
            "{name}: {:?}",
            outcome.as_ref().err()
        );
        if let Ok(m) = &outcome {
            assert_eq!(m.body(), hex_field(&v["message"]["body_hex"]), "{name}");
            assert_eq!(
                m.header.routing.message_id.to_string(),
                v["message"]["message_id"].as_str().unwrap()
            );
            assert_eq!(
                m.header.case_id.to_string(),
                v["message"]["case_id"].as_str().unwrap()
            );
            assert_eq!(
                m.header.to_bytes(),
                hex_field(&v["intermediate"]["signed_header"]),
                "{name}"
            );
        }

        // The receipt: reproducible (Ed25519 is deterministic) and verifiable.
        let receipt_bytes = hex_field(&v["receipt"]["bytes"]);
        let receipt = Receipt::from_bytes(&receipt_bytes).unwrap();
        let ken_sign = SigningKey::from_seed(&hex_field(&r["receipt_signing_seed"])).unwrap();
        let keys = [SenderKey {
            key: ken_sign.verifying_key(),
            validity: Validity::ALWAYS,
        }];
        receipt
            .verify(&envelope, &keys, now, Duration::ZERO)
            .unwrap();
        let verdict = if code == "ok" {
            Verdict::Accepted
        } else {
            Verdict::Rejected(code.into())
        };
        assert_eq!(receipt.verdict, verdict, "{name}");
        let again = Receipt::sign(
            envelope_digest(&envelope),
            receipt.message_id,
            us,
            from,
            now,
            verdict,
            &ken_sign,
        );
        assert_eq!(
            again.to_bytes(),
            receipt_bytes,
            "{name}: receipt not reproduced"
        );
    }
}

#[test]
fn normal_case_envelopes_reseal_byte_for_byte() {
    for v in load().into_iter().filter(|v| v["expect"] == "ok") {
        let m = &v["message"];
        let template = match &m["template"] {
            Value::Null => None,
            t => Some(TemplateRef {
                name: t["name"].as_str().unwrap().into(),
                version: t["version"].as_u64().unwrap() as u16,
                part: if t["part"] == "request" {
                    Part::Request
                } else {
                    Part::Answer
                },
            }),
        };
        let draft = MessageDraft {
            message_id: uuid::Uuid::parse_str(m["message_id"].as_str().unwrap()).unwrap(),
            from: PartyCode::parse(m["from"].as_str().unwrap()).unwrap(),
            to: PartyCode::parse(m["to"].as_str().unwrap()).unwrap(),
            created: UnixMillis(m["created"].as_u64().unwrap()),
            expires: UnixMillis(m["expires"].as_u64().unwrap()),
            case_id: uuid::Uuid::parse_str(m["case_id"].as_str().unwrap()).unwrap(),
            template,
            content_type: m["content_type"].as_str().unwrap().into(),
        };
        let s = &v["sender"];
        let signer = SigningKey::from_seed(&hex_field(&s["signing_seed"])).unwrap();
        let recipient =
            EncryptionPublicKey::from_bytes(&hex_field(&s["recipient_public_key"])).unwrap();
        let ikm: [u8; 32] = hex_field(&s["ikm_e"]).try_into().unwrap();
        let env = danger_seal_with_ikm(
            &draft,
            &hex_field(&m["body_hex"]),
            &signer,
            &recipient,
            &ikm,
            &DangerTamper::default(),
        )
        .unwrap();
        assert_eq!(
            hex::encode(env),
            v["envelope"].as_str().unwrap(),
            "{}",
            v["name"]
        );
    }
}

#[test]
fn generator_reproduces_the_committed_files() {
    for (name, contents) in make_vectors::generate() {
        let committed = std::fs::read_to_string(dir().join(&name)).unwrap_or_default();
        assert!(
            committed == contents,
            "vectors/{name} differs from what `cargo run -p gsp-federation --example make-vectors` writes"
        );
    }
}
