//! Every template schema against valid and invalid bodies; errors name the
//! JSON pointer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsp_federation::Part;
use gsp_federation::templates::{INDEX_JSON, TemplateError, validate};
use serde_json::{Value, json};

fn common_request() -> Value {
    json!({
        "justification": {"articles": ["8.9"], "reason": "Packs seized at the port of Mombasa carry these codes."},
        "handling": {"purpose_limited": true, "onward_transmission": "prohibited", "classification": "restricted"},
        "priority": "routine",
        "due_date": "2027-01-15"
    })
}

fn common_answer() -> Value {
    json!({
        "in_reply_to": "01900000-0000-7000-8000-000000000001",
        "outcome": "full",
        "handling": {"purpose_limited": true, "onward_transmission": "with-prior-consent", "classification": "confidential"}
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn valid_examples() -> Vec<(&'static str, Part, Value)> {
    vec![
        (
            "uid-verification",
            Part::Request,
            with(
                common_request(),
                json!({"codes": ["FRA0001ABCDEF", "FRA0002ABCDEF"]}),
            ),
        ),
        (
            "uid-verification",
            Part::Request,
            with(
                common_request(),
                json!({
            "codes_attachment": {"name": "codes.txt", "media_type": "text/plain", "size": 40000000,
                "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
            "code_count": 1000000}),
            ),
        ),
        (
            "uid-verification",
            Part::Answer,
            with(
                common_answer(),
                json!({"results": [
            {"code": "FRA0001ABCDEF", "status": "known",
             "manufacture": {"date": "2026-03-02", "location": {"country": "FRA", "locality": "Riom"}},
             "facility": {"id": "FR-FAC-0001", "name": "Usine de Riom"},
             "machine": {"id": "M-17"},
             "production": {"shift": "B", "time": "2026-03-02T14:05:00Z"},
             "intended_market": {"country": "FRA"},
             "product": {"description": "Cigarettes, 20 sticks, king size", "brand": "Example", "gtin": "03012345678901"}},
            {"code": "FRA0002ABCDEF", "status": "unknown"}]}),
            ),
        ),
        (
            "supply-chain-trace",
            Part::Request,
            with(
                common_request(),
                json!({"codes": ["X1"], "wanted": ["first-customer", "shipping"]}),
            ),
        ),
        (
            "supply-chain-trace",
            Part::Answer,
            with(
                common_answer(),
                json!({"results": [{"code": "X1", "status": "known",
            "first_customer": {"party": {"name": "Distribution SA"}, "invoice_number": "F-1"},
            "shipping": [{"from": {"country": "FRA"}, "to": {"country": "KEN"}, "dispatched": "2026-04-01T08:00:00+02:00"}],
            "shipment_route": {"route": ["FRA", "ESP", "KEN"], "shipment_date": "2026-04-01"}}]}),
            ),
        ),
        (
            "seizure",
            Part::Request,
            with(
                common_request(),
                json!({"kind": "notification", "seizure": {
            "date": "2026-05-01", "location": {"country": "KEN", "locality": "Mombasa"}, "authority": "Kenya Revenue Authority",
            "quantities": [{"product": "cigarettes", "unit": "carton", "quantity": 1200}]}}),
            ),
        ),
        (
            "seizure",
            Part::Answer,
            with(common_answer(), json!({"acknowledged": true})),
        ),
        (
            "operator-licence",
            Part::Request,
            with(
                common_request(),
                json!({"operator": {"name": "Tabac Export SARL"}, "wanted": ["licence-status"]}),
            ),
        ),
        (
            "operator-licence",
            Part::Answer,
            with(
                common_answer(),
                json!({"licences": [{"number": "L-7", "status": "valid", "issued": "2020-01-01"}]}),
            ),
        ),
        (
            "free-text",
            Part::Request,
            with(
                common_request(),
                json!({"category": "question", "subject": "Contact point", "text": "Who handles seizures at your customs?"}),
            ),
        ),
        (
            "free-text",
            Part::Answer,
            with(
                common_answer(),
                json!({"text": "The Directorate of Customs, desk 4."}),
            ),
        ),
    ]
}

#[test]
fn valid_bodies_pass() {
    for (name, part, body) in valid_examples() {
        if let Err(e) = validate(name, 1, part, &body) {
            panic!("{name} {part:?}: {e}");
        }
    }
}

fn invalid_at(name: &str, part: Part, body: &Value, pointer: &str) {
    match validate(name, 1, part, body) {
        Err(TemplateError::Invalid { pointer: p, .. }) => assert_eq!(p, pointer, "{name} {part:?}"),
        other => panic!("{name} {part:?}: expected an error at {pointer}, got {other:?}"),
    }
}

#[test]
fn invalid_bodies_fail_with_a_pointer() {
    for (name, part, body) in valid_examples() {
        // An unknown top-level property.
        invalid_at(name, part, &with(body.clone(), json!({"surprise": 1})), "");
        // A common field of the wrong type.
        let key = if part == Part::Request {
            "priority"
        } else {
            "outcome"
        };
        invalid_at(
            name,
            part,
            &with(body.clone(), json!({key: "whenever"})),
            &format!("/{key}"),
        );
        // Handling restrictions must keep the purpose limitation.
        let mut b = body.clone();
        b["handling"]["purpose_limited"] = json!(false);
        invalid_at(name, part, &b, "/handling/purpose_limited");
        // Not an object at all.
        invalid_at(name, part, &json!([]), "");
    }
}

#[test]
fn specific_rules() {
    // No codes at all.
    invalid_at("uid-verification", Part::Request, &common_request(), "");
    // Both inline codes and an attachment.
    let both = with(
        common_request(),
        json!({"codes": ["A"], "codes_attachment": {"name": "c", "media_type": "text/plain", "size": 1, "sha256": "00"}, "code_count": 1}),
    );
    assert!(validate("uid-verification", 1, Part::Request, &both).is_err());
    // A status outside known/unknown/deactivated.
    let bad = with(
        common_answer(),
        json!({"results": [{"code": "A", "status": "maybe"}]}),
    );
    invalid_at("uid-verification", Part::Answer, &bad, "/results/0/status");
    // A declined answer needs a reason.
    let declined = with(
        common_answer(),
        json!({"outcome": "declined", "text": "no"}),
    );
    assert!(validate("free-text", 1, Part::Answer, &declined).is_err());
    let declined = with(
        declined,
        json!({"decline_reason": {"code": "national-law"}}),
    );
    validate("free-text", 1, Part::Answer, &declined).unwrap();
    // A bad date.
    invalid_at(
        "uid-verification",
        Part::Request,
        &with(
            common_request(),
            json!({"codes": ["A"], "due_date": "2027-13-01"}),
        ),
        "/due_date",
    );
    // Code with a space.
    invalid_at(
        "uid-verification",
        Part::Request,
        &with(common_request(), json!({"codes": ["A B"]})),
        "/codes/0",
    );
}

#[test]
fn unknown_template_or_version() {
    assert!(matches!(
        validate("nope", 1, Part::Request, &json!({})),
        Err(TemplateError::Unknown { .. })
    ));
    assert!(matches!(
        validate("free-text", 2, Part::Request, &json!({})),
        Err(TemplateError::Unknown { .. })
    ));
}

#[test]
fn index_lists_every_template_with_its_policy() {
    let index: Value = serde_json::from_str(INDEX_JSON).unwrap();
    let list = index["templates"].as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "uid-verification",
            "supply-chain-trace",
            "seizure",
            "operator-licence",
            "free-text"
        ]
    );
    assert_eq!(list[0]["default_answer_policy"], "automatic");
    assert_eq!(list[1]["default_answer_policy"], "officer-approval");
    for t in list {
        assert!(!t["articles"].as_array().unwrap().is_empty());
        assert!(gsp_federation::templates::is_known(
            t["name"].as_str().unwrap(),
            1
        ));
    }
}

#[test]
fn a_million_codes_validate() {
    let codes: Vec<String> = (0..1_000_000).map(|i| format!("C{i:09}")).collect();
    validate(
        "uid-verification",
        1,
        Part::Request,
        &with(common_request(), json!({"codes": codes})),
    )
    .unwrap();
}

#[test]
fn a_validated_body_seals_once_and_opens_with_the_receivers_checks() {
    use gsp_federation::keys::EncryptionKey;
    use gsp_federation::*;
    use std::collections::HashMap;
    use std::time::Duration;

    let signer = SigningKey::from_seed(&[21; 32]).unwrap();
    let ours = vec![RecipientKey {
        key: EncryptionKey::from_bytes(&[22; 32]).unwrap(),
        validity: Validity::ALWAYS,
    }];
    let senders: HashMap<PartyCode, Vec<SenderKey>> = HashMap::from([(
        PartyCode::parse("KEN").unwrap(),
        vec![SenderKey {
            key: signer.verifying_key(),
            validity: Validity::ALWAYS,
        }],
    )]);
    let now = UnixMillis(1_800_000_000_000);
    let request = TemplateRef {
        name: "free-text".into(),
        version: 1,
        part: Part::Request,
    };
    let body = with(
        common_request(),
        json!({"category": "question", "subject": "Contact point", "text": "Who handles seizures?"}),
    );
    let mut draft = MessageDraft::new(
        PartyCode::parse("KEN").unwrap(),
        PartyCode::parse("PAK").unwrap(),
        uuid::Uuid::now_v7(),
        "application/json",
        now,
        Duration::from_secs(3600),
    );
    draft.template = Some(request.clone());
    let recipient = ours[0].key.public_key();

    // Valid: sealed, and the receiver (which validates again) opens it.
    let validated = ValidatedBody::new(request.clone(), &body).unwrap();
    let envelope = seal_validated(&draft, &validated, &signer, &recipient).unwrap();
    let seen = InMemorySeenIds::new();
    let ctx = OpenContext {
        us: PartyCode::parse("PAK").unwrap(),
        our_keys: &ours,
        sender_keys: &senders,
        seen: &seen,
        now,
        skew: Duration::from_secs(300),
        max_envelope: MAX_ENVELOPE,
    };
    let opened = open(&envelope, &ctx).unwrap();
    assert_eq!(opened.body(), validated.bytes());

    // An invalid body never becomes a ValidatedBody.
    let mut broken = body.clone();
    broken["category"] = json!("gossip");
    assert!(ValidatedBody::new(request.clone(), &broken).is_err());

    // A draft naming another template, or another content type, is refused.
    let mut other = draft.clone();
    other.template = Some(TemplateRef {
        part: Part::Answer,
        ..request.clone()
    });
    assert!(matches!(
        seal_validated(&other, &validated, &signer, &recipient),
        Err(SealError::InvalidDraft(_))
    ));
    let mut text = draft.clone();
    text.content_type = "text/plain".into();
    assert!(matches!(
        seal_validated(&text, &validated, &signer, &recipient),
        Err(SealError::InvalidDraft(_))
    ));
}
