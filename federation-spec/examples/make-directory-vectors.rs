//! Writes the directory test vectors in `federation-spec/vectors/directory/`.
//!
//! Run with `cargo run -p gsp-federation --example make-directory-vectors`.
//! Keys come from fixed labels and Ed25519 is deterministic, so a second run
//! writes identical files; `tests/directory_vectors.rs` checks that, and that
//! each vector gives its expected outcome (SPEC.md §18.8).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

use gsp_federation::directory::record::RECORD_FORMAT;
use gsp_federation::directory::*;
use gsp_federation::keys::{SigningKey, domain};
use gsp_federation::log::MerkleLog;
use gsp_federation::{PartyCode, UnixMillis};
use serde_json::{Value, json};

/// The verifier's clock: 2027-01-15T08:00:00Z.
pub const NOW: u64 = 1_800_000_000_000;
const DAY: u64 = 86_400_000;

fn seed(label: &str) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, label.as_bytes())
        .as_ref()
        .try_into()
        .unwrap()
}

fn key(label: &str) -> SigningKey {
    SigningKey::from_seed(&seed(&format!("gsp directory vector {label}"))).unwrap()
}

fn party(s: &str) -> PartyCode {
    PartyCode::parse(s).unwrap()
}

pub fn record(p: &str, root: &SigningKey, issued: u64) -> PartyRecord {
    let h = |l: &str| Hex32(seed(&format!("gsp directory vector {p} {l}")));
    PartyRecord {
        format: RECORD_FORMAT.into(),
        party: party(p),
        issued: UnixMillis(issued),
        status: RecordStatus::Active,
        root_key: Hex32(root.verifying_key().0),
        node_urls: vec![format!("https://gsp.{}.example:8443", p.to_lowercase())],
        tls_pins: vec![PinEntry {
            spki_sha256: h("tls"),
            not_before: UnixMillis(NOW - DAY),
            not_after: UnixMillis(u64::MAX),
        }],
        signing_keys: vec![KeyEntry {
            public_key: h("signing"),
            not_before: UnixMillis(NOW - DAY),
            not_after: UnixMillis(u64::MAX),
        }],
        encryption_keys: vec![EncryptionKeyEntry {
            public_key: h("encryption"),
            not_before: UnixMillis(NOW - DAY),
            not_after: UnixMillis(u64::MAX),
            current: true,
        }],
        protocol_versions: vec![1],
        templates: vec![TemplateEntry {
            name: "uid-verification".into(),
            versions: vec![1],
        }],
        focal_points: vec![FocalPoint {
            name: format!("Focal point of {p}"),
            role: "national focal point".into(),
            authority: format!("Customs of {p}"),
            contact: format!("focal@{}.example", p.to_lowercase()),
        }],
        code_patterns: vec![CodePattern {
            kind: PatternKind::Regex,
            pattern: format!("{p}[1-4][0-9A-HJKMNP-TV-Z]{{12}}"),
            issuer: party(p),
            description: format!("unit-level codes of {p}"),
        }],
    }
}

/// Signs without validating (for deliberately invalid records).
fn sign_raw(r: &PartyRecord, root: &SigningKey, bytes: Option<Vec<u8>>) -> SignedRecord {
    let bytes = bytes.unwrap_or_else(|| serde_json::to_vec(r).unwrap());
    SignedRecord {
        root_signature: root.sign(domain::DIRECTORY_RECORD, &bytes),
        bytes,
        record: r.clone(),
        previous_root_signature: None,
    }
}

struct Log {
    log: MerkleLog,
    current: std::collections::BTreeMap<String, u64>,
    key_changes: Vec<u64>,
}

impl Log {
    fn new() -> Self {
        Self {
            log: MerkleLog::new(),
            current: Default::default(),
            key_changes: vec![],
        }
    }
    fn add(&mut self, s: &SignedRecord) -> u64 {
        let i = self
            .log
            .push(LogEntry::record_bytes(s, UnixMillis(NOW - DAY)));
        self.current.insert(s.record.party.to_string(), i);
        if s.previous_root_signature.is_some() {
            self.key_changes.push(i);
        }
        i
    }
    fn doc(&self, sec: &SigningKey, issued: u64, from: Option<u64>) -> SnapshotDoc {
        let cp = Checkpoint::sign(self.log.len(), self.log.root(), UnixMillis(issued), sec);
        let cur: Vec<u64> = self.current.values().copied().collect();
        SnapshotRequest {
            log: &self.log,
            checkpoint: &cp,
            current: &cur,
            key_changes: &self.key_changes,
            from,
            issued: UnixMillis(issued),
            valid_until: UnixMillis(issued + 7 * DAY),
        }
        .build(sec)
        .unwrap()
    }
}

fn base() -> Log {
    let mut l = Log::new();
    for p in ["FRA", "KEN", "BRA"] {
        let root = key(&format!("{p} root"));
        l.add(&SignedRecord::sign(&record(p, &root, NOW - 2 * DAY), &root, None).unwrap());
    }
    l
}

fn vector(
    name: &str,
    expect: &str,
    description: &str,
    previous: Option<&SnapshotDoc>,
    snapshot: &SnapshotDoc,
) -> (String, String) {
    let sec = key("secretariat");
    let v = json!({
        "description": description,
        "expect": expect,
        "secretariat_public_key": hex::encode(sec.verifying_key().0),
        "now": NOW,
        "previous": previous,
        "snapshot": snapshot,
    });
    (
        format!("{name}.json"),
        serde_json::to_string_pretty(&v).unwrap() + "\n",
    )
}

pub fn generate() -> Vec<(String, String)> {
    let sec = key("secretariat");
    let issued = NOW - 3_600_000;
    let mut out = Vec::new();
    let l = base();
    let ok = l.doc(&sec, issued, None);
    out.push(vector(
        "ok",
        "ok",
        "A snapshot of three Parties (FRA, KEN, BRA), each registered once.",
        None,
        &ok,
    ));

    // Rotation (same root key) and a root-key change signed by the old key.
    let mut l2 = base();
    let ken_root = key("KEN root");
    l2.add(&SignedRecord::sign(&record("KEN", &ken_root, NOW - DAY), &ken_root, None).unwrap());
    let fra_old = key("FRA root");
    let fra_new = key("FRA root 2");
    l2.add(
        &SignedRecord::sign(
            &record("FRA", &fra_new, NOW - DAY),
            &fra_new,
            Some(&fra_old),
        )
        .unwrap(),
    );
    let next = l2.doc(&sec, issued, Some(3));
    out.push(vector("ok-successor", "ok", "A successor of `ok`: KEN updates its record, FRA changes its root key with the old key's signature; consistency proof from size 3.", Some(&ok), &next));

    let mut bad = ok.clone();
    if let Some(h) = bad.entries[1].inclusion.first_mut() {
        h.0[0] ^= 1;
    }
    out.push(vector(
        "reject-tampered-inclusion",
        "bad_proof",
        "One hash of KEN's inclusion proof has a flipped bit.",
        None,
        &bad,
    ));
    let mut bad = ok.clone();
    bad.entries[1].inclusion.pop();
    out.push(vector(
        "reject-truncated-inclusion",
        "bad_proof",
        "KEN's inclusion proof lacks its last hash.",
        None,
        &bad,
    ));

    let mut bad = ok.clone();
    let forger = key("not the secretariat");
    let cp = Checkpoint::sign(l.log.len(), l.log.root(), UnixMillis(issued), &sec);
    let cur: Vec<u64> = l.current.values().copied().collect();
    let forged = SnapshotRequest {
        log: &l.log,
        checkpoint: &cp,
        current: &cur,
        key_changes: &[],
        from: None,
        issued: UnixMillis(issued),
        valid_until: UnixMillis(issued + 30 * DAY),
    }
    .build(&forger)
    .unwrap();
    bad.statement = forged.statement;
    out.push(vector(
        "reject-forged-statement",
        "bad_signature",
        "The statement is signed by a key other than the Secretariat's.",
        None,
        &bad,
    ));

    let old = l.doc(&sec, NOW - 8 * DAY, None);
    out.push(vector(
        "reject-expired",
        "snapshot_expired",
        "Issued 8 days before `now`, valid for 7.",
        None,
        &old,
    ));

    let mut big = Log::new();
    let root = key("KEN root");
    let mut r = record("KEN", &root, NOW - DAY);
    r.focal_points[0].contact = "x".repeat(70_000);
    big.add(&sign_raw(&r, &root, None));
    out.push(vector(
        "reject-oversize-record",
        "too_large",
        "KEN's record is 70,000 bytes and more (limit 65,536).",
        None,
        &big.doc(&sec, issued, None),
    ));

    let mut pat = Log::new();
    let mut r = record("KEN", &root, NOW - DAY);
    r.code_patterns[0].pattern = "KEN([0-9]".into();
    pat.add(&sign_raw(&r, &root, None));
    out.push(vector(
        "reject-malformed-pattern",
        "bad_pattern",
        "KEN's regular expression does not compile.",
        None,
        &pat.doc(&sec, issued, None),
    ));

    // Root-key change without the old key's signature (the Secretariat's swap).
    let mut swap = base();
    let evil = key("KEN evil root");
    swap.add(&SignedRecord::sign(&record("KEN", &evil, NOW - DAY), &evil, None).unwrap());
    out.push(vector(
        "reject-root-key-swap",
        "root_key_changed",
        "After `ok`, KEN's record appears under a new root key without the old key's signature.",
        Some(&ok),
        &swap.doc(&sec, issued, Some(3)),
    ));

    let small = {
        let mut s = Log::new();
        let fra = key("FRA root");
        s.add(&SignedRecord::sign(&record("FRA", &fra, NOW - 2 * DAY), &fra, None).unwrap());
        s.doc(&sec, issued, None)
    };
    out.push(vector(
        "reject-rollback",
        "rollback",
        "After `ok` (3 entries) the directory serves a log of 1 entry.",
        Some(&ok),
        &small,
    ));

    let mut fork = Log::new();
    for p in ["FRA", "KEN", "BRA"] {
        let root = key(&format!("{p} root"));
        fork.add(&SignedRecord::sign(&record(p, &root, NOW - 2 * DAY + 1), &root, None).unwrap());
    }
    out.push(vector(
        "reject-fork",
        "fork",
        "After `ok` the directory serves another log of the same size.",
        Some(&ok),
        &fork.doc(&sec, issued, Some(3)),
    ));

    let index = json!({
        "format": "gsp-directory-vectors/1",
        "vectors": out.iter().map(|(n, c)| {
            let v: Value = serde_json::from_str(c).unwrap();
            json!({"file": n, "expect": v["expect"], "description": v["description"]})
        }).collect::<Vec<_>>(),
    });
    out.push((
        "index.json".into(),
        serde_json::to_string_pretty(&index).unwrap() + "\n",
    ));
    out
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/directory");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, contents) in generate() {
        std::fs::write(dir.join(&name), contents).unwrap();
    }
    println!("wrote {}", dir.display());
}
