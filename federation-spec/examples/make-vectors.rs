//! Writes the test vectors in `federation-spec/vectors/`.
//!
//! Run with `cargo run -p gsp-federation --example make-vectors`. Everything is
//! derived from fixed labels (keys, HPKE ephemeral `ikmE`, message ids), so a
//! second run produces byte-identical files; the `vectors` test checks that
//! the committed files are exactly what this program writes, and that the
//! crate opens each envelope with the expected outcome.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

use gsp_federation::envelope::{DangerTamper, danger_seal_with_ikm};
use gsp_federation::keys::{EncryptionKey, domain};
use gsp_federation::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// The receiver's clock in every vector: 2027-01-15T08:00:00Z.
pub const NOW: u64 = 1_800_000_000_000;
/// Allowed clock skew in every vector: 5 minutes.
pub const SKEW_MS: u64 = 300_000;
const DAY: u64 = 86_400_000;

fn derive(label: &str) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, label.as_bytes())
        .as_ref()
        .try_into()
        .unwrap()
}

fn party(s: &str) -> PartyCode {
    PartyCode::parse(s).unwrap()
}

fn message_id(label: &str, ms: u64) -> Uuid {
    let r = derive(&format!("gsp vector message id {label}"));
    uuid::Builder::from_unix_timestamp_millis(ms, r[..10].try_into().unwrap()).into_uuid()
}

/// Keys used by every vector.
pub struct Keys {
    pub fra_sign: SigningKey,
    pub ken_sign: SigningKey,
    pub ken_enc: EncryptionKey,
    pub bra_enc: EncryptionKey,
    pub stranger_sign: SigningKey,
}

pub fn keys() -> Keys {
    Keys {
        fra_sign: SigningKey::from_seed(&derive("gsp vector key FRA signing")).unwrap(),
        ken_sign: SigningKey::from_seed(&derive("gsp vector key KEN signing")).unwrap(),
        ken_enc: EncryptionKey::from_bytes(&derive("gsp vector key KEN encryption")).unwrap(),
        bra_enc: EncryptionKey::from_bytes(&derive("gsp vector key BRA encryption")).unwrap(),
        stranger_sign: SigningKey::from_seed(&derive("gsp vector key stranger signing")).unwrap(),
    }
}

fn free_text_body() -> Vec<u8> {
    let v = json!({
        "justification": {"articles": ["21.1(e)"], "reason": "Cartons seized in Mombasa carry French tax stamps."},
        "handling": {"purpose_limited": true, "onward_transmission": "prohibited", "classification": "restricted"},
        "priority": "urgent",
        "due_date": "2027-01-29",
        "category": "question",
        "subject": "Cartons seized in Mombasa",
        "text": "Could your customs confirm the exporter of the attached codes?"
    });
    serde_json::to_vec(&v).unwrap()
}

struct Case {
    name: &'static str,
    description: &'static str,
    expect: &'static str,
    draft: MessageDraft,
    body: Vec<u8>,
    signer: &'static str,
    recipient_key: &'static str,
    tamper: DangerTamper<'static>,
    edit: Option<fn(&mut Vec<u8>)>,
    signing_validity: Validity,
    max_envelope: usize,
    seen: bool,
}

fn draft(
    label: &str,
    created: u64,
    expires: u64,
    to: &str,
    template: Option<TemplateRef>,
    ct: &str,
) -> MessageDraft {
    MessageDraft {
        message_id: message_id(label, created),
        from: party("FRA"),
        to: party(to),
        created: UnixMillis(created),
        expires: UnixMillis(expires),
        case_id: message_id(&format!("{label} case"), created),
        template,
        content_type: ct.into(),
    }
}

fn free_text() -> Option<TemplateRef> {
    Some(TemplateRef {
        name: "free-text".into(),
        version: 1,
        part: Part::Request,
    })
}

fn cases() -> Vec<Case> {
    let created = NOW - 60_000;
    let expires = created + 7 * DAY;
    let base = |name: &'static str, description: &'static str, expect: &'static str| Case {
        name,
        description,
        expect,
        draft: draft(
            name,
            created,
            expires,
            "KEN",
            None,
            "application/octet-stream",
        ),
        body: b"GSP test vector body: 8 bytes of zero follow.\0\0\0\0\0\0\0\0".to_vec(),
        signer: "FRA",
        recipient_key: "KEN",
        tamper: DangerTamper::default(),
        edit: None,
        signing_validity: Validity::ALWAYS,
        max_envelope: MAX_ENVELOPE,
        seen: false,
    };
    let mut v = Vec::new();
    v.push(Case {
        draft: draft(
            "ok-free-text",
            created,
            expires,
            "KEN",
            free_text(),
            "application/json",
        ),
        body: free_text_body(),
        ..base(
            "ok-free-text",
            "A free-text request from FRA to KEN; the normal case.",
            "ok",
        )
    });
    v.push(base(
        "ok-binary",
        "An attachment-style message: no template, application/octet-stream.",
        "ok",
    ));
    v.push(Case {
        max_envelope: 256,
        ..base(
            "reject-too-large",
            "The receiver's limit is 256 bytes; the envelope is longer.",
            "too_large",
        )
    });
    v.push(Case {
        edit: Some(|e| {
            e.pop();
        }),
        ..base(
            "reject-truncated",
            "The last byte of a valid envelope is missing, so `ct_len` does not match.",
            "malformed_envelope",
        )
    });
    v.push(Case {
        edit: Some(|e| e[4..6].copy_from_slice(&2u16.to_be_bytes())),
        ..base(
            "reject-unknown-version",
            "A valid envelope with its version field changed to 2.",
            "unknown_version",
        )
    });
    v.push(Case {
        // `to` is at offset 8 + 16 (id) + 4 (str8 "FRA") + 1 (length of `to`).
        edit: Some(|e| e[29..32].copy_from_slice(b"KEX")),
        ..base(
            "reject-malformed-header",
            "The routing header's `to` is changed to KEX, which is not a Party code.",
            "malformed_header",
        )
    });
    v.push(Case {
        draft: draft(
            "reject-wrong-recipient",
            created,
            expires,
            "BRA",
            None,
            "application/octet-stream",
        ),
        recipient_key: "BRA",
        ..base(
            "reject-wrong-recipient",
            "A valid envelope from FRA to BRA, delivered to KEN.",
            "wrong_recipient",
        )
    });
    v.push(Case {
        recipient_key: "BRA",
        ..base(
            "reject-unknown-recipient-key",
            "Addressed to KEN but sealed to an encryption key KEN does not hold.",
            "unknown_recipient_key",
        )
    });
    v.push(Case {
        draft: draft(
            "reject-not-yet-valid",
            NOW + 600_000,
            NOW + DAY,
            "KEN",
            None,
            "application/octet-stream",
        ),
        ..base(
            "reject-not-yet-valid",
            "`created` is 10 minutes after the receiver's clock (skew allowance 5 minutes).",
            "not_yet_valid",
        )
    });
    v.push(Case {
        draft: draft(
            "reject-expired",
            NOW - 2 * DAY,
            NOW - DAY,
            "KEN",
            None,
            "application/octet-stream",
        ),
        ..base(
            "reject-expired",
            "`expires` was one day before the receiver's clock.",
            "expired",
        )
    });
    v.push(Case {
        // `created` is at offset 8 + 16 + 4 + 4 + 8; flip the low bit of its last byte.
        edit: Some(|e| e[47] ^= 0x01),
        ..base("reject-tampered-header", "One bit of `created` in the routing header flipped; the header is the HPKE associated data.", "decrypt_failed")
    });
    v.push(Case {
        edit: Some(|e| {
            let n = e.len();
            e[n - 20] ^= 0x01;
        }),
        ..base(
            "reject-tampered-ciphertext",
            "One bit of the ciphertext flipped.",
            "decrypt_failed",
        )
    });
    v.push(Case {
        tamper: DangerTamper {
            after_signing: Some(&|h, _| h.content_type = String::new()),
            ..Default::default()
        },
        ..base(
            "reject-malformed-payload",
            "Decrypts, but the signed header has an empty content type.",
            "malformed_payload",
        )
    });
    v.push(Case {
        signer: "stranger",
        ..base(
            "reject-unknown-signing-key",
            "Signed by a key FRA does not publish.",
            "unknown_signing_key",
        )
    });
    v.push(Case {
        signing_validity: Validity {
            not_before: UnixMillis(0),
            not_after: UnixMillis(NOW - DAY),
        },
        ..base(
            "reject-signing-key-not-valid",
            "Signed by FRA's key whose validity ended a day before the receiver's clock.",
            "signing_key_not_valid",
        )
    });
    v.push(Case {
        tamper: DangerTamper {
            after_signing: Some(&|_, s| s[0] ^= 0x01),
            ..Default::default()
        },
        ..base(
            "reject-bad-signature",
            "One bit of the Ed25519 signature flipped before encryption.",
            "bad_signature",
        )
    });
    v.push(Case {
        tamper: DangerTamper {
            before_signing: Some(&|h| h.body_sha256[0] ^= 0x01),
            ..Default::default()
        },
        ..base(
            "reject-body-not-signed",
            "The signature is valid but the signed body digest does not match the body.",
            "bad_signature",
        )
    });
    v.push(Case {
        tamper: DangerTamper {
            before_signing: Some(&|h| h.routing.created.0 -= 1),
            ..Default::default()
        },
        ..base(
            "reject-header-mismatch",
            "The signed header's `created` is one millisecond before the routing header's.",
            "header_mismatch",
        )
    });
    v.push(Case {
        seen: true,
        ..base(
            "reject-replayed",
            "The receiver has already accepted this message id from FRA.",
            "replayed",
        )
    });
    v.push(Case {
        draft: draft(
            "reject-invalid-body",
            created,
            expires,
            "KEN",
            free_text(),
            "application/json",
        ),
        body: br#"{"category":"question"}"#.to_vec(),
        tamper: DangerTamper {
            skip_body_validation: true,
            ..Default::default()
        },
        ..base(
            "reject-invalid-body",
            "A free-text request missing its required fields.",
            "invalid_body",
        )
    });
    v
}

fn validity_json(v: &Validity) -> Value {
    json!({"not_before": v.not_before.0, "not_after": v.not_after.0})
}

/// Every vector file as (file name, contents).
pub fn generate() -> Vec<(String, String)> {
    let k = keys();
    let mut files = Vec::new();
    let mut index = Vec::new();
    for case in cases() {
        let signer = match case.signer {
            "FRA" => &k.fra_sign,
            _ => &k.stranger_sign,
        };
        let recipient = match case.recipient_key {
            "KEN" => k.ken_enc.public_key(),
            _ => k.bra_enc.public_key(),
        };
        let ikm_e = derive(&format!("gsp vector ikmE {}", case.name));
        let mut envelope = danger_seal_with_ikm(
            &case.draft,
            &case.body,
            signer,
            &recipient,
            &ikm_e,
            &case.tamper,
        )
        .unwrap();
        let intermediate = intermediate_values(&envelope, &k.ken_enc);
        if let Some(edit) = case.edit {
            edit(&mut envelope);
        }

        // Open it as the receiver would.
        let our_keys = [RecipientKey {
            key: EncryptionKey::from_bytes(k.ken_enc.to_bytes().as_slice()).unwrap(),
            validity: Validity::ALWAYS,
        }];
        let mut directory = HashMap::new();
        directory.insert(
            party("FRA"),
            vec![SenderKey {
                key: k.fra_sign.verifying_key(),
                validity: case.signing_validity,
            }],
        );
        let seen = InMemorySeenIds::new();
        if case.seen {
            seen.first_sighting(party("FRA"), case.draft.message_id, UnixMillis(u64::MAX))
                .unwrap();
        }
        let ctx = OpenContext {
            us: party("KEN"),
            our_keys: &our_keys,
            sender_keys: &directory,
            seen: &seen,
            now: UnixMillis(NOW),
            skew: Duration::from_millis(SKEW_MS),
            max_envelope: case.max_envelope,
        };
        let outcome = open(&envelope, &ctx);
        let code = match &outcome {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        assert_eq!(
            code,
            case.expect,
            "vector {} opened as {:?}",
            case.name,
            outcome.err()
        );

        let routing_id = gsp_federation::parse(&envelope, MAX_ENVELOPE)
            .map(|p| p.routing.message_id)
            .unwrap_or(Uuid::nil());
        let verdict = if code == "ok" {
            Verdict::Accepted
        } else {
            Verdict::Rejected(code.into())
        };
        let receipt = Receipt::sign(
            envelope_digest(&envelope),
            routing_id,
            party("KEN"),
            party("FRA"),
            UnixMillis(NOW),
            verdict,
            &k.ken_sign,
        );

        let template = case
            .draft
            .template
            .as_ref()
            .map(|t| json!({"name": t.name, "version": t.version, "part": t.part.as_str()}));
        let body_text = std::str::from_utf8(&case.body)
            .ok()
            .filter(|s| !s.contains('\0'));
        let vector = json!({
            "name": case.name,
            "description": case.description,
            "protocol": "GSP Federation Protocol 1.0",
            "expect": case.expect,
            "receiver": {
                "party": "KEN",
                "now": NOW,
                "skew_ms": SKEW_MS,
                "max_envelope": case.max_envelope,
                "encryption_private_key": hex::encode(k.ken_enc.to_bytes().as_slice()),
                "encryption_public_key": hex::encode(k.ken_enc.public_key().0),
                "encryption_key_id": k.ken_enc.key_id().to_hex(),
                "receipt_signing_seed": hex::encode(k.ken_sign.seed()),
                "receipt_signing_public_key": hex::encode(k.ken_sign.verifying_key().0),
                "already_seen": if case.seen { json!([{"from": "FRA", "message_id": case.draft.message_id.to_string()}]) } else { json!([]) },
            },
            "sender": {
                "party": "FRA",
                "published_signing_keys": [{
                    "public_key": hex::encode(k.fra_sign.verifying_key().0),
                    "key_id": k.fra_sign.key_id().to_hex(),
                    "validity": validity_json(&case.signing_validity),
                }],
                "signing_seed": hex::encode(signer.seed()),
                "signing_public_key": hex::encode(signer.verifying_key().0),
                "recipient_public_key": hex::encode(recipient.0),
                "ikm_e": hex::encode(ikm_e),
            },
            "message": {
                "message_id": case.draft.message_id.to_string(),
                "from": case.draft.from.as_str(),
                "to": case.draft.to.as_str(),
                "created": case.draft.created.0,
                "expires": case.draft.expires.0,
                "case_id": case.draft.case_id.to_string(),
                "template": template,
                "content_type": case.draft.content_type,
                "body_hex": hex::encode(&case.body),
                "body_utf8": body_text,
            },
            "intermediate": intermediate,
            "envelope": hex::encode(&envelope),
            "receipt": {
                "received": NOW,
                "verdict": code,
                "bytes": hex::encode(receipt.to_bytes()),
            },
        });
        index.push(json!({"file": format!("{}.json", case.name), "expect": case.expect, "description": case.description}));
        files.push((
            format!("{}.json", case.name),
            serde_json::to_string_pretty(&vector).unwrap() + "\n",
        ));
    }
    let index = json!({
        "description": "GSP Federation Protocol 1.0 test vectors. Each file is self-contained: keys, message, intermediate values of the sealing (before any deliberate corruption), the envelope as delivered, the expected outcome of opening it and the receiver's receipt. See SPEC.md section 11.",
        "vectors": index,
    });
    files.insert(
        0,
        (
            "index.json".into(),
            serde_json::to_string_pretty(&index).unwrap() + "\n",
        ),
    );
    files
}

/// Values an implementer can compare step by step, computed from a
/// well-formed envelope (before any `edit`).
fn intermediate_values(envelope: &[u8], ken: &EncryptionKey) -> Value {
    let header_len = usize::from(u16::from_be_bytes([envelope[6], envelope[7]]));
    let aad = &envelope[..8 + header_len];
    let enc = &envelope[8 + header_len..8 + header_len + 32];
    // Decrypt with the raw HPKE API to show the plaintext.
    use hpke::{Deserializable, OpModeR};
    let sk = <hpke::kem::X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(
        ken.to_bytes().as_slice(),
    )
    .unwrap();
    let encapped =
        <hpke::kem::X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(enc).unwrap();
    let ct = &envelope[8 + header_len + 36..];
    let plaintext = hpke::single_shot_open::<
        hpke::aead::AesGcm256,
        hpke::kdf::HkdfSha256,
        hpke::kem::X25519HkdfSha256,
    >(&OpModeR::Base, &sk, &encapped, domain::HPKE_INFO, ct, aad);
    let Ok(plaintext) = plaintext else {
        // Sealed to a key the receiver does not hold: no plaintext to show.
        return json!({"routing_header": hex::encode(&aad[8..]), "aad": hex::encode(aad), "enc": hex::encode(enc)});
    };
    let signed_len = usize::from(u16::from_be_bytes([plaintext[64], plaintext[65]]));
    let signed = &plaintext[66..66 + signed_len];
    let mut sig_input = domain::MESSAGE_SIGNATURE.to_vec();
    sig_input.extend_from_slice(signed);
    json!({
        "routing_header": hex::encode(&aad[8..]),
        "aad": hex::encode(aad),
        "hpke_info": hex::encode(domain::HPKE_INFO),
        "enc": hex::encode(enc),
        "signed_header": hex::encode(signed),
        "signature_input": hex::encode(&sig_input),
        "signature": hex::encode(&plaintext[..64]),
        "plaintext": hex::encode(&plaintext),
    })
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, contents) in generate() {
        std::fs::write(dir.join(&name), contents).unwrap();
        println!("wrote vectors/{name}");
    }
}
