//! The data store through the real `gsp` binary: gen, import, trace and the
//! local HTTP API of `gsp serve`, on SQLite and PostgreSQL.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsp_node::for_each_backend;
use gsp_tests::{Site, stderr, stdout};
use serde_json::{Value, json};

fn first_code(file: &std::path::Path, level: &str) -> String {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("code,") && l.split(',').nth(2) == Some(level))
        .map(|l| l.split(',').nth(1).unwrap().to_owned())
        .unwrap()
}

for_each_backend! {
    fn gen_import_trace_from_the_command_line(backend: Backend) {
        let site = Site::new(backend);
        let file = site.dir.path().join("ken.csv");
        let out = site.run(&["gen", "--packs", "5000", "--party", "KEN", "--seed", "2", "--out", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = site.run(&["import", "--quiet", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("codes new"), "{}", stdout(&out));
        let again = site.run(&["import", "--json", file.to_str().unwrap()]);
        let report: Value = serde_json::from_str(stdout(&again).trim()).unwrap();
        assert_eq!(report["already_imported"], true);

        let pack = first_code(&file, "unit");
        let out = site.run(&["trace", &pack]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("(g) product") && text.contains("(b) facility") && text.contains("EUA"), "{text}");
        let out = site.run(&["trace", "--json", &pack]);
        let t: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(t["code"], pack.as_str());
        assert_eq!(t["parents"][0]["level"], "carton");

        let out = site.run(&["trace", "KEN1DOESNOTEXIST0"]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("not found"), "{}", stderr(&out));

        let bad = site.dir.path().join("bad.csv");
        std::fs::write(&bad, "#gsp-csv,1\noperator,X,Name\nfacility,F,NOPE,Site\n").unwrap();
        let out = site.run(&["import", bad.to_str().unwrap()]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains("bad.csv") && err.contains("line 3") && err.contains("NOPE"), "{err}");
    }

    fn the_local_api_answers_in_json(backend: Backend) {
        let site = Site::new(backend);
        let file = site.dir.path().join("ken.csv");
        assert!(site.run(&["gen", "--packs", "3000", "--out", file.to_str().unwrap()]).status.success());
        assert!(site.run(&["import", "-q", file.to_str().unwrap()]).status.success());
        site.add_user("officer1", &["officer"], "a long demo password");
        let mut server = site.serve();

        let r = server.get("/api/v1/health");
        assert_eq!(r.status(), 200);
        // Everything else needs a session.
        let r = server.get("/api/v1/codes/KEN1NOPE");
        assert_eq!(r.status(), 401);
        let e: Value = r.json().unwrap();
        assert_eq!(e["error"]["code"], "unauthorized");
        server.login("officer1", "a long demo password");
        let pack = first_code(&file, "unit");
        let r = server.get(&format!("/api/v1/codes/{pack}"));
        assert_eq!(r.status(), 200);
        let t: Value = r.json().unwrap();
        assert_eq!(t["code"], pack.as_str());
        assert!(t["art_8_4_1"]["product"]["description"].is_string(), "{t}");

        let r = server.get("/api/v1/codes/KEN1NOPE");
        assert_eq!(r.status(), 404);
        let e: Value = r.json().unwrap();
        assert_eq!(e["error"]["code"], "not_found");

        let carton = first_code(&file, "carton");
        let r = server.get(&format!("/api/v1/events?MATCH_parentID={carton}"));
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/ld+json"));
        let doc: Value = r.json().unwrap();
        assert_eq!(doc["type"], "EPCISQueryDocument");
        let list = doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["childEPCs"].as_array().unwrap().len(), 20);

        let r = server.get("/api/v1/events?perPage=2");
        assert_eq!(r.status(), 200);
        let link = r.headers().get("link").expect("a next-page link").to_str().unwrap().to_owned();
        assert!(link.contains("nextPageToken=") && link.contains("rel=\"next\""), "{link}");
        let next = link.trim_start_matches('<').split('>').next().unwrap();
        assert_eq!(server.get(next).status(), 200);

        let r = server.get("/api/v1/events?GE_eventTime=yesterday");
        assert_eq!(r.status(), 400);
        let e: Value = r.json().unwrap();
        assert_eq!(e["error"]["code"], "bad_request");
        assert!(e["error"]["message"].as_str().unwrap().contains("GE_eventTime"));

        let r = server.post_json("/api/v1/lookup", &json!({"codes": [pack, "KEN1UNKNOWN00000"]}));
        assert_eq!(r.status(), 200);
        let v: Value = r.json().unwrap();
        assert_eq!(v["results"][0]["status"], "known");
        assert_eq!(v["results"][1]["status"], "unknown");
        let r = server.post_json("/api/v1/lookup", &json!({"codez": []}));
        assert_eq!(r.status(), 400);
        let r = gsp_tests::http()
            .post(format!("{}/api/v1/lookup", server.base))
            .bearer_auth(server.token.as_deref().unwrap())
            .header("content-type", "application/json")
            .body(vec![b' '; 17 * 1024 * 1024])
            .send()
            .unwrap();
        assert_eq!(r.status(), 413);
    }

    fn a_session_ends_at_logout_at_once_and_for_a_disabled_user_soon(backend: Backend) {
        let site = Site::new(backend);
        site.add_user("officer1", &["officer"], "a long demo password");
        let mut server = site.serve();
        server.login("officer1", "a long demo password");
        // Twice: the second call is served from the node's session cache.
        assert_eq!(server.get("/api/v1/me").status(), 200);
        assert_eq!(server.get("/api/v1/me").status(), 200);
        let token = server.token.clone().unwrap();
        let r = gsp_tests::http()
            .delete(format!("{}/api/v1/session", server.base))
            .bearer_auth(&token)
            .send()
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(server.get("/api/v1/me").status(), 401, "a logged-out token is refused at once");

        // Disabled by another process: refused once the node reads the
        // session again (documented: within 2 s).
        server.login("officer1", "a long demo password");
        assert_eq!(server.get("/api/v1/me").status(), 200);
        let out = site.run(&["user", "disable", "officer1"]);
        assert!(out.status.success(), "{}", gsp_tests::stderr(&out));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let status = server.get("/api/v1/me").status();
            if status == 401 {
                break;
            }
            assert_eq!(status, 200);
            assert!(std::time::Instant::now() < deadline, "a disabled user's session still works");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    fn a_killed_import_leaves_nothing_and_can_be_redone(backend: Backend) {
        let site = Site::new(backend);
        let file = site.dir.path().join("big.csv");
        assert!(site.run(&["gen", "--packs", "150000", "--out", file.to_str().unwrap()]).status.success());
        let mut child = site.gsp().args(["import", "-q", file.to_str().unwrap()]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1000));
        let finished_early = child.try_wait().unwrap().is_some();
        child.kill().unwrap();
        let _ = child.wait();
        let out = site.run(&["import", "--json", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let report: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        if !finished_early {
            // The killed import committed nothing: the second one found no
            // earlier import of this file and wrote every code itself.
            assert_eq!(report["already_imported"], false, "{report}");
            assert!(report["stats"]["codes_new"].as_u64().unwrap() > 150_000, "{report}");
        }
    }

    fn metrics_ask_for_the_configured_token(backend: Backend) {
        let site = Site::new(backend);
        let out = site.run(&["config", "metrics-token"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let printed = stdout(&out);
        let token = printed.lines().find_map(|l| l.split_once("keep it secret): ")).map(|(_, t)| t.trim().to_owned()).expect("a token line");
        let line = printed.lines().find(|l| l.starts_with("metrics_token_sha256 = ")).expect("a config line");
        std::fs::write(site.dir.path().join("gsp.toml"), format!("[api]\n{line}\n")).unwrap();
        let server = site.serve();
        let get = |bearer: Option<&str>| {
            let mut r = gsp_tests::http().get(format!("{}/metrics", server.base));
            if let Some(t) = bearer {
                r = r.bearer_auth(t);
            }
            r.send().unwrap()
        };
        for wrong in [None, Some(""), Some("not-the-token"), Some(&token[1..])] {
            let r = get(wrong);
            assert_eq!(r.status(), 401, "{wrong:?}");
            let e: Value = r.json().unwrap();
            assert_eq!(e["error"]["code"], "unauthorized");
        }
        let r = get(Some(&token));
        assert_eq!(r.status(), 200);
        let text = r.text().unwrap();
        assert!(text.contains("gsp_outbox_pending"));
        // The SQLite writer's counters, only where there is one.
        assert_eq!(text.contains("gsp_sqlite_commits_total{fsync=\"configured\"}"), backend == gsp_node::storage::Backend::Sqlite, "{text}");
        assert_eq!(text.contains("gsp_sqlite_commit_seconds_total"), backend == gsp_node::storage::Backend::Sqlite);
        server.kill();

        // A digest that is not one is refused when the node starts, naming the key.
        std::fs::write(site.dir.path().join("gsp.toml"), "[api]\nmetrics_token_sha256 = \"abc\"\n").unwrap();
        let out = site.run(&["status"]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("api.metrics_token_sha256"), "{}", stderr(&out));
    }

    fn json_logs_on_request(backend: Backend) {
        let site = Site::new(backend);
        let out = site.gsp().args(["--log-format", "json", "trace", "KEN1X"]).env("RUST_LOG", "debug").output().unwrap();
        assert!(!out.status.success());
        let err = stderr(&out);
        let json_lines = err.lines().filter(|l| l.starts_with('{')).count();
        assert!(json_lines > 0, "{err}");
        for line in err.lines().filter(|l| l.starts_with('{')) {
            let v: Value = serde_json::from_str(line).unwrap();
            assert!(v["level"].is_string(), "{line}");
        }
    }
}
