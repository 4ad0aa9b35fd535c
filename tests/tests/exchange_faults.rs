//! The exchange under faults, end to end on SQLite and PostgreSQL: a
//! receiving node down and back, a sender killed between commit and
//! delivery, a receiver killed mid-request, a sender killed with a delivery
//! on its way, two sender instances on one PostgreSQL database — the operator's `gsp outbox retry` and `cancel`, and
//! hostile envelopes, each refused with the SPEC's error code and nothing
//! stored.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsp_federation::envelope::{DangerTamper, danger_seal_with_ikm};
use gsp_federation::{MessageDraft, PartyCode, TemplateRef, UnixMillis};
use gsp_node::for_each_backend;
use gsp_tests::federation::{Net, Node, common, wait_until};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Quick retries, and short delivery timeouts so a crashed sender's claims
/// lapse quickly. (The harness appends this right after `[federation] listen`.)
const FAST_RETRIES: &str =
    "request_timeout_secs = 5\n[exchange]\nretry_base_ms = 100\nretry_cap_secs = 1\n";

fn free_text(subject: &str) -> Value {
    let mut b = common("Administrative assistance between customs services");
    b.insert("category".into(), json!("question"));
    b.insert("subject".into(), json!(subject));
    b.insert("text".into(), json!("Please tell us who to contact."));
    Value::Object(b)
}

/// The `outbox` part of a node's `gsp status --json`.
fn outbox_status(node: &Node) -> Value {
    let out = node.s().run(&["status", "--json"]);
    serde_json::from_slice::<Value>(&out.stdout).expect("gsp status --json")["outbox"].clone()
}

fn outbox(node: &Node) -> Vec<Value> {
    let out = node.s().run(&["outbox", "list", "--all", "--json"]);
    assert!(out.status.success(), "{}", gsp_tests::stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A port that accepts TCP connections and never says a word, until dropped.
struct Blackhole {
    stop: Arc<std::sync::atomic::AtomicBool>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Blackhole {
    fn on(port: u16) -> Blackhole {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, a) = (stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        held.push(stream);
                        a.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Blackhole {
            stop,
            accepted,
            thread: Some(thread),
        }
    }

    fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

for_each_backend! {
    fn nothing_is_lost_and_nothing_is_applied_twice(backend: Backend) {
        let mut net = Net::new(backend, &["KEN", "PAK"], FAST_RETRIES);
        net.start_all();

        // 1. The receiver is down for a while, then back: delivered once.
        net.node_mut("PAK").kill();
        let case = net.node("KEN").compose("PAK", "free-text", free_text("While PAK was down"));
        wait_until("failed attempts to reach PAK", 20, || {
            outbox(net.node("KEN")).iter().any(|r| r["attempts"].as_u64().unwrap_or(0) >= 2 && r["last_error"].is_string())
        });
        assert_eq!(net.node("KEN").cases()[0]["state"], "queued");
        net.node_mut("PAK").start();
        net.node("KEN").wait_case(&case, "delivered", 30);
        wait_until("PAK's metrics", 5, || net.node("PAK").metric("gsp_federation_received_total{result=\"accepted\"}") == 1);
        assert_eq!(net.node("PAK").metric("gsp_federation_received_total{result=\"duplicate\"}"), 0);
        // Every attempt KEN made started from a message its worker took —
        // through a place or from the outbox; the retries after a back-off
        // (at least two here) all came from the outbox.
        let ken = net.node("KEN");
        let attempts: u64 = ["delivered", "retry", "refused"]
            .iter()
            .map(|r| ken.metric(&format!("gsp_delivery_attempts_total{{result=\"{r}\"}}")))
            .sum();
        let (place, from_outbox) = (
            ken.metric("gsp_delivery_taken_total{from=\"place\"}"),
            ken.metric("gsp_delivery_taken_total{from=\"outbox\"}"),
        );
        assert_eq!(place + from_outbox, attempts, "place {place}, outbox {from_outbox}");
        assert!(from_outbox >= 2, "retries are claimed from the outbox: {from_outbox}");

        // 2. The sender is killed between commit and delivery: delivered after restart.
        net.node_mut("PAK").kill();
        let case = net.node("KEN").compose("PAK", "free-text", free_text("Sent just before a crash"));
        net.node_mut("KEN").kill();
        net.node_mut("PAK").start();
        net.node_mut("KEN").start();
        net.node("KEN").wait_case(&case, "delivered", 30);
        assert_eq!(net.node("PAK").cases().iter().filter(|c| c["id"] == case.as_str()).count(), 1);

        // 3. The receiver is killed in the middle of a large request: the
        //    sender retries and the message is applied exactly once.
        let big: String = "x".repeat(8 * 1024 * 1024);
        use base64::Engine as _;
        let r = net.node("KEN").api().post_json("/api/v1/cases", &json!({
            "to": "PAK", "template": "free-text", "body": free_text("With a large attachment"),
            "attachments": [{"name": "big.txt", "media_type": "text/plain",
                "content_base64": base64::engine::general_purpose::STANDARD.encode(big.as_bytes())}]
        }));
        assert_eq!(r.status(), 201);
        let case: String = r.json::<Value>().unwrap()["case_id"].as_str().unwrap().to_owned();
        std::thread::sleep(Duration::from_millis(150));
        net.node_mut("PAK").kill();
        net.node_mut("PAK").start();
        net.node("KEN").wait_case(&case, "delivered", 60);
        let theirs = net.node("PAK").case(&case);
        let attachments = theirs["messages"].as_array().unwrap().iter().filter(|m| m["kind"] == "attachment").count();
        assert_eq!(attachments, 1, "{theirs:#}");
        let requests = theirs["messages"].as_array().unwrap().iter().filter(|m| m["kind"] == "request").count();
        assert_eq!(requests, 1);
    }

    /// A sender killed while a delivery was on its way takes its claim back
    /// when it starts again (it keeps its instance name in its data folder):
    /// the message goes out at once, not when the claim's lease — here over
    /// two minutes — runs out.
    fn a_restarted_sender_takes_back_its_own_claims(backend: Backend) {
        let mut net = Net::new(
            backend,
            &["KEN", "PAK"],
            "request_timeout_secs = 120\n[exchange]\nretry_base_ms = 100\nretry_cap_secs = 1\n",
        );
        net.start_all();
        // PAK's port accepts connections and never answers: KEN's attempt
        // hangs with the message claimed.
        net.node_mut("PAK").kill();
        let hole = Blackhole::on(net.node("PAK").port);
        let case = net.node("KEN").compose("PAK", "free-text", free_text("On its way at the crash"));
        let lease_left = |node: &Node| -> i64 {
            let now = UnixMillis::now().0 as i64;
            outbox(node)
                .iter()
                .find(|r| r["case_id"] == case.as_str())
                .and_then(|r| r["claimed_until"].as_i64())
                .map_or(0, |until| until - now)
        };
        wait_until("a delivery on its way", 20, || {
            hole.connections() > 0 && lease_left(net.node("KEN")) > 60_000
        });
        // `gsp status` shows it on its way, by KEN's instance (its slot's name).
        let name = std::fs::read_to_string(net.node("KEN").s().dir.path().join("instance-0.id")).unwrap();
        let status = outbox_status(net.node("KEN"));
        assert_eq!(status["pending"], 1, "{status}");
        assert_eq!(status["on_its_way"][name.trim()], 1, "{status}");
        net.node_mut("KEN").kill();
        drop(hole);
        // PAK's slot file cannot be opened now: it starts all the same, with
        // a name for this run only (its claims would lapse with their leases).
        let pak_slot = net.node("PAK").s().dir.path().join("instance-0.id");
        std::fs::remove_file(&pak_slot).unwrap();
        std::fs::create_dir(&pak_slot).unwrap();
        net.node_mut("PAK").start();
        net.node_mut("KEN").start();
        // The claim's lease has more than a minute to run: only its release
        // at the start lets the message out within 40 s.
        net.node("KEN").wait_case(&case, "delivered", 40);
        assert_eq!(net.node("PAK").cases().iter().filter(|c| c["id"] == case.as_str()).count(), 1);
        let status = outbox_status(net.node("KEN"));
        assert_eq!((&status["pending"], &status["failed"]), (&json!(0), &json!(0)), "{status}");
        assert_eq!(status["on_its_way"], json!({}), "{status}");
    }

    /// The operator's levers on the outbox, through `gsp outbox` beside a
    /// running `gsp serve`: `retry` makes a message (or a case's messages)
    /// waiting out its back-off due now; `cancel` gives up on one, which is
    /// then never sent and its case fails; neither touches a message in a
    /// state it does not apply to.
    fn the_outbox_can_be_retried_now_and_cancelled(backend: Backend) {
        // A minute's back-off: only `gsp outbox retry` brings the message out early.
        let mut net = Net::new(
            backend,
            &["KEN", "PAK"],
            "request_timeout_secs = 5\n[exchange]\nretry_base_ms = 60000\nretry_cap_secs = 600\n",
        );
        net.start_all();
        let entry_of = |node: &Node, case: &str| -> Value {
            outbox(node).into_iter().find(|r| r["case_id"] == case).expect("the case's message in the outbox")
        };
        let gsp_outbox = |node: &Node, args: &[&str]| {
            let mut all = vec!["outbox"];
            all.extend_from_slice(args);
            node.s().run(&all)
        };
        let tried_once = |node: &Node, case: &str| {
            let r = entry_of(node, case);
            r["attempts"].as_u64().unwrap_or(0) >= 1 && r["last_error"].is_string()
        };

        // Retry now: PAK was down at the first attempt, the next is a minute away.
        net.node_mut("PAK").kill();
        let late = net.node("KEN").compose("PAK", "free-text", free_text("Waiting out a back-off"));
        wait_until("a failed attempt", 20, || tried_once(net.node("KEN"), &late));
        net.node_mut("PAK").start();
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(net.node("KEN").case(&late)["state"], "queued", "still backing off");
        let seq = entry_of(net.node("KEN"), &late)["seq"].as_i64().unwrap().to_string();
        let out = gsp_outbox(net.node("KEN"), &["retry", "--case", &late]);
        assert!(out.status.success(), "{}", gsp_tests::stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("1 message(s) of case {late} due now: {seq}")));
        net.node("KEN").wait_case(&late, "delivered", 20);
        assert_eq!(entry_of(net.node("KEN"), &late)["state"], "delivered");
        // Delivered: neither lever applies any more.
        for lever in ["retry", "cancel"] {
            let out = gsp_outbox(net.node("KEN"), &[lever, &seq]);
            assert!(!out.status.success(), "{lever} of a delivered message");
            assert!(gsp_tests::stderr(&out).contains(&format!("message {seq}")), "{}", gsp_tests::stderr(&out));
        }

        // Cancel: given up on while PAK is down, it is not sent when PAK is back.
        net.node_mut("PAK").kill();
        let dropped = net.node("KEN").compose("PAK", "free-text", free_text("Given up on"));
        wait_until("a failed attempt", 20, || tried_once(net.node("KEN"), &dropped));
        let seq = entry_of(net.node("KEN"), &dropped)["seq"].as_i64().unwrap().to_string();
        // Retried by its number: due now, tried again, and PAK still down.
        let attempts = entry_of(net.node("KEN"), &dropped)["attempts"].as_u64().unwrap();
        let out = gsp_outbox(net.node("KEN"), &["retry", &seq]);
        assert!(out.status.success(), "{}", gsp_tests::stderr(&out));
        wait_until("another attempt", 20, || {
            entry_of(net.node("KEN"), &dropped)["attempts"].as_u64().unwrap() > attempts
        });
        let out = gsp_outbox(net.node("KEN"), &["cancel", &seq]);
        assert!(out.status.success(), "{}", gsp_tests::stderr(&out));
        assert_eq!(entry_of(net.node("KEN"), &dropped)["state"], "cancelled");
        let case = net.node("KEN").case(&dropped);
        assert_eq!((&case["state"], &case["failure"]), (&json!("failed"), &json!("cancelled by the operator")));
        let status = outbox_status(net.node("KEN"));
        assert_eq!(status["cancelled"], 1, "{status}");
        let text = String::from_utf8_lossy(&net.node("KEN").s().run(&["status"]).stdout).into_owned();
        assert!(text.contains("Outbox: 0 pending, 0 failed, 1 cancelled"), "{text}");
        for lever in ["retry", "cancel"] {
            let out = gsp_outbox(net.node("KEN"), &[lever, &seq]);
            assert!(!out.status.success(), "{lever} of a cancelled message");
        }
        let out = gsp_outbox(net.node("KEN"), &["cancel", "999999"]);
        assert!(!out.status.success());
        assert!(gsp_tests::stderr(&out).contains("no undelivered message 999999"), "{}", gsp_tests::stderr(&out));
        // A case's messages are retried together; a cancelled one is not.
        let out = gsp_outbox(net.node("KEN"), &["retry", "--case", &dropped]);
        assert!(!out.status.success());
        assert!(gsp_tests::stderr(&out).contains(&format!("no pending or failed message of case {dropped}")), "{}", gsp_tests::stderr(&out));
        net.node_mut("PAK").start();
        // A message composed now reaches PAK; the cancelled one, queued
        // before it, still does not.
        let after = net.node("KEN").compose("PAK", "free-text", free_text("Sent after the cancellation"));
        net.node("KEN").wait_case(&after, "delivered", 20);
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(entry_of(net.node("KEN"), &dropped)["state"], "cancelled");
        let theirs: Vec<Value> = net.node("PAK").cases();
        assert!(theirs.iter().any(|c| c["id"] == after.as_str()));
        assert!(!theirs.iter().any(|c| c["id"] == dropped.as_str()), "a cancelled message was sent");
    }

    fn hostile_envelopes_are_refused_and_nothing_is_stored(backend: Backend) {
        // A smaller envelope limit (1 MiB), to test the size check cheaply.
        let mut net = Net::new(backend, &["KEN", "PAK"], "max_envelope_bytes = 1048576\n");
        net.start_all();
        let (ken_keys, pak_keys) = (net.node("KEN").identity(), net.node("PAK").identity());
        let pak_enc = pak_keys.encryption_keys[0].key.public_key();
        let pak_url = format!("{}/federation/v1/messages", net.node("PAK").federation_url());
        let client_as = |creds: &gsp_certs::TlsCredentials| net.node("PAK").client_as(creds);
        let ken_client = client_as(&ken_keys.tls);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let send = |client: &reqwest::Client, envelope: Vec<u8>| -> (u16, Vec<u8>) {
            rt.block_on(async {
                let r = client.post(&pak_url).header("content-type", "application/gsp-envelope").body(envelope).send().await.unwrap();
                (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
            })
        };
        let now = gsp_node::exchange::store::now_ms();
        let draft = |from: &str, to: &str, created: i64, lifetime_s: u64| {
            let mut d = MessageDraft::new(
                PartyCode::parse(from).unwrap(),
                PartyCode::parse(to).unwrap(),
                uuid::Uuid::now_v7(),
                "application/json",
                UnixMillis(created as u64),
                Duration::from_secs(lifetime_s),
            );
            d.template = Some(TemplateRef { name: "free-text".into(), version: 1, part: gsp_federation::Part::Request });
            d
        };
        let good_body = serde_json::to_vec(&free_text("A question")).unwrap();
        let seal = |d: &MessageDraft, body: &[u8], skip_validation: bool| {
            let tamper = DangerTamper { skip_body_validation: skip_validation, ..Default::default() };
            let mut ikm = [0u8; 32];
            ikm[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            danger_seal_with_ikm(d, body, &ken_keys.signing_key, &pak_enc, &ikm, &tamper).unwrap()
        };
        let code_of = |bytes: &[u8]| -> (String, bool) {
            let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
            (v["code"].as_str().unwrap_or("").to_owned(), v["receipt"].is_string())
        };
        let cases_before = net.node("PAK").cases().len();

        // A genuine envelope, twice: accepted once, the second time the same receipt.
        let genuine = seal(&draft("KEN", "PAK", now, 3600), &good_body, false);
        let (s1, receipt1) = send(&ken_client, genuine.clone());
        assert_eq!(s1, 200, "{}", String::from_utf8_lossy(&receipt1));
        let genuine_copy = genuine.clone();
        let (s2, receipt2) = send(&ken_client, genuine);
        assert_eq!(s2, 200);
        assert_eq!(receipt1, receipt2, "a duplicate gets the original receipt");
        assert_eq!(net.node("PAK").cases().len(), cases_before + 1);
        assert_eq!(net.node("PAK").metric("gsp_federation_received_total{result=\"duplicate\"}"), 1);

        // An attachment that arrives before its request: the case is made
        // for it, unlisted, and the request then completes it.
        let case_id = uuid::Uuid::now_v7();
        let mut first = draft("KEN", "PAK", now, 3600);
        (first.case_id, first.template, first.content_type) = (case_id, None, "text/plain".into());
        let (s, bytes) = send(&ken_client, seal(&first, b"an attachment sent first", false));
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(net.node("PAK").cases().len(), cases_before + 1, "a case waiting for its request is not listed");
        let mut then = draft("KEN", "PAK", now, 3600);
        then.case_id = case_id;
        let (s, bytes) = send(&ken_client, seal(&then, &serde_json::to_vec(&free_text("Sent after its file")).unwrap(), false));
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&bytes));
        let case = net.node("PAK").case(&case_id.to_string());
        assert_eq!((case["template"].as_str(), case["subject"].as_str()), (Some("free-text"), Some("Sent after its file")), "{case:#}");
        assert!(matches!(case["state"].as_str(), Some("delivered" | "read")), "{case:#}");
        let kinds: Vec<&str> = case["messages"].as_array().unwrap().iter().filter_map(|m| m["kind"].as_str()).collect();
        assert_eq!(kinds.len(), 2, "{kinds:?}");
        assert!(kinds.contains(&"attachment") && kinds.contains(&"request"), "{kinds:?}");
        let stored = net.node("PAK").cases().len();
        assert_eq!(stored, cases_before + 2);

        // The receipt can be fetched again by its sender (SPEC §15.3), by id.
        let genuine_id = gsp_federation::parse(&genuine_copy, 1 << 20).unwrap().routing.message_id;
        let receipts_url = |id: &str| format!("{}/federation/v1/receipts/{id}", net.node("PAK").federation_url());
        let get = |client: &reqwest::Client, url: String| -> (u16, Vec<u8>) {
            rt.block_on(async {
                let r = client.get(&url).send().await.unwrap();
                (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
            })
        };
        assert_eq!(get(&ken_client, receipts_url(&genuine_id.to_string())), (200, receipt1.clone()));
        let (s, bytes) = get(&ken_client, receipts_url(&uuid::Uuid::now_v7().to_string()));
        assert_eq!((s, code_of(&bytes).0.as_str()), (404, "not_found"));
        // Another Party (here PAK's own certificate) does not get KEN's receipt.
        let (s, bytes) = get(&client_as(&pak_keys.tls), receipts_url(&genuine_id.to_string()));
        assert_eq!((s, code_of(&bytes).0.as_str()), (404, "not_found"));
        let (s, bytes) = get(&ken_client, receipts_url("not-a-uuid"));
        assert_eq!((s, code_of(&bytes).0.as_str()), (400, "malformed_header"));

        // Each of these is refused with its SPEC code and a signed rejection receipt.
        let expired = seal(&draft("KEN", "PAK", now - 3 * 86_400_000, 86_400), &good_body, false);
        let wrong_recipient = seal(&draft("KEN", "SEN", now, 3600), &good_body, false);
        let invalid_body = seal(&draft("KEN", "PAK", now, 3600), br#"{"category": "question"}"#, true);
        let mut tampered = seal(&draft("KEN", "PAK", now, 3600), &good_body, false);
        let last = tampered.len() - 20;
        tampered[last] ^= 0x01;
        let mut oversize = seal(&draft("KEN", "PAK", now, 3600), &good_body, false);
        oversize.resize(2 * 1024 * 1024, 0);
        for (what, envelope, status, code) in [
            ("expired", expired, 422, "expired"),
            ("wrong recipient", wrong_recipient, 422, "wrong_recipient"),
            ("invalid template body", invalid_body, 422, "invalid_body"),
            ("tampered ciphertext", tampered, 422, "decrypt_failed"),
            ("oversize", oversize, 413, "too_large"),
        ] {
            let (s, bytes) = send(&ken_client, envelope);
            let (got, has_receipt) = code_of(&bytes);
            assert_eq!((s, got.as_str()), (status, code), "{what}: {}", String::from_utf8_lossy(&bytes));
            if status == 422 {
                assert!(has_receipt, "{what}: a signed rejection receipt");
            }
        }

        // A valid certificate of one Party cannot send as another.
        let sen_dir = tempfile::tempdir().unwrap();
        let sen = gsp_certs::init(&gsp_certs::InitOptions {
            party: PartyCode::parse("SEN").unwrap(),
            hosts: vec!["127.0.0.1".into()],
            dir: sen_dir.path().join("keys"),
            force: false,
            tls_days: 30,
            now: UnixMillis(now as u64),
        })
        .unwrap();
        let mut as_sen = draft("SEN", "PAK", now, 3600);
        as_sen.message_id = uuid::Uuid::now_v7();
        let envelope = gsp_federation::seal(&as_sen, &good_body, &sen.signing_key().unwrap(), &pak_enc).unwrap();
        let (s, bytes) = send(&ken_client, envelope.clone());
        assert_eq!((s, code_of(&bytes).0.as_str()), (403, "unauthenticated_peer"));

        // A certificate not in the directory gets no TLS session at all.
        let stranger = client_as(&sen.tls().unwrap());
        let refused = rt.block_on(async {
            stranger.post(&pak_url).header("content-type", "application/gsp-envelope").body(envelope).send().await
        });
        match refused {
            Err(_) => {}
            Ok(r) => panic!("a stranger's certificate got HTTP {}", r.status()),
        }

        // Nothing of the refused messages was stored.
        assert_eq!(net.node("PAK").cases().len(), stored);
        for code in ["expired", "wrong_recipient", "invalid_body", "decrypt_failed", "too_large", "unauthenticated_peer"] {
            assert_eq!(net.node("PAK").metric(&format!("gsp_federation_refused_total{{code=\"{code}\"}}")), 1, "{code}");
        }
    }

    fn a_party_over_its_share_is_told_to_wait_and_loses_nothing(backend: Backend) {
        // PAK lets each Party send one request per second.
        let mut net = Net::new(backend, &["KEN", "PAK"], &format!("peer_requests_per_second = 1\n{FAST_RETRIES}"));
        net.start_all();
        let (ken, pak) = (net.node("KEN"), net.node("PAK"));

        // Ten messages at once: KEN's delivery sends up to eight together,
        // PAK refuses what is over KEN's share, and KEN retries.
        let sent: Vec<String> = (0..10).map(|i| ken.compose("PAK", "free-text", free_text(&format!("Question {i}")))).collect();
        for id in &sent {
            ken.wait_case(id, "delivered", 90);
        }
        let received: Vec<Value> = pak.cases();
        for id in &sent {
            assert_eq!(received.iter().filter(|c| c["id"] == id.as_str()).count(), 1, "{id} arrived once");
        }
        assert_eq!(received.len(), sent.len(), "nothing else arrived");
        let limited = pak.metric("gsp_federation_refused_total{code=\"rate_limited\"}");
        assert!(limited >= 1, "eight requests at once from a Party allowed one a second");
        assert!(ken.metric("gsp_delivery_attempts_total{result=\"retry\"}") >= limited, "every refusal was retried");
        // KEN backs off as a whole (pauses for the Retry-After, then keeps
        // fewer messages on the way) instead of retrying each refused
        // message on its own, which cost 45 refusals for these ten (12 now;
        // at worst two for each delivery after the first burst's seven).
        assert!(limited < 3 * sent.len() as u64, "{limited} refusals for {} messages", sent.len());

        // What a refused caller gets: 429, the SPEC code, Retry-After, and
        // no receipt. Five fetches at once cannot all pass at one a second.
        let client = pak.client_as(&ken.identity().tls);
        let url = format!("{}/federation/v1/receipts/{}", pak.federation_url(), uuid::Uuid::now_v7());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let answers = rt.block_on(async {
            let calls = (0..5).map(|_| async {
                let r = client.get(&url).send().await.unwrap();
                let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
                (r.status().as_u16(), retry_after, r.json::<Value>().await.unwrap())
            });
            futures_util::future::join_all(calls).await
        });
        let refused: Vec<_> = answers.iter().filter(|(s, ..)| *s == 429).collect();
        assert!(!refused.is_empty(), "{answers:?}");
        for (_, retry_after, body) in &refused {
            assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
            assert_eq!(body["code"], "rate_limited", "{body}");
            assert!(body["message"].as_str().unwrap().contains("KEN sent more than"), "{body}");
            assert!(body["receipt"].is_null(), "{body}");
        }
        // The others were looked up: no such message from KEN.
        assert!(answers.iter().all(|(s, ..)| *s == 429 || *s == 404), "{answers:?}");
        assert_eq!(pak.metric("gsp_federation_refused_total{code=\"rate_limited\"}"), limited + refused.len() as u64);
    }
}

/// Two `gsp serve` instances of one Party on one PostgreSQL database share
/// the outbox: every message goes out exactly once.
#[test]
fn two_instances_on_one_postgresql_database_never_send_twice() {
    let mut net = Net::new(
        gsp_node::storage::Backend::Postgres,
        &["KEN", "PAK"],
        FAST_RETRIES,
    );
    net.start_all();
    // A second KEN instance: same data directory and database, its own ports.
    let ken = net.node("KEN");
    let mut second = ken
        .s()
        .gsp()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--federation-listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut cases = Vec::new();
    for i in 0..40 {
        cases.push(ken.compose("PAK", "free-text", free_text(&format!("Message {i}"))));
    }
    for c in &cases {
        ken.wait_case(c, "delivered", 60);
    }
    let pak = net.node("PAK");
    wait_until("PAK to count 40 messages", 10, || {
        pak.metric("gsp_federation_received_total{result=\"accepted\"}") == 40
    });
    assert_eq!(
        pak.metric("gsp_federation_received_total{result=\"duplicate\"}"),
        0,
        "a message was sent twice"
    );
    let _ = second.kill();
    let _ = second.wait();
}
