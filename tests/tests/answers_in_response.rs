//! Answers in the response to their request (SPEC §15.6), end to end on
//! SQLite and PostgreSQL: the automatic answer travels back with the
//! request's receipt, its own receipt returns in a batch and settles it
//! without a delivery; a sender that does not take answers this way gets them
//! delivered on their own; returned receipts that are malformed, forged,
//! rejected or over other bytes are refused one by one and change nothing;
//! a batch refused as over the sender's share of the listener is sent again
//! after the wait asked for; and an answer whose receipt never comes back is
//! sent on its own after the hold.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsp_federation::frames;
use gsp_federation::{MessageDraft, Part, PartyCode, Receipt, TemplateRef, UnixMillis, Verdict};
use gsp_node::for_each_backend;
use gsp_tests::federation::{Net, Node, common, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

fn verification(codes: &[String]) -> Value {
    let mut b = common("Packs seized at the port of Mombasa");
    b.insert("codes".into(), json!(codes));
    Value::Object(b)
}

/// The answer message of a case as its node lists it.
fn answer_of(node: &Node, case: &str) -> Value {
    node.case(case)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "answer")
        .cloned()
        .unwrap_or(Value::Null)
}

/// The state of message `id` in a node's outbox.
fn outbox_state(node: &Node, id: &str) -> String {
    let out = node.s().run(&["outbox", "list", "--all", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).expect("gsp outbox list --json");
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e["message_id"] == id)
        .map(|e| e["state"].as_str().unwrap_or("").to_owned())
        .unwrap_or_default()
}

for_each_backend! {
    fn an_automatic_answer_comes_back_in_the_response(backend: Backend) {
        let mut net = Net::new(backend, &["KEN", "PAK"], "");
        let codes = net.node("PAK").load_data(100);
        net.start_all();
        let (ken, pak) = (net.node("KEN"), net.node("PAK"));

        let case = ken.compose("PAK", "uid-verification", verification(&codes[..5]));
        let done = ken.wait_case(&case, "answered_full", 30);
        let answer = done["messages"].as_array().unwrap().iter().find(|m| m["kind"] == "answer").cloned().unwrap();
        assert_eq!(answer["body"]["results"].as_array().unwrap().len(), 5);
        assert_eq!(pak.metric("gsp_answers_in_response_total{direction=\"sent\"}"), 1);
        assert_eq!(ken.metric("gsp_answers_in_response_total{direction=\"taken\"}"), 1);

        // KEN's receipt comes back in a batch well inside the 10-second hold
        // and settles PAK's answer: never delivered on its own.
        wait_until("PAK's answer settled by the returned receipt", 8, || answer_of(pak, &case)["state"] == "delivered");
        let theirs = answer_of(pak, &case);
        assert!(theirs["receipt"].as_str().unwrap().len() > 100, "{theirs:#}");
        assert_eq!(pak.metric("gsp_response_receipts_total{result=\"recorded\"}"), 1);
        assert_eq!(pak.metric("gsp_delivery_attempts_total{result=\"delivered\"}"), 0);
        assert_eq!(outbox_state(pak, theirs["message_id"].as_str().unwrap()), "delivered");
        // KEN recorded the answer once (the request's delivery is its only attempt).
        assert_eq!(ken.metric("gsp_federation_received_total{result=\"accepted\"}"), 1);
        assert_eq!(ken.metric("gsp_delivery_attempts_total{result=\"delivered\"}"), 1);
    }

    fn a_sender_that_does_not_take_answers_in_responses_gets_them_delivered(backend: Backend) {
        let mut net = Net::new(backend, &["KEN", "PAK"], "");
        let codes = net.node("PAK").load_data(100);
        let toml = net.node("KEN").s().dir.path().join("gsp.toml");
        let mut text = std::fs::read_to_string(&toml).unwrap();
        text.push_str("\n[exchange]\nanswers_in_response = false\n");
        std::fs::write(&toml, text).unwrap();
        net.start_all();
        let (ken, pak) = (net.node("KEN"), net.node("PAK"));

        let case = ken.compose("PAK", "uid-verification", verification(&codes[..3]));
        ken.wait_case(&case, "answered_full", 30);
        wait_until("PAK's answer delivered", 20, || answer_of(pak, &case)["state"] == "delivered");
        assert_eq!(pak.metric("gsp_answers_in_response_total{direction=\"sent\"}"), 0);
        assert_eq!(pak.metric("gsp_delivery_attempts_total{result=\"delivered\"}"), 1);
        assert_eq!(ken.metric("gsp_answers_in_response_total{direction=\"taken\"}"), 0);
    }

    fn a_batch_of_receipts_over_the_share_is_sent_again_after_the_wait(backend: Backend) {
        // PAK lets each Party make one request a second: the request takes
        // KEN's, so the batch with the answer's receipt, a moment later, is
        // refused (429, Retry-After: 1) and must be sent again.
        let mut net = Net::new(backend, &["KEN", "PAK"], "peer_requests_per_second = 1\n");
        let codes = net.node("PAK").load_data(100);
        net.start_all();
        let (ken, pak) = (net.node("KEN"), net.node("PAK"));

        let case = ken.compose("PAK", "uid-verification", verification(&codes[..2]));
        ken.wait_case(&case, "answered_full", 30);
        // Settled by the returned receipt inside the 10-second hold, not
        // delivered on its own.
        wait_until("PAK's answer settled by the returned receipt", 8, || answer_of(pak, &case)["state"] == "delivered");
        assert_eq!(pak.metric("gsp_federation_refused_total{code=\"rate_limited\"}"), 1, "the first batch was over KEN's share");
        assert_eq!(pak.metric("gsp_response_receipts_total{result=\"recorded\"}"), 1);
        assert_eq!(pak.metric("gsp_delivery_attempts_total{result=\"delivered\"}"), 0);
    }

    fn returned_receipts_are_checked_one_by_one(backend: Backend) {
        let mut net = Net::new(backend, &["KEN", "PAK"], "request_timeout_secs = 5\n[exchange]\nretry_base_ms = 100\nretry_cap_secs = 1\n");
        let codes = net.node("PAK").load_data(100);
        net.start_all();
        let pak = net.node("PAK");
        let (ken_keys, pak_keys) = (net.node("KEN").identity(), pak.identity());
        let pak_enc = pak_keys.encryption_keys[0].key.public_key();
        let base = format!("{}/federation/v1", pak.federation_url());
        let client = pak.client_as(&ken_keys.tls);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let post = |path: &str, media: &str, body: Vec<u8>, take: bool| -> (u16, String, Vec<u8>) {
            rt.block_on(async {
                let mut req = client.post(format!("{base}{path}")).header("content-type", media).body(body);
                if take {
                    req = req.header("GSP-Answer-In-Response", "accept");
                }
                let r = req.send().await.unwrap();
                let media = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                (r.status().as_u16(), media, r.bytes().await.unwrap().to_vec())
            })
        };
        let (kenp, pakp) = (PartyCode::parse("KEN").unwrap(), PartyCode::parse("PAK").unwrap());
        let now = gsp_node::exchange::store::now_ms();
        // A request sent as KEN that takes its answer in the response: the
        // test, not KEN's node, holds the answer.
        let request = |codes: &[String]| -> Vec<u8> {
            let mut d = MessageDraft::new(kenp, pakp, uuid::Uuid::now_v7(), "application/json", UnixMillis(now as u64), Duration::from_secs(3600));
            d.template = Some(TemplateRef { name: "uid-verification".into(), version: 1, part: Part::Request });
            gsp_federation::seal(&d, &serde_json::to_vec(&verification(codes)).unwrap(), &ken_keys.signing_key, &pak_enc).unwrap()
        };
        let ask = |codes: &[String]| -> (Vec<u8>, Vec<u8>) {
            let envelope = request(codes);
            let (status, media, body) = post("/messages", "application/gsp-envelope", envelope.clone(), true);
            assert_eq!((status, media.as_str()), (200, "application/gsp-frames"), "{}", String::from_utf8_lossy(&body));
            let parts = frames::decode(&body, 3).unwrap();
            assert_eq!(parts.len(), 2, "the receipt and the answer");
            let receipt = Receipt::from_bytes(parts[0]).unwrap();
            let pak_signs = gsp_federation::SenderKey { key: pak_keys.signing_key.verifying_key(), validity: gsp_federation::Validity::ALWAYS };
            receipt.verify(&envelope, &[pak_signs], UnixMillis(now as u64), Duration::from_secs(300)).unwrap();
            assert_eq!(receipt.verdict, Verdict::Accepted);
            (envelope, parts[1].to_vec())
        };
        let (_, answer) = ask(&codes[..2]);
        let answer_id = gsp_federation::parse(&answer, 1 << 20).unwrap().routing.message_id;
        assert_eq!(outbox_state(pak, &answer_id.to_string()), "pending");
        let receipt = |digest: [u8; 32], verdict: Verdict, key: &gsp_federation::SigningKey| {
            Receipt::sign(digest, answer_id, kenp, pakp, UnixMillis(now as u64), verdict, key).to_bytes()
        };
        let digest = gsp_federation::envelope_digest(&answer);
        let stranger = gsp_federation::SigningKey::generate().unwrap();
        let batch = |items: &[Vec<u8>]| post("/receipts", "application/gsp-frames", frames::encode(items), false);
        let refused_of = |bytes: &[u8]| -> Value { serde_json::from_slice(bytes).unwrap() };

        // Refused as a whole: wrong media type, broken framing.
        let (s, _, bytes) = post("/receipts", "application/json", b"[]".to_vec(), false);
        assert_eq!((s, refused_of(&bytes)["code"].as_str()), (415, Some("unsupported_media_type")));
        let (s, _, bytes) = post("/receipts", "application/gsp-frames", vec![0, 0, 0, 9, 1, 2], false);
        let v = refused_of(&bytes);
        assert_eq!((s, v["code"].as_str()), (400, Some("malformed_batch")), "{v}");
        assert!(v["message"].as_str().unwrap().contains("frame 0 at byte 0"), "{v}");

        // Refused one by one: not KEN's key, rejected, over other bytes, not a receipt.
        let (s, _, bytes) = batch(&[
            receipt(digest, Verdict::Accepted, &stranger),
            receipt(digest, Verdict::Rejected("invalid_body".into()), &ken_keys.signing_key),
            receipt([7u8; 32], Verdict::Accepted, &ken_keys.signing_key),
            b"not a receipt".to_vec(),
        ]);
        let v = refused_of(&bytes);
        assert_eq!((s, v["recorded"].as_u64()), (200, Some(0)), "{v}");
        let indexes: Vec<u64> = v["refused"].as_array().unwrap().iter().map(|r| r["index"].as_u64().unwrap()).collect();
        assert_eq!(indexes, [0, 1, 2, 3], "{v}");
        assert_eq!(outbox_state(pak, &answer_id.to_string()), "pending", "nothing changed");

        // The genuine receipt settles the answer; sent again it changes nothing.
        let genuine = receipt(digest, Verdict::Accepted, &ken_keys.signing_key);
        let (s, _, bytes) = batch(std::slice::from_ref(&genuine));
        assert_eq!((s, refused_of(&bytes)["recorded"].as_u64()), (200, Some(1)));
        assert_eq!(outbox_state(pak, &answer_id.to_string()), "delivered");
        let (s, _, bytes) = batch(&[genuine]);
        let v = refused_of(&bytes);
        assert_eq!((s, v["recorded"].as_u64(), v["refused"].as_array().map(Vec::len)), (200, Some(0), Some(0)), "{v}");
        assert_eq!(pak.metric("gsp_delivery_attempts_total{result=\"delivered\"}"), 0);

        // An answer whose receipt never comes back is sent on its own once
        // the hold runs out: to KEN's node, which never asked, and refuses it.
        let (_, lost) = ask(&codes[2..4]);
        let lost_id = gsp_federation::parse(&lost, 1 << 20).unwrap().routing.message_id.to_string();
        std::thread::sleep(Duration::from_secs(5));
        assert_eq!(outbox_state(pak, &lost_id), "pending", "held");
        wait_until("the held answer sent on its own", 30, || outbox_state(pak, &lost_id) == "failed");
        assert_eq!(pak.metric("gsp_delivery_attempts_total{result=\"refused\"}"), 1);
        assert_eq!(net.node("KEN").metric("gsp_federation_refused_total{code=\"case_conflict\"}"), 1);
    }
}
