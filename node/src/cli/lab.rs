//! A federation of real `gsp` processes on loopback, built from nothing: a
//! Secretariat directory and Party nodes with fresh keys, generated data,
//! officers' accounts, registered and approved records. `gsp demo` shows one
//! to people; `gsp bench exchange` measures one.
//!
//! Each node is a separate `gsp serve` process (this executable), so what runs
//! is exactly what an agency runs; they are killed when the [`Proc`] handles
//! are dropped.

use crate::auth::{self, NewUser, Role};
use crate::config::{DatabaseSettings, SqliteSync};
use crate::data::import::{ImportOptions, import_file};
use crate::data::synthetic::{GenFormat, GenOptions, generate};
use crate::directory::record::{RecordInputs, build_record, demo_details};
use crate::directory::server::{admin, secretariat};
use crate::local_ports::free_port;
use crate::storage::{Database, DatabaseUrl};
use anyhow::{Context as _, bail};
use gsp_federation::directory::RecordStatus;
use gsp_federation::{PartyCode, UnixMillis};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The password of every account a lab creates (a demonstration, not a secret).
pub const LAB_PASSWORD: &str = "gsp demo password";

/// A running child process, killed when dropped.
pub struct Proc {
    name: String,
    child: Child,
}

impl Proc {
    /// What it is ("the KEN node").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operating system's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far (Linux `VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        Self::status_bytes(self.pid(), "VmHWM:")
    }

    /// Resident memory of process `pid` now, split into private memory
    /// (`RssAnon`: heap and stacks) and file pages (`RssFile`: the binary and
    /// the database pages SQLite reads through its memory map, which the
    /// kernel can drop).
    pub fn rss_of(pid: u32) -> Option<(u64, u64)> {
        Some((
            Self::status_bytes(pid, "RssAnon:")?,
            Self::status_bytes(pid, "RssFile:")?,
        ))
    }

    /// CPU time process `pid` has used so far, user and system, all threads
    /// (`/proc/PID/stat` fields 14 and 15, in the kernel's fixed 100 Hz
    /// `USER_HZ` ticks); `"self"` for this process.
    pub fn cpu_time(pid: &str) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may hold spaces; count after its ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace().skip(11);
        let utime: u64 = fields.next()?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        Some(Duration::from_millis((utime + stime) * 10))
    }

    /// A `kB` field of `/proc/PID/status`, in bytes.
    fn status_bytes(pid: u32, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One Party of a lab, as `demo.json` describes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    /// Party code.
    pub code: String,
    /// Where other nodes reach it.
    pub federation_url: String,
    /// Its local API.
    pub api_url: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its config file.
    pub config: PathBuf,
    /// Its key folder.
    pub keys: PathBuf,
    /// Its database URL.
    pub database: String,
    /// An officer account.
    pub officer: Credentials,
    /// An officer who may also approve (two-person policy).
    pub approver: Credentials,
    /// An administrator.
    pub admin: Credentials,
}

/// A user name and password.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

fn credentials(username: &str) -> Credentials {
    Credentials {
        username: username.into(),
        password: LAB_PASSWORD.into(),
    }
}

/// What one Party of a lab gets.
#[derive(Debug, Clone)]
pub struct PartySpec {
    /// Party code.
    pub code: &'static str,
    /// Packs of `gsp gen` data to load.
    pub packs: u64,
    /// Extra lines appended to the node's `gsp.toml` (whole sections).
    pub extra_config: String,
    /// `[api] max_body_bytes`, when not the default.
    pub api_max_body_bytes: Option<usize>,
}

/// How far [`Lab::build`] has come with one Party.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// Writing its synthetic data.
    Generating {
        /// Packs being generated.
        packs: u64,
    },
    /// Importing that data.
    Importing,
    /// Keys, data, accounts and an approved directory record are in place.
    Ready {
        /// Codes imported.
        codes: u64,
        /// The Party's root key, as an operator reads it aloud.
        root_fingerprint: &'a str,
    },
}

/// A built lab: what [`Lab::start`] needs, and what scripts read back.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Lab {
    /// The directory's URL.
    pub directory_url: String,
    /// The directory's listening port.
    pub directory_port: u16,
    /// The Secretariat's signing key (as nodes configure it).
    pub secretariat_key: String,
    /// The directory's TLS pin.
    pub tls_pin: String,
    /// The directory's data directory.
    pub directory_dir: PathBuf,
    /// The Parties.
    pub parties: Vec<NodeInfo>,
}

/// What building a lab also yields: for each Party, packs it holds (up to the
/// number asked for) and its codes imported, so requests can name real codes.
pub struct Loaded {
    /// Party code → sample of its pack codes.
    pub packs: Vec<(String, Vec<String>)>,
    /// Party code → codes imported.
    pub imported: Vec<(String, u64)>,
}

impl Loaded {
    /// The pack codes kept for `party`.
    pub fn packs_of(&self, party: &str) -> &[String] {
        self.packs
            .iter()
            .find(|(p, _)| p == party)
            .map(|(_, c)| c.as_slice())
            .unwrap_or(&[])
    }
}

impl Lab {
    /// Builds a directory and the Parties under `root` (which must exist):
    /// keys, config, accounts, generated and imported data, signed records
    /// registered and approved. Keeps up to `keep_packs` pack codes per Party.
    pub fn build(
        root: &Path,
        parties: &[PartySpec],
        sync: SqliteSync,
        keep_packs: usize,
        mut progress: impl FnMut(&str, Step<'_>),
    ) -> anyhow::Result<(Lab, Loaded)> {
        let now = UnixMillis::now();
        let settings = DatabaseSettings {
            sqlite_synchronous: sync,
            ..DatabaseSettings::default()
        };
        let sync_name = sync.as_str();

        // The Secretariat.
        let sec_dir = root.join("secretariat");
        std::fs::create_dir_all(&sec_dir)?;
        let info = secretariat::init(&sec_dir, &["127.0.0.1".to_owned()], false, now)?;
        let sec_key = secretariat::load_key(&sec_dir)?.verifying_key();
        let sec_db = Database::open(&DatabaseUrl::default_in(&sec_dir), &settings)?;
        let directory_port = free_port()?;
        let directory_url = format!("https://127.0.0.1:{directory_port}");

        let mut nodes = Vec::new();
        let mut loaded = Loaded {
            packs: Vec::new(),
            imported: Vec::new(),
        };
        for spec in parties {
            let party = spec.code;
            let code = PartyCode::parse(party).map_err(|e| anyhow::anyhow!("{e}"))?;
            let dir = root.join(party);
            std::fs::create_dir_all(&dir)?;
            let keys = dir.join("keys");
            let identity = gsp_certs::init(&gsp_certs::InitOptions {
                party: code,
                hosts: vec!["127.0.0.1".into()],
                dir: keys.clone(),
                force: false,
                tls_days: 365,
                now,
            })?;
            let (api_port, fed_port) = (free_port()?, free_port()?);
            let config = dir.join("gsp.toml");
            std::fs::write(
                &config,
                format!(
                    "# node of {party} in a local federation (gsp demo / gsp bench exchange)\n\
                     [node]\nparty = \"{party}\"\nname = \"{party} demonstration node\"\n\n\
                     [database]\nsqlite_synchronous = \"{sync_name}\"\n\n\
                     [api]\nlisten = \"127.0.0.1:{api_port}\"\n{}\n\
                     [federation]\nlisten = \"127.0.0.1:{fed_port}\"\n\n\
                     [directory]\nurl = \"{directory_url}\"\nsecretariat_key = \"{}\"\ntls_pin = \"{}\"\nrefresh_secs = 10\n{}",
                    spec.api_max_body_bytes
                        .map(|n| format!("max_body_bytes = {n}\n"))
                        .unwrap_or_default(),
                    info.secretariat_key,
                    info.tls_pin,
                    spec.extra_config
                ),
            )?;
            let db = Database::open(&DatabaseUrl::default_in(&dir), &settings)?;
            {
                let mut conn = db.conn()?;
                for (user, roles) in [
                    ("officer", vec![Role::Officer]),
                    ("approver", vec![Role::Officer, Role::Approver]),
                    ("admin", vec![Role::Admin]),
                ] {
                    auth::add_user(
                        &mut conn,
                        &NewUser {
                            username: user,
                            display_name: &format!("{party} demo {user}"),
                            password: LAB_PASSWORD,
                            roles: &roles,
                        },
                        crate::exchange::store::now_ms(),
                    )?;
                }
            }
            progress(party, Step::Generating { packs: spec.packs });
            let data = dir.join("data.csv");
            let mut out = std::io::BufWriter::new(std::fs::File::create(&data)?);
            generate(
                &GenOptions {
                    packs: spec.packs,
                    party: party.into(),
                    seed: 2026,
                    format: GenFormat::Csv,
                },
                &mut out,
            )?;
            out.flush()?;
            drop(out);
            progress(party, Step::Importing);
            let report = import_file(
                &db,
                &data,
                &ImportOptions {
                    format: None,
                    settings: crate::config::ImportSettings::default(),
                    progress: false,
                },
            )?;
            loaded.imported.push((party.into(), report.stats.codes_new));
            let mut packs = Vec::new();
            for line in BufReader::new(std::fs::File::open(&data)?).lines() {
                if packs.len() >= keep_packs {
                    break;
                }
                let line = line?;
                if line.starts_with("code,") && line.split(',').nth(2) == Some("unit") {
                    packs.extend(line.split(',').nth(1).map(str::to_owned));
                }
            }
            loaded.packs.push((party.into(), packs));
            std::fs::remove_file(&data)?;
            let (focal_points, code_patterns) = demo_details(code);
            let signed = build_record(
                &identity,
                &RecordInputs {
                    node_urls: vec![format!("https://127.0.0.1:{fed_port}")],
                    focal_points,
                    code_patterns,
                    templates: None,
                    status: RecordStatus::Active,
                    issued: now,
                },
                None,
            )?;
            admin::submit(&sec_db, &sec_key, &signed.to_submission(), now)?;
            let root_fp = gsp_federation::fingerprint(&identity.root_key()?.verifying_key().0);
            admin::approve(&sec_db, &sec_key, code, &root_fp, now)?;
            progress(
                party,
                Step::Ready {
                    codes: report.stats.codes_new,
                    root_fingerprint: &root_fp,
                },
            );
            nodes.push(NodeInfo {
                code: party.into(),
                federation_url: format!("https://127.0.0.1:{fed_port}"),
                api_url: format!("http://127.0.0.1:{api_port}"),
                data_dir: dir.clone(),
                config,
                keys,
                database: DatabaseUrl::default_in(&dir).to_string(),
                officer: credentials("officer"),
                approver: credentials("approver"),
                admin: credentials("admin"),
            });
        }
        Ok((
            Lab {
                directory_url,
                directory_port,
                secretariat_key: info.secretariat_key,
                tls_pin: info.tls_pin,
                directory_dir: sec_dir,
                parties: nodes,
            },
            loaded,
        ))
    }

    /// Starts the directory and every node; returns once all listen.
    /// The processes stop when the returned handles are dropped.
    pub fn start(&self) -> anyhow::Result<Vec<Proc>> {
        let mut procs = Vec::new();
        let (p, _) = spawn(
            "the directory",
            &[
                "--data-dir".into(),
                self.directory_dir.display().to_string(),
                "directory".into(),
                "serve".into(),
                "--listen".into(),
                format!("127.0.0.1:{}", self.directory_port),
            ],
            &self.directory_dir.join("directory.log"),
            &["gsp: directory on "],
        )?;
        procs.push(p);
        for n in &self.parties {
            let (p, _) = spawn(
                &format!("the {} node", n.code),
                &[
                    "--data-dir".into(),
                    n.data_dir.display().to_string(),
                    "serve".into(),
                ],
                &n.data_dir.join("serve.log"),
                &["gsp: local API on ", "gsp: federation on "],
            )?;
            procs.push(p);
        }
        Ok(procs)
    }

    /// The Party `code`.
    pub fn party(&self, code: &str) -> anyhow::Result<&NodeInfo> {
        self.parties
            .iter()
            .find(|n| n.code == code)
            .with_context(|| format!("no Party {code} in this federation"))
    }
}

/// Starts `gsp ARGS` with its output in `log`, and waits for the stdout
/// lines starting with each of `ready` (returning their remainders).
fn spawn(
    name: &str,
    args: &[String],
    log: &Path,
    ready: &[&str],
) -> anyhow::Result<(Proc, Vec<String>)> {
    let exe = std::env::current_exe().context("locating the gsp executable")?;
    let logfile =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut child = Command::new(exe)
        .args(args)
        .env_remove("GSP_DATABASE_URL")
        .env_remove("GSP_DATA_DIR")
        .env_remove("GSP_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(logfile))
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let out = child.stdout.take().context("child stdout")?;
    let proc = Proc {
        name: name.to_owned(),
        child,
    };
    let mut lines = BufReader::new(out).lines();
    let mut found = Vec::new();
    for prefix in ready {
        loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        found.push(rest.trim().to_owned());
                        break;
                    }
                }
                _ => bail!(
                    "{} stopped before it was ready; see {}{}",
                    proc.name,
                    log.display(),
                    log_tail(log)
                ),
            }
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Ok((proc, found))
}

/// The last lines of a child's log, to quote in the error when it stops
/// (the log may sit in a temporary folder that is gone by the time anyone
/// looks).
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(8)..];
    if tail.is_empty() {
        String::new()
    } else {
        format!(":\n  {}", tail.join("\n  "))
    }
}

/// A logged-in client of one node's local API.
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// One reading of a node's `/metrics` page.
pub struct MetricsPage(String);

impl MetricsPage {
    /// The value of one series (`name{labels}`); the type's default (0)
    /// if the node has not counted any yet.
    pub fn get<T: std::str::FromStr + Default>(&self, series: &str) -> T {
        self.0
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_default()
    }
}

impl Api {
    /// Logs in as `user` with the lab password.
    pub async fn login(base: &str, user: &str) -> anyhow::Result<Api> {
        let http = Api::client()?;
        let r: Value = http
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"username": user, "password": LAB_PASSWORD}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = r["token"].as_str().context("no token")?.to_owned();
        Ok(Api {
            base: base.to_owned(),
            token,
            http,
        })
    }

    /// The same session with an HTTP client of its own, for another
    /// runtime (a client's pooled connections belong to the runtime that
    /// opened them).
    pub fn with_own_client(&self) -> anyhow::Result<Api> {
        Ok(Api {
            base: self.base.clone(),
            token: self.token.clone(),
            http: Api::client()?,
        })
    }

    fn client() -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .pool_max_idle_per_host(256)
            // Below the node's keep-alive (actix-web's 5 s): a connection
            // left idle longer is closed by the node, and a request sent on
            // it just then failed the benchmark with "connection closed
            // before message completed" (seen once between its steps).
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
    }

    /// `GET path`, JSON answer; an HTTP error is an error.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {v}");
        }
        Ok(v)
    }

    /// The node's `/metrics` page, read once for several series.
    pub async fn metrics(&self) -> anyhow::Result<MetricsPage> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(MetricsPage(text))
    }

    /// `POST path` with a JSON body, JSON answer; an HTTP error is an error.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            bail!("POST {path}: {status}: {v}");
        }
        Ok(v)
    }

    /// Waits until the node has a verified directory copy (it can resolve
    /// `probe_code` through the pattern library).
    pub async fn wait_directory(&self, probe_code: &str, name: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self
                .get(&format!("/api/v1/whois/{probe_code}"))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the {name} node has no directory copy; see its serve.log");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until a case (listed, so not marked read) reaches one of `states`.
    ///
    /// The list is ordered by last change, so a case that just changed is
    /// among the first; most polls ask for 50 cases, every tenth for 1,000
    /// (in case many others changed since). Listing 1,000 cases costs the
    /// node ~20 ms of CPU on a busy lab, and this process shares the cores
    /// with the nodes it measures.
    pub async fn wait_case(
        &self,
        id: &str,
        states: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        for poll in 0u64.. {
            let limit = if poll % 10 == 0 { 1000 } else { 50 };
            let list = self.get(&format!("/api/v1/cases?limit={limit}")).await?;
            if let Some(c) = list["cases"]
                .as_array()
                .and_then(|a| a.iter().find(|c| c["id"] == id))
                && states.iter().any(|s| c["state"] == *s)
            {
                return Ok(c.clone());
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("case {id} did not reach {states:?} in time")
    }
}

/// The fields every template shares, filled for a lab request.
pub fn common(reason: &str) -> serde_json::Map<String, Value> {
    let v = json!({
        "justification": {"articles": ["8.9", "21.1(e)"], "reason": reason},
        "handling": {"purpose_limited": true, "onward_transmission": "prohibited", "classification": "restricted"},
        "priority": "routine",
        "due_date": "2030-12-31"
    });
    v.as_object().cloned().unwrap_or_default()
}

/// `common` with a template's own fields added.
pub fn with(mut common: serde_json::Map<String, Value>, extra: Value) -> Value {
    if let Value::Object(m) = extra {
        common.extend(m);
    }
    Value::Object(common)
}
