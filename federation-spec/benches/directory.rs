//! Directory snapshot benchmarks: verifying a snapshot of 200 Parties cold
//! (JSON parse, Secretariat signatures, 200 inclusion proofs, 200 record
//! parses and root-key signatures, code-pattern compilation), checking it as
//! the successor of the previous copy, and building one (the server's cost).
//! Figures in `BENCHMARKS.md` ("Directory").

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use gsp_federation::directory::record::RECORD_FORMAT;
use gsp_federation::directory::*;
use gsp_federation::keys::SigningKey;
use gsp_federation::log::MerkleLog;
use gsp_federation::{PartyCode, UnixMillis};
use std::hint::black_box;

const PARTIES: usize = 200;
const NOW: u64 = 1_800_000_000_000;

fn seed(label: &str) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, label.as_bytes())
        .as_ref()
        .try_into()
        .unwrap()
}

fn record(party: PartyCode, root: &SigningKey, issued: u64) -> PartyRecord {
    let h = |l: &str| Hex32(seed(&format!("{party} {l} {issued}")));
    PartyRecord {
        format: RECORD_FORMAT.into(),
        party,
        issued: UnixMillis(issued),
        status: RecordStatus::Active,
        root_key: Hex32(root.verifying_key().0),
        node_urls: vec![format!(
            "https://gsp.{}.example:8443",
            party.as_str().to_lowercase()
        )],
        tls_pins: vec![PinEntry {
            spki_sha256: h("tls"),
            not_before: UnixMillis(0),
            not_after: UnixMillis(u64::MAX),
        }],
        signing_keys: vec![KeyEntry {
            public_key: h("sign"),
            not_before: UnixMillis(0),
            not_after: UnixMillis(u64::MAX),
        }],
        encryption_keys: vec![EncryptionKeyEntry {
            public_key: h("enc"),
            not_before: UnixMillis(0),
            not_after: UnixMillis(u64::MAX),
            current: true,
        }],
        protocol_versions: vec![1],
        templates: [
            "uid-verification",
            "supply-chain-trace",
            "seizure",
            "operator-licence",
            "free-text",
        ]
        .iter()
        .map(|n| TemplateEntry {
            name: (*n).into(),
            versions: vec![1],
        })
        .collect(),
        focal_points: (0..3)
            .map(|i| FocalPoint {
                name: format!("Officer {i} of {party}"),
                role: "national focal point".into(),
                authority: format!("Customs and excise of {party}"),
                contact: format!(
                    "focal{i}@{}.example, +1 555 0100",
                    party.as_str().to_lowercase()
                ),
            })
            .collect(),
        code_patterns: vec![
            CodePattern {
                kind: PatternKind::Regex,
                pattern: format!("{party}[1-4][0-9A-HJKMNP-TV-Z]{{12}}"),
                issuer: party,
                description: "unit-level codes".into(),
            },
            CodePattern {
                kind: PatternKind::Prefix,
                pattern: format!("01{party}"),
                issuer: party,
                description: "GS1 codes".into(),
            },
        ],
    }
}

struct Setup {
    old_json: Vec<u8>,
    new_json: Vec<u8>,
    key: SigningKey,
    log: MerkleLog,
    current: Vec<u64>,
    checkpoint: Checkpoint,
}

fn setup() -> Setup {
    let key = SigningKey::from_seed(&seed("secretariat")).unwrap();
    let codes: Vec<PartyCode> = [
        "ABW", "AFG", "AGO", "ALB", "AND", "ARE", "ARG", "ARM", "ATG", "AUS",
    ]
    .iter()
    .map(|c| PartyCode::parse(c).unwrap())
    .collect();
    // 200 distinct Party codes: take the first 200 of the ISO table by probing.
    let mut all = Vec::new();
    for a in b'A'..=b'Z' {
        for b in b'A'..=b'Z' {
            for c in b'A'..=b'Z' {
                if let Some(p) = PartyCode::from_bytes(&[a, b, c]) {
                    all.push(p);
                }
            }
        }
    }
    assert!(codes.iter().all(|c| all.contains(c)));
    all.truncate(PARTIES);
    let mut log = MerkleLog::new();
    let mut current = std::collections::BTreeMap::new();
    let roots: Vec<SigningKey> = all
        .iter()
        .map(|p| SigningKey::from_seed(&seed(&format!("root {p}"))).unwrap())
        .collect();
    for round in 0..2u64 {
        for (p, root) in all.iter().zip(&roots) {
            let signed =
                SignedRecord::sign(&record(*p, root, NOW - 1000 + round), root, None).unwrap();
            let i = log.push(LogEntry::record_bytes(&signed, UnixMillis(NOW)));
            current.insert(*p, i);
        }
        if round == 0 {
            // the "previous copy": a snapshot of the first round
        }
    }
    let build = |log: &MerkleLog, cur: &[u64], from: Option<u64>| {
        let cp = Checkpoint::sign(log.len(), log.root(), UnixMillis(NOW), &key);
        let doc = SnapshotRequest {
            log,
            checkpoint: &cp,
            current: cur,
            key_changes: &[],
            from,
            issued: UnixMillis(NOW),
            valid_until: UnixMillis(NOW + 7 * 86_400_000),
        }
        .build(&key)
        .unwrap();
        (serde_json::to_vec(&doc).unwrap(), cp)
    };
    let half = MerkleLog::from_leaves((0..PARTIES as u64).map(|i| log.leaf(i).unwrap().to_vec()));
    let old_cur: Vec<u64> = (0..PARTIES as u64).collect();
    let (old_json, _) = build(&half, &old_cur, None);
    let cur: Vec<u64> = current.values().copied().collect();
    let (new_json, checkpoint) = build(&log, &cur, Some(PARTIES as u64));
    Setup {
        old_json,
        new_json,
        key,
        log,
        current: cur,
        checkpoint,
    }
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let vk = s.key.verifying_key();
    let now = UnixMillis(NOW + 1000);
    println!(
        "snapshot of {PARTIES} Parties: {} bytes of JSON",
        s.new_json.len()
    );
    c.bench_function(
        "verify snapshot of 200 Parties, cold (parse + every check)",
        |b| {
            b.iter(|| {
                let doc = SnapshotDoc::from_json(black_box(&s.new_json)).unwrap();
                black_box(doc.verify(&vk, now).unwrap())
            })
        },
    );
    let prev = SnapshotDoc::from_json(&s.old_json)
        .unwrap()
        .verify(&vk, now)
        .unwrap();
    let next = SnapshotDoc::from_json(&s.new_json)
        .unwrap()
        .verify(&vk, now)
        .unwrap();
    c.bench_function(
        "check_successor (consistency proof, 200 Party histories)",
        |b| b.iter(|| black_box(prev.check_successor(black_box(&next)).unwrap())),
    );
    c.bench_function("build and sign a snapshot of 200 Parties (server)", |b| {
        b.iter(|| {
            let doc = SnapshotRequest {
                log: &s.log,
                checkpoint: &s.checkpoint,
                current: &s.current,
                key_changes: &[],
                from: None,
                issued: UnixMillis(NOW),
                valid_until: UnixMillis(NOW + 1),
            }
            .build(&s.key)
            .unwrap();
            black_box(serde_json::to_vec(&doc).unwrap())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
