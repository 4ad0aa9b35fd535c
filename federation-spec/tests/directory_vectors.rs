//! The committed directory vectors (`vectors/directory/`): each snapshot is
//! verified from its JSON alone (Secretariat key, clock, previous copy) with
//! the expected outcome, and the generator reproduces every file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/make-directory-vectors.rs"]
#[allow(unused_imports)]
mod make_directory_vectors;

use gsp_federation::UnixMillis;
use gsp_federation::directory::SnapshotDoc;
use gsp_federation::keys::VerifyingKey;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/directory")
}

fn outcome(v: &Value) -> String {
    let mut k = [0u8; 32];
    hex::decode_to_slice(v["secretariat_public_key"].as_str().unwrap(), &mut k).unwrap();
    let key = VerifyingKey(k);
    let now = UnixMillis(v["now"].as_u64().unwrap());
    let doc: SnapshotDoc = serde_json::from_value(v["snapshot"].clone()).unwrap();
    let next = match doc.verify(&key, now) {
        Ok(n) => n,
        Err(e) => return e.code().to_owned(),
    };
    if !v["previous"].is_null() {
        let prev: SnapshotDoc = serde_json::from_value(v["previous"].clone()).unwrap();
        let prev = prev.verify_ignoring_time(&key).unwrap();
        if let Err(e) = prev.check_successor(&next) {
            return e.code().to_owned();
        }
    }
    "ok".into()
}

#[test]
fn every_vector_gives_its_expected_outcome() {
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("index.json")).unwrap()).unwrap();
    let list = index["vectors"].as_array().unwrap();
    assert!(list.len() >= 10);
    for e in list {
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(dir().join(e["file"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        assert_eq!(outcome(&v), v["expect"].as_str().unwrap(), "{}", e["file"]);
    }
}

#[test]
fn the_generator_reproduces_the_committed_files() {
    for (name, contents) in make_directory_vectors::generate() {
        let committed = std::fs::read_to_string(dir().join(&name)).unwrap_or_default();
        assert!(
            committed == contents,
            "vectors/directory/{name} is stale: run `cargo run -p gsp-federation --example make-directory-vectors`"
        );
    }
}
