//! Harness for the exchange's end-to-end tests: a real directory and real
//! Party nodes (`gsp serve` with federation) on loopback, registered and
//! approved the way operators do it, each with officer accounts.

use crate::directory::{DirectoryServer, DirectorySite, NodeSite, ok};
use crate::{Server, Site};
use gsp_node::storage::Backend;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Password of every test account.
pub const PASSWORD: &str = "correct horse battery staple";

/// A free TCP port on loopback, outside the kernel's ephemeral range.
pub fn free_port() -> u16 {
    gsp_node::local_ports::free_port().expect("a free port")
}

/// One Party node of a test federation.
pub struct Node {
    /// Its site (data directory, database, keys).
    pub site: NodeSite,
    /// Its federation port.
    pub port: u16,
    /// The running `gsp serve`, if started.
    pub server: Option<Server>,
}

impl Node {
    /// The Party code.
    pub fn party(&self) -> &str {
        &self.site.party
    }

    /// The underlying site.
    pub fn s(&self) -> &Site {
        &self.site.site
    }

    /// Starts `gsp serve` (local API on a free port, federation on `port`)
    /// and logs in as `officer`.
    pub fn start(&mut self) {
        let mut child = self
            .s()
            .gsp()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--federation-listen",
                &format!("127.0.0.1:{}", self.port),
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gsp serve");
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut base = None;
        let mut federation = false;
        while base.is_none() || !federation {
            assert!(
                Instant::now() < deadline,
                "gsp serve of {} did not start",
                self.party()
            );
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(u) = line.strip_prefix("gsp: local API on ") {
                        base = Some(u.trim().to_owned());
                    }
                    if line.starts_with("gsp: federation on ") {
                        federation = true;
                    }
                }
                _ => panic!("gsp serve of {} exited before listening", self.party()),
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let mut server = Server::from_child(child, base.unwrap_or_default());
        server.login("officer", PASSWORD);
        self.server = Some(server);
    }

    /// Kills `gsp serve` (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(s) = self.server.take() {
            s.kill();
        }
    }

    /// The running server (panics if stopped).
    pub fn api(&self) -> &Server {
        self.server.as_ref().expect("node not running")
    }

    /// A server logged in as another user.
    pub fn api_as(&self, username: &str) -> Server {
        let base = self.api().base.clone();
        let mut s = Server::detached(base);
        s.login(username, PASSWORD);
        s
    }

    /// A counter's value from the node's `/metrics` (`name{labels}` as
    /// written there; 0 when absent).
    pub fn metric(&self, name_and_labels: &str) -> u64 {
        let text = self.api().get("/metrics").text().expect("/metrics");
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name_and_labels)
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// This node's keys, as `gsp certs init` wrote them.
    pub fn identity(&self) -> gsp_node::federation::NodeIdentity {
        gsp_node::federation::NodeIdentity::load(&self.s().dir.path().join("keys"))
            .expect("the node's keys")
    }

    /// The base URL of this node's federation listener.
    pub fn federation_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A client that talks to this node's federation listener directly,
    /// presenting `creds` (another node's, or a stranger's) and trusting
    /// only this node's pinned certificate, as a peer's delivery does.
    pub fn client_as(&self, creds: &gsp_certs::TlsCredentials) -> reqwest::Client {
        use gsp_node::tls::{self, StaticPins};
        let pins = std::sync::Arc::new(StaticPins::one(self.identity().tls.spki_sha256));
        let config = tls::client_config(pins, Some(creds)).expect("client TLS");
        tls::http_client(config, Duration::from_secs(20)).expect("client")
    }

    /// Generates `packs` packs of this Party's data into the node (`gsp gen`,
    /// `gsp import`) and returns its unit pack codes.
    pub fn load_data(&self, packs: u64) -> Vec<String> {
        let file = self.s().dir.path().join("data.csv");
        let path = file.to_str().expect("utf-8 path");
        ok(&self.s().run(&[
            "gen",
            "--packs",
            &packs.to_string(),
            "--party",
            self.party(),
            "--out",
            path,
        ]));
        ok(&self.s().run(&["import", "-q", path]));
        std::fs::read_to_string(&file)
            .expect("the generated file")
            .lines()
            .filter(|l| l.starts_with("code,") && l.split(',').nth(2) == Some("unit"))
            .filter_map(|l| l.split(',').nth(1).map(str::to_owned))
            .collect()
    }

    /// `GET /api/v1/cases/{id}` as the officer.
    pub fn case(&self, id: &str) -> Value {
        let r = self.api().get(&format!("/api/v1/cases/{id}"));
        assert_eq!(r.status(), 200, "case {id} on {}", self.party());
        r.json().expect("case json")
    }

    /// Waits until case `id` reaches `state` (or fails after `secs`).
    pub fn wait_case(&self, id: &str, state: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.api().get(&format!("/api/v1/cases/{id}"));
            if r.status() == 200 {
                let v: Value = r.json().expect("json");
                if v["state"] == state {
                    return v;
                }
                assert!(
                    Instant::now() < deadline,
                    "case {id} on {} stayed {} (wanted {state}): {v:#}",
                    self.party(),
                    v["state"]
                );
            } else {
                assert!(
                    Instant::now() < deadline,
                    "case {id} never appeared on {}",
                    self.party()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until case `id` is listed in `state`, without opening it (a
    /// list does not mark a request read; opening does).
    pub fn wait_listed(&self, id: &str, state: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if self
                .cases()
                .iter()
                .any(|c| c["id"] == id && c["state"] == state)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "case {id} never listed as {state} on {}",
                self.party()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The cases of this node (newest first).
    pub fn cases(&self) -> Vec<Value> {
        let v: Value = self
            .api()
            .get("/api/v1/cases?limit=1000")
            .json()
            .expect("json");
        v["cases"].as_array().cloned().unwrap_or_default()
    }

    /// Composes a request; returns the case id.
    pub fn compose(&self, to: &str, template: &str, body: Value) -> String {
        let r = self.api().post_json(
            "/api/v1/cases",
            &json!({"to": to, "template": template, "body": body}),
        );
        let status = r.status();
        let v: Value = r.json().expect("json");
        assert_eq!(status, 201, "compose on {}: {v}", self.party());
        v["case_id"].as_str().expect("case id").to_owned()
    }
}

/// A directory and Party nodes, registered and approved.
pub struct Net {
    /// The Secretariat.
    pub directory: DirectorySite,
    /// Its server.
    pub directory_server: DirectoryServer,
    /// The nodes, in the order given.
    pub nodes: Vec<Node>,
}

impl Net {
    /// Builds a federation of `parties` on `backend`, each node configured
    /// with `extra_config` (TOML appended to its gsp.toml), with an
    /// `officer` (officer) and an `approver` (officer, approver) account.
    /// Nodes are not started.
    pub fn new(backend: Backend, parties: &[&str], extra_config: &str) -> Net {
        let directory = DirectorySite::new(backend);
        let directory_server = directory.serve(3600);
        let mut nodes = Vec::new();
        for party in parties {
            let site = NodeSite::new(backend, party, &directory, &directory_server.url);
            let port = free_port();
            let toml = site.site.dir.path().join("gsp.toml");
            let mut text = std::fs::read_to_string(&toml).expect("gsp.toml");
            text.push_str(&format!(
                "\n[federation]\nlisten = \"127.0.0.1:{port}\"\n\n{extra_config}\n"
            ));
            std::fs::write(&toml, text).expect("write gsp.toml");
            site.site.add_user("officer", &["officer"], PASSWORD);
            site.site
                .add_user("approver", &["officer", "approver"], PASSWORD);
            let record = site.site.dir.path().join("record.json");
            ok(&site.site.run(&[
                "directory",
                "record",
                "--url",
                &format!("https://127.0.0.1:{port}"),
                "--demo-details",
                "--out",
                record.to_str().expect("utf-8"),
            ]));
            ok(&site
                .site
                .run(&["directory", "register", record.to_str().expect("utf-8")]));
            ok(&directory.site.run(&[
                "directory",
                "approve",
                party,
                "--root-fingerprint",
                &site.root_fingerprint(),
            ]));
            nodes.push(Node {
                site,
                port,
                server: None,
            });
        }
        // The running directory picks approvals up within a second or so.
        for n in &nodes {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let out = n.s().run(&["directory", "refresh"]);
                if out.status.success() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "directory refresh of {}: {}",
                    n.party(),
                    crate::stderr(&out)
                );
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        Net {
            directory,
            directory_server,
            nodes,
        }
    }

    /// Starts every node.
    pub fn start_all(&mut self) {
        for n in &mut self.nodes {
            n.start();
        }
    }

    /// The node of `party`.
    pub fn node(&self, party: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.party() == party)
            .expect("party in the net")
    }

    /// The node of `party`, mutably.
    pub fn node_mut(&mut self, party: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.party() == party)
            .expect("party in the net")
    }
}

/// Waits until `f` holds, polling every 100 ms; fails naming `what` after
/// `secs`.
pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Common request fields every template needs.
pub fn common(reason: &str) -> serde_json::Map<String, Value> {
    let v = json!({
        "justification": {"articles": ["8.9"], "reason": reason},
        "handling": {"purpose_limited": true, "onward_transmission": "prohibited", "classification": "restricted"},
        "priority": "routine",
        "due_date": "2030-01-31"
    });
    v.as_object().cloned().unwrap_or_default()
}
