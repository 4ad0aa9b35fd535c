//! Directory read throughput: a real directory (SQLite, 200 registered
//! Parties) on loopback, and HTTPS clients (TLS 1.3, pinned, keep-alive)
//! fetching the public checkpoint and, with a registered node's certificate,
//! the full snapshot. Prints requests per second; figures in BENCHMARKS.md.
//!
//! `cargo run --release -p gsp-node --example directory-read-bench [SECONDS] [CONCURRENCY]`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use gsp_federation::UnixMillis;
use gsp_node::config::Config;
use gsp_node::directory::record::{RecordInputs, build_record, demo_details};
use gsp_node::directory::server::{DirectoryServer, admin, http, secretariat};
use gsp_node::storage::{Database, DatabaseUrl};
use gsp_node::tls::{self, StaticPins};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let conc: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    tls::install_default_provider();
    let tmp = tempfile::tempdir().unwrap();
    let now = UnixMillis::now();
    secretariat::init(tmp.path(), &["127.0.0.1".into()], false, now).unwrap();
    let sec = secretariat::load(tmp.path()).unwrap();
    let db = Database::open(
        &DatabaseUrl::Sqlite(tmp.path().join("dir.db")),
        &Config::default().database,
    )
    .unwrap();
    let vk = sec.key.verifying_key();
    let mut codes = Vec::new();
    for a in b'A'..=b'Z' {
        for b in b'A'..=b'Z' {
            for c in b'A'..=b'Z' {
                if let Some(p) = gsp_federation::PartyCode::from_bytes(&[a, b, c]) {
                    codes.push(p);
                }
            }
        }
    }
    codes.truncate(200);
    let mut client_tls = None;
    let t = Instant::now();
    for p in &codes {
        let id = gsp_certs::init(&gsp_certs::InitOptions {
            party: *p,
            hosts: vec!["127.0.0.1".into()],
            dir: tmp.path().join(p.as_str()),
            force: false,
            tls_days: 30,
            now,
        })
        .unwrap();
        let (f, c) = demo_details(*p);
        let rec = build_record(
            &id,
            &RecordInputs {
                node_urls: vec!["https://127.0.0.1:9/".into()],
                focal_points: f,
                code_patterns: c,
                templates: None,
                status: gsp_federation::directory::RecordStatus::Active,
                issued: now,
            },
            None,
        )
        .unwrap();
        admin::submit(&db, &vk, &rec.to_submission(), now).unwrap();
        admin::approve(&db, &vk, *p, &rec.record.root_key().fingerprint(), now).unwrap();
        if client_tls.is_none() {
            client_tls = Some(id.tls().unwrap());
        }
    }
    eprintln!("registered {} Parties in {:?}", codes.len(), t.elapsed());
    let pin = sec.tls.spki_sha256;
    let server = Arc::new(DirectoryServer::new(db, sec, Duration::from_secs(7 * 86_400)).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let (running, addr) = http::bind(server, "127.0.0.1:0".parse().unwrap(), 1).unwrap();
            tx.send(addr).unwrap();
            running.await
        })
    });
    let addr = rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for (name, path, cert) in [
        ("checkpoint (public)", "/directory/v1/checkpoint", false),
        (
            "snapshot of 200 Parties (registered node)",
            "/directory/v1/snapshot",
            true,
        ),
    ] {
        let cfg = tls::client_config(
            Arc::new(StaticPins::one(pin)),
            if cert { client_tls.as_ref() } else { None },
        )
        .unwrap();
        let client = tls::http_client(cfg, Duration::from_secs(30)).unwrap();
        let done = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let url = format!("https://{addr}{path}");
        let end = Instant::now() + Duration::from_secs(secs);
        rt.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..conc {
                let (client, url, done, bytes) =
                    (client.clone(), url.clone(), done.clone(), bytes.clone());
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < end {
                        let r = client.get(&url).send().await.unwrap();
                        assert!(r.status().is_success(), "{}", r.status());
                        let b = r.bytes().await.unwrap();
                        bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let n = done.load(Ordering::Relaxed);
        println!(
            "{name}: {n} requests in {secs} s = {:.0}/s ({:.1} MB/s), {conc} concurrent, 1 server worker",
            n as f64 / secs as f64,
            bytes.load(Ordering::Relaxed) as f64 / secs as f64 / 1e6
        );
    }
}
