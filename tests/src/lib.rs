//! The end-to-end test harness for GSP.
//!
//! Starts real `gsp` processes on loopback against SQLite or PostgreSQL and
//! gives tests a handle to drive them: run a command, start a node, call its
//! API, kill it. The `gsp` binary is the one cargo built next to the test
//! executable (or `GSP_BIN`). It is a test support crate, not part of the
//! product.

// Test support: a panic is how a broken environment is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod directory;
pub mod federation;

use gsp_node::storage::testing::TestDb;
use gsp_node::storage::{Backend, DatabaseUrl};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `gsp` binary under test: `GSP_BIN` if set, otherwise the one cargo
/// built next to this test (`cargo nextest run --workspace` builds it, since
/// the node crate has integration tests). Refuses a binary older than any
/// source file it is built from, so the tests never run stale code.
pub fn gsp_bin() -> PathBuf {
    if let Ok(p) = std::env::var("GSP_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/gsp
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("gsp");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let newest_source = [
        "node/src",
        "node/migrations",
        "federation-spec/src",
        "federation-spec/templates",
        "certs/src",
    ]
    .iter()
    .filter_map(|d| newest_in(&workspace.join(d)))
    .max();
    match (built, newest_source) {
        (Some(b), Some(s)) if b >= s => bin,
        (Some(_), None) => bin,
        _ => panic!(
            "{} is missing or older than its sources: run the tests with `cargo nextest run --workspace` (or `cargo build -p gsp-node` first)",
            bin.display()
        ),
    }
}

fn newest_in(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_in(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(t);
    }
    newest
}

/// A data directory and database for one `gsp` instance.
pub struct Site {
    /// The data directory.
    pub dir: tempfile::TempDir,
    /// The database (dropped with the site).
    pub db: TestDb,
}

impl Site {
    /// A fresh site on `backend`.
    pub fn new(backend: Backend) -> Site {
        Site {
            dir: tempfile::tempdir().expect("temp dir"),
            db: TestDb::new(backend).expect("test database"),
        }
    }

    /// The database URL as `--database` takes it.
    pub fn database_url(&self) -> String {
        match &self.db.url {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(u) => u.clone(),
        }
    }

    /// A `gsp` command with this site's data directory and database.
    pub fn gsp(&self) -> Command {
        let mut cmd = Command::new(gsp_bin());
        cmd.arg("--data-dir")
            .arg(self.dir.path())
            .arg("--database")
            .arg(self.database_url())
            .env_remove("GSP_DATABASE_URL")
            .env_remove("GSP_DATA_DIR")
            .env_remove("GSP_CONFIG")
            .env("RUST_LOG", "warn");
        cmd
    }

    /// Runs `gsp ARGS…` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.gsp().args(args).output().expect("run gsp")
    }

    /// Creates an officer account (all roles given) with `password`.
    pub fn add_user(&self, username: &str, roles: &[&str], password: &str) {
        use std::io::Write;
        let mut cmd = self.gsp();
        cmd.args([
            "user",
            "add",
            username,
            "--name",
            username,
            "--password-stdin",
        ]);
        for r in roles {
            cmd.args(["--role", r]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gsp user add");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write password");
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "gsp user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `gsp serve` on a free loopback port and waits until it listens.
    pub fn serve(&self) -> Server {
        let mut child = self
            .gsp()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gsp serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            assert!(Instant::now() < deadline, "gsp serve did not start");
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("gsp: local API on ") {
                        break url.trim().to_owned();
                    }
                }
                _ => panic!("gsp serve exited before listening"),
            }
        };
        Server {
            child: Some(child),
            base,
            token: None,
        }
    }
}

/// A running `gsp serve`.
pub struct Server {
    child: Option<Child>,
    /// Base URL of the local API, e.g. `http://127.0.0.1:41234`.
    pub base: String,
    /// Bearer token after [`Server::login`].
    pub token: Option<String>,
}

/// An HTTP client (reqwest on rustls with ring, the project's one provider).
pub fn http() -> reqwest::blocking::Client {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::blocking::Client::new()
}

impl Server {
    /// A server handle for a child started elsewhere, listening at `base`.
    pub fn from_child(child: Child, base: String) -> Server {
        Server {
            child: Some(child),
            base,
            token: None,
        }
    }

    /// A handle on a server some other handle owns (dropping it kills nothing).
    pub fn detached(base: String) -> Server {
        Server {
            child: None,
            base,
            token: None,
        }
    }

    /// Logs in; later calls carry the token.
    pub fn login(&mut self, username: &str, password: &str) {
        let r = http()
            .post(format!("{}/api/v1/session", self.base))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .expect("login");
        assert_eq!(r.status(), 200, "login as {username}");
        let v: serde_json::Value = r.json().expect("session json");
        self.token = Some(v["token"].as_str().expect("token").to_owned());
    }

    fn authed(&self, rb: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// `GET {base}{path}` (with the token, if logged in).
    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.authed(http().get(format!("{}{path}", self.base)))
            .send()
            .expect("GET")
    }

    /// `POST {base}{path}` with a JSON body (with the token, if logged in).
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::blocking::Response {
        self.authed(http().post(format!("{}{path}", self.base)).json(body))
            .send()
            .expect("POST")
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Stdout of a finished command, as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr of a finished command, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
