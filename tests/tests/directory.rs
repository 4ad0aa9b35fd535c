//! The Secretariat directory end to end, through the real `gsp` binary: a
//! directory and Party nodes on loopback with generated keys, on SQLite and
//! PostgreSQL. Registration and approval, rotation with overlap, a record
//! signed by the wrong key, revocation, whois, a node that keeps working with
//! the directory stopped and fails closed after expiry, and a hostile
//! Secretariat that edits its database (key swap, rollback, fork).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::prelude::*;
use gsp_federation::directory::{LogEntry, SignedRecord};
use gsp_federation::keys::{SigningKey, VerifyingKey};
use gsp_federation::{PartyCode, UnixMillis};
use gsp_node::config::Config;
use gsp_node::directory::client::cache;
use gsp_node::for_each_backend;
use gsp_node::storage::Database;
use gsp_node::storage::schema::directory_log;
use gsp_tests::directory::{DirectorySite, NodeSite, ok};
use gsp_tests::{stderr, stdout};
use std::time::Duration;

fn secretariat(d: &DirectorySite) -> VerifyingKey {
    let mut k = [0u8; 32];
    hex::decode_to_slice(d.info["secretariat_key"].as_str().unwrap(), &mut k).unwrap();
    VerifyingKey(k)
}

fn copy_of(n: &NodeSite, d: &DirectorySite) -> gsp_node::directory::VerifiedDirectory {
    cache::load(n.site.dir.path(), &secretariat(d))
        .unwrap()
        .expect("a directory copy")
}

fn status(n: &NodeSite) -> (i32, serde_json::Value) {
    let out = n.site.run(&["status", "--json"]);
    let v = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (out.status.code().unwrap_or(-1), v)
}

fn register_and_approve(n: &NodeSite, d: &DirectorySite) {
    let rec = n.record();
    let out = ok(&n
        .site
        .run(&["directory", "register", rec.to_str().unwrap()]));
    assert!(out.contains("pending"), "{out}");
    ok(&d.site.run(&[
        "directory",
        "approve",
        &n.party,
        "--root-fingerprint",
        &n.root_fingerprint(),
    ]));
}

fn code_of(party: &str) -> String {
    format!("{party}1ABCDEFGHJKMN")
}

for_each_backend! {
    fn registration_rotation_revocation_and_a_stopped_directory(backend: Backend) {
        let d = DirectorySite::new(backend);
        let server = d.serve(600);
        let ken = NodeSite::new(backend, "KEN", &d, &server.url);
        let fra = NodeSite::new(backend, "FRA", &d, &server.url);

        // Registration: pending until approved with the right fingerprint.
        let rec = ken.record();
        let out = ok(&ken.site.run(&["directory", "register", rec.to_str().unwrap()]));
        assert!(out.contains("pending") && out.contains(&ken.root_fingerprint()), "{out}");
        let list = ok(&d.site.run(&["directory", "list"]));
        assert!(list.contains("KEN") && list.contains("pending"), "{list}");
        let wrong = d.site.run(&["directory", "approve", "KEN", "--root-fingerprint", &fra.root_fingerprint()]);
        assert!(!wrong.status.success());
        assert!(stderr(&wrong).contains("not approve"), "{}", stderr(&wrong));
        ok(&d.site.run(&["directory", "approve", "KEN", "--root-fingerprint", &ken.root_fingerprint().to_lowercase()]));
        register_and_approve(&fra, &d);
        let list: serde_json::Value = serde_json::from_str(&ok(&d.site.run(&["directory", "list", "--json"]))).unwrap();
        assert_eq!(list["tree_size"], 2, "{list}");

        // A node that has not fetched yet is not healthy.
        let (code, s) = status(&ken);
        assert_eq!(code, 2, "{s}");
        // The running directory picks up approvals within a second.
        std::thread::sleep(Duration::from_millis(1500));
        ok(&ken.site.run(&["directory", "refresh"]));
        ok(&fra.site.run(&["directory", "refresh"]));
        let (code, s) = status(&ken);
        assert_eq!(code, 0, "{s}");
        assert_eq!(s["directory"]["tree_size"], 2);
        let copy = copy_of(&ken, &d);
        assert_eq!(copy.active_parties().len(), 2);

        // Whois: the pattern library names the issuer and its focal points.
        let who = ok(&fra.site.run(&["whois", &code_of("KEN")]));
        assert!(who.contains("KEN") && who.contains("focal point"), "{who}");
        let none = fra.site.run(&["whois", "ZZZ-not-a-known-code"]);
        assert!(!none.status.success());

        // Rotation with overlap: the update is accepted at once, both keys published.
        ok(&ken.site.run(&["certs", "rotate", ken.site.dir.path().join("keys").to_str().unwrap(), "--signing", "--overlap", "2h"]));
        let rec = ken.record();
        let out = ok(&ken.site.run(&["directory", "register", rec.to_str().unwrap()]));
        assert!(out.contains("accepted"), "{out}");
        std::thread::sleep(Duration::from_millis(1500));
        ok(&fra.site.run(&["directory", "refresh"]));
        let copy = copy_of(&fra, &d);
        let k = copy.record(PartyCode::parse("KEN").unwrap()).unwrap();
        assert_eq!(k.signing_keys.len(), 2, "current and overlapping signing keys");
        assert_eq!(copy.checkpoint().size, 3);

        // A record for KEN signed by another root key is refused, nothing logged.
        let evil = NodeSite::new(backend, "KEN", &d, &server.url);
        let rec = evil.record();
        let out = evil.site.run(&["directory", "register", rec.to_str().unwrap()]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("wrong_root_key"), "{}", stderr(&out));
        let list: serde_json::Value = serde_json::from_str(&ok(&d.site.run(&["directory", "list", "--json"]))).unwrap();
        assert_eq!(list["tree_size"], 3);

        // KEN's node keeps working from its copy with the directory stopped.
        ok(&ken.site.run(&["directory", "refresh"]));
        ken.site.add_user("officer1", &["officer"], "a long demo password");
        let mut api = ken.site.serve();
        api.login("officer1", "a long demo password");
        server.kill();
        std::thread::sleep(Duration::from_millis(1500));
        let r = api.get(&format!("/api/v1/whois/{}", code_of("FRA")));
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().unwrap();
        assert_eq!(v["matches"][0]["party"], "FRA", "{v}");
        assert!(v["directory"]["stale"].is_null(), "{v}");
        let (code, s) = status(&ken);
        assert_eq!(code, 0, "{s}");
        assert!(s["directory"]["last_refresh"]["last_error"].as_str().unwrap_or_default().contains("unreachable"), "{s}");
        api.kill();

        // Revocation by the Secretariat: FRA leaves the nodes' view.
        let server = d.serve(4);
        NodeSite::write_config(&ken.site, "KEN", &d, &server.url);
        ok(&d.site.run(&["directory", "revoke", "FRA", "--reason", "test revocation"]));
        std::thread::sleep(Duration::from_millis(1500));
        ok(&ken.site.run(&["directory", "refresh"]));
        let copy = copy_of(&ken, &d);
        assert!(copy.active(PartyCode::parse("FRA").unwrap()).is_none());
        assert!(!ken.site.run(&["whois", &code_of("FRA")]).status.success());

        // Fail closed after expiry: the snapshot was valid for 4 seconds.
        server.kill();
        std::thread::sleep(Duration::from_millis(4500));
        let (code, s) = status(&ken);
        assert_eq!(code, 2, "{s}");
        assert_eq!(s["directory"]["usable"], false);
        assert!(s["directory"]["reason"].as_str().unwrap().contains("expired"), "{s}");
        let refresh = ken.site.run(&["directory", "refresh"]);
        assert!(!refresh.status.success());
        assert!(stderr(&refresh).contains("unreachable"), "{}", stderr(&refresh));
    }

    fn a_hostile_secretariat_is_detected(backend: Backend) {
        let d = DirectorySite::new(backend);
        let mut server = d.serve(600);
        let ken = NodeSite::new(backend, "KEN", &d, &server.url);
        let fra = NodeSite::new(backend, "FRA", &d, &server.url);
        register_and_approve(&ken, &d);
        register_and_approve(&fra, &d);
        std::thread::sleep(Duration::from_millis(1500));
        ok(&ken.site.run(&["directory", "refresh"]));
        ok(&fra.site.run(&["directory", "refresh"]));
        let good = copy_of(&fra, &d);

        // The Secretariat swaps KEN's root key by writing a self-signed record
        // straight into its database, then serves it.
        let db = Database::open(&d.site.db.url, &Config::default().database).unwrap();
        let mut record = good.record(PartyCode::parse("KEN").unwrap()).unwrap().clone();
        let evil = SigningKey::generate().unwrap();
        record.root_key = gsp_federation::directory::Hex32(evil.verifying_key().0);
        record.issued = UnixMillis::now();
        let signed = SignedRecord::sign(&record, &evil, None).unwrap();
        let bytes = LogEntry::record_bytes(&signed, UnixMillis::now());
        {
            let mut conn = db.conn().unwrap();
            diesel::insert_into(directory_log::table)
                .values((
                    directory_log::leaf_index.eq(2i64),
                    directory_log::party.eq("KEN"),
                    directory_log::kind.eq(1i16),
                    directory_log::entry.eq(&bytes),
                    directory_log::leaf_hash.eq(gsp_federation::log::leaf_hash(&bytes).to_vec()),
                    directory_log::logged_at.eq(0i64),
                ))
                .execute(&mut *conn)
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(1500));
        for node in [&fra, &ken] {
            let out = node.site.run(&["directory", "refresh"]);
            assert!(!out.status.success());
            assert!(stderr(&out).contains("root key of KEN changed"), "{}", stderr(&out));
            // Nothing cached: the last good copy stays.
            assert_eq!(copy_of(node, &d).checkpoint().size, 2);
            let (code, s) = status(node);
            assert_eq!(code, 2, "{s}");
            assert_eq!(s["alarms"][0]["kind"], "directory_rejected", "{s}");
        }

        // Rollback: the Secretariat deletes entries.
        {
            let mut conn = db.conn().unwrap();
            diesel::delete(directory_log::table.filter(directory_log::leaf_index.ge(1i64)))
                .execute(&mut *conn)
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(1500));
        let out = ken.site.run(&["directory", "refresh"]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("rollback"), "{}", stderr(&out));

        // Fork: same size, different history (FRA's entry rewritten by hand).
        {
            let mut conn = db.conn().unwrap();
            let mut rec = good.record(PartyCode::parse("FRA").unwrap()).unwrap().clone();
            rec.node_urls = vec!["https://attacker.example:443".into()];
            rec.root_key = gsp_federation::directory::Hex32(evil.verifying_key().0);
            let forged = LogEntry::record_bytes(&SignedRecord::sign(&rec, &evil, None).unwrap(), UnixMillis::now());
            diesel::insert_into(directory_log::table)
                .values((
                    directory_log::leaf_index.eq(1i64),
                    directory_log::party.eq("FRA"),
                    directory_log::kind.eq(1i16),
                    directory_log::entry.eq(&forged),
                    directory_log::leaf_hash.eq(gsp_federation::log::leaf_hash(&forged).to_vec()),
                    directory_log::logged_at.eq(0i64),
                ))
                .execute(&mut *conn)
                .unwrap();
        }
        server.kill();
        server = d.serve(600);
        NodeSite::write_config(&fra.site, "FRA", &d, &server.url);
        let out = fra.site.run(&["directory", "refresh"]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains("fork") || err.contains("signature"), "{err}");
        assert_eq!(copy_of(&fra, &d).checkpoint().size, 2);
        drop(server);
    }
}
