//! Harness for the directory's end-to-end tests: a real `gsp directory
//! serve` and real Party nodes (`gsp certs init`, `gsp directory record`,
//! `register`, `refresh`…) on loopback, each with its own data directory,
//! keys and database.

use crate::{Site, stderr, stdout};
use gsp_node::storage::Backend;
use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// The Secretariat's data directory, keys and database.
pub struct DirectorySite {
    /// The site.
    pub site: Site,
    /// `secretariat.json`.
    pub info: serde_json::Value,
}

/// A running `gsp directory serve`.
pub struct DirectoryServer {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
}

impl DirectoryServer {
    /// Kills it (SIGKILL) and waits.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DirectoryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts a command succeeded and returns its stdout.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "command failed: {}\n{}",
        stderr(o),
        stdout(o)
    );
    stdout(o)
}

impl DirectorySite {
    /// `gsp directory init --host 127.0.0.1` in a fresh site.
    pub fn new(backend: Backend) -> Self {
        let site = Site::new(backend);
        ok(&site.run(&["directory", "init", "--host", "127.0.0.1"]));
        let info: serde_json::Value = serde_json::from_slice(
            &std::fs::read(site.dir.path().join("secretariat/secretariat.json"))
                .expect("secretariat.json"),
        )
        .expect("json");
        Self { site, info }
    }

    /// Starts `gsp directory serve` on a free port with snapshots valid `validity_secs`.
    pub fn serve(&self, validity_secs: u64) -> DirectoryServer {
        let mut child = self
            .site
            .gsp()
            .args(["directory", "serve", "--listen", "127.0.0.1:0"])
            .env(
                "GSP_DIRECTORY_SERVER_SNAPSHOT_VALIDITY_SECS",
                validity_secs.to_string(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gsp directory serve");
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            assert!(
                Instant::now() < deadline,
                "gsp directory serve did not start"
            );
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(u) = line.strip_prefix("gsp: directory on ") {
                        break u.trim().to_owned();
                    }
                }
                _ => panic!("gsp directory serve exited before listening"),
            }
        };
        DirectoryServer { child, url }
    }

    /// The `[directory]` section a node needs for `url`.
    pub fn node_config(&self, url: &str) -> String {
        format!(
            "[directory]\nurl = \"{url}\"\nsecretariat_key = \"{}\"\ntls_pin = \"{}\"\nrefresh_secs = 1\n",
            self.info["secretariat_key"].as_str().expect("key"),
            self.info["tls_pin"].as_str().expect("pin")
        )
    }
}

/// A Party node's site with its identity in `<data-dir>/keys`.
pub struct NodeSite {
    /// The site.
    pub site: Site,
    /// The Party.
    pub party: String,
}

impl NodeSite {
    /// `gsp certs init` for `party` and a `gsp.toml` pointing at the directory.
    pub fn new(backend: Backend, party: &str, directory: &DirectorySite, url: &str) -> Self {
        let site = Site::new(backend);
        let keys = site.dir.path().join("keys");
        ok(&site.run(&[
            "certs",
            "init",
            "--party",
            party,
            "--host",
            "127.0.0.1",
            "--out",
            keys.to_str().expect("utf-8"),
        ]));
        Self::write_config(&site, party, directory, url);
        Self {
            site,
            party: party.into(),
        }
    }

    /// Rewrites `gsp.toml` (e.g. for a directory on another port).
    pub fn write_config(site: &Site, party: &str, directory: &DirectorySite, url: &str) {
        std::fs::write(
            site.dir.path().join("gsp.toml"),
            format!(
                "[node]\nparty = \"{party}\"\n\n{}",
                directory.node_config(url)
            ),
        )
        .expect("write gsp.toml");
    }

    /// `gsp directory record --demo-details` → the signed record's path.
    pub fn record(&self) -> std::path::PathBuf {
        let out = self.site.dir.path().join(format!(
            "record-{}.json",
            Instant::now().elapsed().as_nanos()
        ));
        ok(&self.site.run(&[
            "directory",
            "record",
            "--url",
            "https://127.0.0.1:9/",
            "--demo-details",
            "--out",
            out.to_str().expect("utf-8"),
        ]));
        out
    }

    /// The root key fingerprint (from `identity.json`).
    pub fn root_fingerprint(&self) -> String {
        let path = self.site.dir.path().join("keys/identity.json");
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("identity.json")).expect("json");
        let key = hex::decode(v["root"]["public_key"].as_str().expect("root key")).expect("hex");
        gsp_federation::keys::fingerprint(&key)
    }
}
