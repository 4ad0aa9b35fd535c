//! `gsp demo`, the README's main job: one command brings up a directory and
//! four Party nodes, runs real exchanges, writes demo.json, and stops cleanly
//! on SIGTERM.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsp_tests::{Server, gsp_bin};
use serde_json::Value;
use std::time::{Duration, Instant};

#[test]
fn the_demo_runs_a_federation_and_describes_it() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("federation");
    let mut child = std::process::Command::new(gsp_bin())
        .args(["demo", "--dir", folder.to_str().unwrap(), "--packs", "5000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let demo_json = folder.join("demo.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !demo_json.exists() {
        assert!(Instant::now() < deadline, "demo.json never appeared");
        assert!(child.try_wait().unwrap().is_none(), "gsp demo exited early");
        std::thread::sleep(Duration::from_millis(200));
    }
    // gsp re-executed itself once (same process id) with glibc's malloc
    // threshold fixed, so large buffers are returned when freed.
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|v| v == b"MALLOC_MMAP_THRESHOLD_=131072"),
        "the running demo has no fixed malloc threshold"
    );
    let demo: Value = serde_json::from_slice(&std::fs::read(&demo_json).unwrap()).unwrap();
    let parties = demo["parties"].as_array().unwrap();
    let codes: Vec<&str> = parties
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["EU", "KEN", "PAK", "SEN"]);
    assert!(
        demo["directory"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );

    // Every node answers with the demo credentials and holds the exchanges.
    let mut states = Vec::new();
    for p in parties {
        assert!(std::path::Path::new(p["config"].as_str().unwrap()).exists());
        assert!(
            std::path::Path::new(p["keys"].as_str().unwrap())
                .join("identity.json")
                .exists()
        );
        let mut api = Server::detached(p["api_url"].as_str().unwrap().to_owned());
        api.login(
            p["officer"]["username"].as_str().unwrap(),
            p["officer"]["password"].as_str().unwrap(),
        );
        let cases: Value = api.get("/api/v1/cases").json().unwrap();
        for c in cases["cases"].as_array().unwrap() {
            states.push(format!(
                "{} {} {} {}",
                p["code"].as_str().unwrap(),
                c["role"].as_str().unwrap(),
                c["template"].as_str().unwrap(),
                c["state"].as_str().unwrap()
            ));
        }
    }
    states.sort();
    for expected in [
        "KEN requester uid-verification answered_full",
        "PAK responder uid-verification answered_full",
        "EU requester supply-chain-trace answered_full",
        "SEN responder supply-chain-trace answered_full",
        "PAK requester free-text answered_full",
        "KEN responder free-text answered_full",
    ] {
        assert!(
            states.iter().any(|s| s == expected),
            "{expected} not in {states:#?}"
        );
    }

    // SIGTERM stops the demo and every process it started.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert!(s.success(), "gsp demo exited with {s}");
            break;
        }
        assert!(Instant::now() < deadline, "gsp demo did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    let api = parties[0]["api_url"].as_str().unwrap();
    let still = gsp_tests::http().get(format!("{api}/api/v1/health")).send();
    assert!(
        still.is_err(),
        "a node is still running after the demo stopped"
    );
}
