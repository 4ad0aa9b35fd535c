//! Party-to-Party exchange end to end: a real directory and real nodes on
//! loopback (mutual TLS 1.3, sealed envelopes, the durable outbox), on
//! SQLite and PostgreSQL. Every template, each answer policy, attachments,
//! receipts.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsp_node::for_each_backend;
use gsp_tests::federation::{Net, common};
use serde_json::{Value, json};

fn body(mut common: serde_json::Map<String, Value>, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        common.insert(k.clone(), v.clone());
    }
    Value::Object(common)
}

fn messages(case: &Value) -> Vec<Value> {
    case["messages"].as_array().cloned().unwrap_or_default()
}

for_each_backend! {
    fn every_template_and_policy_between_two_nodes(backend: Backend) {
        let mut net = Net::new(backend, &["KEN", "PAK"], "[exchange.policies]\nuid-verification = \"automatic\"\nseizure = \"two-person\"\n");
        let pak_codes = net.node("PAK").load_data(3000);
        net.start_all();
        let ken = net.node("KEN");
        let pak = net.node("PAK");

        // uid-verification, answered automatically from PAK's data.
        let mut asked: Vec<String> = pak_codes.iter().take(40).cloned().collect();
        asked.push("PAK1XXXXXXXXXXXX".into());
        let case = ken.compose("PAK", "uid-verification", body(common("Packs seized at the port of Mombasa"), json!({"codes": asked})));
        let done = ken.wait_case(&case, "answered_full", 30);
        let answer = messages(&done).into_iter().find(|m| m["kind"] == "answer").expect("an answer");
        assert_eq!(answer["direction"], "in");
        let results = answer["body"]["results"].as_array().unwrap();
        assert_eq!(results.len(), 41);
        assert_eq!(results[0]["status"], "known");
        assert!(results[0]["product"]["description"].is_string(), "{}", results[0]);
        assert!(results[0]["facility"]["id"].as_str().unwrap().starts_with("PAK-F-"));
        assert_eq!(results[40]["status"], "unknown");
        assert_eq!(answer["body"]["summary"]["unknown"], 1);
        // Our request carries PAK's signed receipt as evidence of delivery.
        let request = messages(&done).into_iter().find(|m| m["kind"] == "request").unwrap();
        assert_eq!(request["state"], "delivered");
        assert!(request["receipt"].as_str().unwrap().len() > 100);
        // PAK's side of the same case.
        let theirs = pak.case(&case);
        assert_eq!(theirs["role"], "responder");
        assert_eq!(theirs["state"], "answered_full");
        assert!(theirs["history"].as_array().unwrap().iter().any(|h| h["action"] == "answer sent" && h["actor"] == "node"));

        // free-text, answered by an officer.
        let case = ken.compose("PAK", "free-text", body(common("Administrative assistance between customs services"), json!({
            "category": "question", "subject": "Contact for licensing questions", "text": "Who answers questions on manufacturing licences?"
        })));
        pak.wait_listed(&case, "delivered", 20);
        let opened = pak.case(&case); // an officer opens it: read
        assert_eq!(opened["state"], "read");
        assert!(opened["history"].as_array().unwrap().iter().any(|h| h["action"] == "opened" && h["actor"] == "user:officer"));
        let r = pak.api().post_json(&format!("/api/v1/cases/{case}/answer"), &json!({"body": {
            "outcome": "full",
            "handling": {"purpose_limited": true, "onward_transmission": "prohibited", "classification": "restricted"},
            "text": "The Licensing Unit of the Federal Board of Revenue."
        }}));
        assert_eq!(r.status(), 200, "{}", r.text().unwrap());
        let done = ken.wait_case(&case, "answered_full", 20);
        let answer = messages(&done).into_iter().find(|m| m["kind"] == "answer").unwrap();
        assert_eq!(answer["body"]["text"], "The Licensing Unit of the Federal Board of Revenue.");

        // supply-chain-trace: PAK's officer starts from the draft the node builds.
        let case = ken.compose("PAK", "supply-chain-trace", body(common("Tracing a consignment found in Nairobi"), json!({
            "codes": [pak_codes[5].clone()], "wanted": ["first-customer", "shipping", "shipment-route"]
        })));
        pak.wait_listed(&case, "delivered", 20);
        let draft: Value = pak.api().get(&format!("/api/v1/cases/{case}/draft-answer")).json().unwrap();
        let first = &draft["body"]["results"][0];
        assert_eq!(first["status"], "known");
        assert!(first["first_customer"]["party"]["name"].is_string(), "{draft:#}");
        let r = pak.api().post_json(&format!("/api/v1/cases/{case}/answer"), &json!({"body": draft["body"]}));
        assert_eq!(r.status(), 200, "{}", r.text().unwrap());
        ken.wait_case(&case, "answered_full", 20);

        // seizure under the two-person policy, with an attachment.
        let photo = base64_of(b"\x89PNG pretend photo of the seized cartons");
        let r = ken.api().post_json("/api/v1/cases", &json!({
            "to": "PAK", "template": "seizure",
            "body": body(common("Seizure of counterfeit cigarettes"), json!({
                "kind": "notification",
                "seizure": {
                    "date": "2026-11-20",
                    "location": {"country": "KEN", "locality": "Mombasa"},
                    "authority": "Kenya Revenue Authority, Customs",
                    "quantities": [{"product": "cigarettes, brand unknown", "unit": "carton", "quantity": 1200}],
                    "description": "1,200 cartons declared as tea"
                }
            })),
            "attachments": [{"name": "photo.png", "media_type": "image/png", "content_base64": photo}]
        }));
        let status = r.status();
        let v: Value = r.json().unwrap();
        assert_eq!(status, 201, "{v}");
        let case = v["case_id"].as_str().unwrap().to_owned();
        pak.wait_listed(&case, "delivered", 20);
        let arrived = pak.case(&case);
        let attachment = messages(&arrived).into_iter().find(|m| m["kind"] == "attachment").expect("the photo arrived");
        // The detail gives an attachment's size without its content.
        assert_eq!(attachment["size"], 40, "{attachment:#}");
        assert!(attachment["body"].is_null(), "{attachment:#}");
        let request = messages(&arrived).into_iter().find(|m| m["kind"] == "request").expect("the request");
        assert_eq!(request["body"]["seizure"]["authority"], "Kenya Revenue Authority, Customs");
        let got = pak.api().get(&format!("/api/v1/cases/{case}/messages/{}/body", attachment["message_id"].as_str().unwrap()));
        assert_eq!(got.bytes().unwrap().as_ref(), b"\x89PNG pretend photo of the seized cartons");
        let answer = json!({"body": {
            "outcome": "full",
            "handling": {"purpose_limited": true, "onward_transmission": "prohibited", "classification": "restricted"},
            "acknowledged": true
        }});
        let r = pak.api().post_json(&format!("/api/v1/cases/{case}/answer"), &answer);
        assert_eq!(r.status(), 200, "{}", r.text().unwrap());
        pak.wait_case(&case, "awaiting_approval", 5);
        // The officer cannot approve (no approver role); neither can the author.
        assert_eq!(pak.api().post_json(&format!("/api/v1/cases/{case}/approve"), &json!({})).status(), 403);
        let approver = pak.api_as("approver");
        let r = approver.post_json(&format!("/api/v1/cases/{case}/approve"), &json!({}));
        assert_eq!(r.status(), 200, "{}", r.text().unwrap());
        ken.wait_case(&case, "answered_full", 20);

        // Downloads: the verification as CSV, one row per code.
        let verification = ken.cases().into_iter().find(|c| c["template"] == "uid-verification").unwrap();
        let csv = ken.api().get(&format!("/api/v1/cases/{}/export?format=csv", verification["id"].as_str().unwrap())).text().unwrap();
        assert_eq!(csv.lines().count(), 42, "{csv}");
        assert!(csv.starts_with("code,status,"));
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
