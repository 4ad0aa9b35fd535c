//! `gsp demo`: a whole federation on this machine, in one command.
//!
//! Makes a Secretariat directory and four Party nodes (EU, KEN, PAK, SEN)
//! with fresh keys under a folder, registers and approves them, loads each
//! with `gsp gen` data, starts them as separate `gsp` processes on loopback,
//! runs real exchanges through their APIs (an automatic 10,000-code
//! verification, a supply-chain trace answered by an officer, a free-text
//! question and answer), prints what happened with the URLs and demo
//! credentials, writes `demo.json` for scripts, and runs until Ctrl-C.

use crate::auth::{self, NewUser, Role};
use crate::config::DatabaseSettings;
use crate::data::import::{ImportOptions, import_file};
use crate::data::synthetic::{GenFormat, GenOptions, generate};
use crate::directory::record::{RecordInputs, build_record, demo_details};
use crate::directory::server::{admin, secretariat};
use crate::storage::{Database, DatabaseUrl};
use anyhow::{Context as _, bail};
use clap::Args;
use gsp_federation::directory::RecordStatus;
use gsp_federation::{PartyCode, UnixMillis};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The demonstration Parties.
const PARTIES: [&str; 4] = ["EU", "KEN", "PAK", "SEN"];
/// The demo officers' password (a demonstration, not a secret).
pub const DEMO_PASSWORD: &str = "gsp demo password";

/// Arguments of `gsp demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the federation (must be empty or absent). Default: a
    /// temporary folder, removed on exit.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Packs of synthetic data per Party.
    #[arg(long, default_value_t = 100_000)]
    packs: u64,
}

/// A running child process, killed when dropped.
struct Proc {
    name: String,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One demo node as `demo.json` describes it.
#[derive(Debug, Clone, serde::Serialize)]
struct NodeInfo {
    code: String,
    federation_url: String,
    api_url: String,
    data_dir: PathBuf,
    config: PathBuf,
    keys: PathBuf,
    database: String,
    officer: Credentials,
    approver: Credentials,
    admin: Credentials,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Credentials {
    username: String,
    password: String,
}

fn credentials(username: &str) -> Credentials {
    Credentials {
        username: username.into(),
        password: DEMO_PASSWORD.into(),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
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
                    "{} stopped before it was ready; see {}",
                    proc.name,
                    log.display()
                ),
            }
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Ok((proc, found))
}

/// A logged-in client of one node's local API.
struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn login(base: &str, user: &str) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        let r: Value = http
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"username": user, "password": DEMO_PASSWORD}))
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

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
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

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
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

    /// Waits until a case (listed, so not marked read) reaches one of `states`.
    async fn wait_case(
        &self,
        id: &str,
        states: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let list = self.get("/api/v1/cases?limit=1000").await?;
            if let Some(c) = list["cases"]
                .as_array()
                .and_then(|a| a.iter().find(|c| c["id"] == id))
                && states.iter().any(|s| c["state"] == *s)
            {
                return Ok(c.clone());
            }
            if Instant::now() > deadline {
                bail!("case {id} did not reach {states:?} in time");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn common(reason: &str) -> serde_json::Map<String, Value> {
    let v = json!({
        "justification": {"articles": ["8.9", "21.1(e)"], "reason": reason},
        "handling": {"purpose_limited": true, "onward_transmission": "prohibited", "classification": "restricted"},
        "priority": "routine",
        "due_date": "2030-12-31"
    });
    v.as_object().cloned().unwrap_or_default()
}

fn with(mut common: serde_json::Map<String, Value>, extra: Value) -> Value {
    if let Value::Object(m) = extra {
        common.extend(m);
    }
    Value::Object(common)
}

impl DemoArgs {
    /// Runs the demo until Ctrl-C.
    pub fn run(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        crate::tls::install_default_provider();
        let temp;
        let root: PathBuf = match &self.dir {
            Some(d) => {
                if d.exists() && std::fs::read_dir(d)?.next().is_some() {
                    bail!(
                        "{} is not empty: give an empty or new folder to --dir",
                        d.display()
                    );
                }
                std::fs::create_dir_all(d)?;
                d.canonicalize()?
            }
            None => {
                temp = tempfile::Builder::new().prefix("gsp-demo-").tempdir()?;
                temp.path().to_path_buf()
            }
        };
        println!(
            "GSP demo: a Secretariat directory and four Party nodes in {}",
            root.display()
        );
        let now = UnixMillis::now();
        let settings = DatabaseSettings {
            sqlite_synchronous: crate::config::SqliteSync::Normal,
            ..DatabaseSettings::default()
        };

        // The Secretariat.
        let sec_dir = root.join("secretariat");
        std::fs::create_dir_all(&sec_dir)?;
        let info = secretariat::init(&sec_dir, &["127.0.0.1".to_owned()], false, now)?;
        let sec_key = secretariat::load_key(&sec_dir)?.verifying_key();
        let sec_db = Database::open(&DatabaseUrl::default_in(&sec_dir), &settings)?;
        let dir_port = free_port()?;
        let directory_url = format!("https://127.0.0.1:{dir_port}");

        // The Parties: keys, config, accounts, data, signed records.
        let mut nodes: Vec<NodeInfo> = Vec::new();
        let mut codes_of: Vec<(String, Vec<String>)> = Vec::new();
        for party in PARTIES {
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
                    "# gsp demo node of {party}\n[node]\nparty = \"{party}\"\nname = \"{party} demonstration node\"\n\n\
                     [database]\nsqlite_synchronous = \"normal\"\n\n\
                     [api]\nlisten = \"127.0.0.1:{api_port}\"\n\n\
                     [federation]\nlisten = \"127.0.0.1:{fed_port}\"\n\n\
                     [directory]\nurl = \"{directory_url}\"\nsecretariat_key = \"{}\"\ntls_pin = \"{}\"\nrefresh_secs = 10\n",
                    info.secretariat_key, info.tls_pin
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
                            password: DEMO_PASSWORD,
                            roles: &roles,
                        },
                        crate::exchange::store::now_ms(),
                    )?;
                }
            }
            let data = dir.join("data.csv");
            let mut out = std::io::BufWriter::new(std::fs::File::create(&data)?);
            generate(
                &GenOptions {
                    packs: self.packs,
                    party: party.into(),
                    seed: 2026,
                    format: GenFormat::Csv,
                },
                &mut out,
            )?;
            out.flush()?;
            drop(out);
            let report = import_file(
                &db,
                &data,
                &ImportOptions {
                    format: None,
                    settings: crate::config::ImportSettings::default(),
                    progress: false,
                },
            )?;
            let packs: Vec<String> = std::fs::read_to_string(&data)?
                .lines()
                .filter(|l| l.starts_with("code,") && l.split(',').nth(2) == Some("unit"))
                .filter_map(|l| l.split(',').nth(1).map(str::to_owned))
                .collect();
            codes_of.push((party.to_owned(), packs));
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
            let submission = signed.to_submission();
            admin::submit(&sec_db, &sec_key, &submission, now)?;
            let root_fp = gsp_federation::fingerprint(&identity.root_key()?.verifying_key().0);
            admin::approve(&sec_db, &sec_key, code, &root_fp, now)?;
            println!(
                "  {party:<3}  keys, {} codes imported, registered and approved (root key {root_fp})",
                report.stats.codes_new
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
        drop(sec_db);

        // Start everything.
        let mut procs = Vec::new();
        let (p, _) = spawn(
            "the directory",
            &[
                "--data-dir".into(),
                sec_dir.display().to_string(),
                "directory".into(),
                "serve".into(),
                "--listen".into(),
                format!("127.0.0.1:{dir_port}"),
            ],
            &sec_dir.join("directory.log"),
            &["gsp: directory on "],
        )?;
        procs.push(p);
        for n in &nodes {
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
        println!(
            "  all running after {:.1} s; running the exchanges…",
            started.elapsed().as_secs_f64()
        );

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let node = |c: &str| nodes.iter().find(|n| n.code == c).cloned();
        let pak_codes = codes_of
            .iter()
            .find(|(p, _)| p == "PAK")
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        let sen_codes = codes_of
            .iter()
            .find(|(p, _)| p == "SEN")
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        let (ken, pak, eu, sen) = (
            node("KEN").context("KEN")?,
            node("PAK").context("PAK")?,
            node("EU").context("EU")?,
            node("SEN").context("SEN")?,
        );
        rt.block_on(async {
            let ken_api = Api::login(&ken.api_url, "officer").await?;
            let pak_api = Api::login(&pak.api_url, "officer").await?;
            let eu_api = Api::login(&eu.api_url, "officer").await?;
            let sen_api = Api::login(&sen.api_url, "officer").await?;
            // Every node must hold a verified directory copy before sending.
            for (name, api) in [("EU", &eu_api), ("KEN", &ken_api), ("PAK", &pak_api), ("SEN", &sen_api)] {
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let probe = format!("/api/v1/whois/{}", pak_codes.first().map(String::as_str).unwrap_or("PAK1"));
                    if api.get(&probe).await.is_ok() {
                        break;
                    }
                    if Instant::now() > deadline {
                        bail!("the {name} node has no directory copy; see its serve.log");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }

            // 1. KEN asks PAK to verify 10,000 codes; PAK answers automatically.
            let t = Instant::now();
            let mut asked: Vec<String> = pak_codes.iter().take(9_990).cloned().collect();
            asked.extend((0..10).map(|i| format!("PAK1UNKNOWN{i:05}")));
            let n = asked.len();
            let case = ken_api
                .post("/api/v1/cases", &json!({
                    "to": "PAK", "template": "uid-verification",
                    "body": with(common("Packs of cigarettes seized at Mombasa port bearing Pakistani codes"), json!({"codes": asked}))
                }))
                .await?;
            let id = case["case_id"].as_str().context("case id")?.to_owned();
            ken_api.wait_case(&id, &["answered_full", "answered_partial"], Duration::from_secs(60)).await?;
            let detail = ken_api.get(&format!("/api/v1/cases/{id}")).await?;
            let answer = detail["messages"].as_array().and_then(|m| m.iter().find(|m| m["kind"] == "answer")).cloned().unwrap_or_default();
            let summary = &answer["body"]["summary"];
            println!(
                "  1. KEN asked PAK to verify {n} codes; PAK's node answered automatically in {:.2} s: {} known, {} deactivated, {} unknown",
                t.elapsed().as_secs_f64(), summary["known"], summary["deactivated"], summary["unknown"]
            );

            // 2. EU asks SEN for a supply-chain trace; SEN's officer answers.
            let t = Instant::now();
            let case = eu_api
                .post("/api/v1/cases", &json!({
                    "to": "SEN", "template": "supply-chain-trace",
                    "body": with(common("Consignment of Senegalese cigarettes intercepted in Rotterdam"), json!({
                        "codes": sen_codes.iter().take(2).cloned().collect::<Vec<_>>(),
                        "wanted": ["first-customer", "warehousing", "shipping", "subsequent-purchasers", "shipment-route"]
                    }))
                }))
                .await?;
            let id = case["case_id"].as_str().context("case id")?.to_owned();
            sen_api.wait_case(&id, &["delivered"], Duration::from_secs(30)).await?;
            let draft = sen_api.get(&format!("/api/v1/cases/{id}/draft-answer")).await?;
            sen_api.post(&format!("/api/v1/cases/{id}/answer"), &json!({"body": draft["body"]})).await?;
            eu_api.wait_case(&id, &["answered_full"], Duration::from_secs(30)).await?;
            println!(
                "  2. EU asked SEN for a supply-chain trace of 2 codes; SEN's officer reviewed the node's draft and answered ({:.2} s)",
                t.elapsed().as_secs_f64()
            );

            // 3. PAK writes to KEN; KEN's officer replies.
            let case = pak_api
                .post("/api/v1/cases", &json!({
                    "to": "KEN", "template": "free-text",
                    "body": with(common("Coordination of a joint operation"), json!({
                        "category": "administrative-assistance",
                        "subject": "Joint operation on the northern corridor",
                        "text": "We plan checks on the northern corridor next month. Could your focal point join a call?"
                    }))
                }))
                .await?;
            let id = case["case_id"].as_str().context("case id")?.to_owned();
            ken_api.wait_case(&id, &["delivered"], Duration::from_secs(30)).await?;
            ken_api
                .post(&format!("/api/v1/cases/{id}/answer"), &json!({"body": {
                    "outcome": "full",
                    "handling": {"purpose_limited": true, "onward_transmission": "prohibited", "classification": "restricted"},
                    "text": "Yes. Our focal point will join; please propose a date."
                }}))
                .await?;
            pak_api.wait_case(&id, &["answered_full"], Duration::from_secs(30)).await?;
            println!("  3. PAK wrote to KEN (free text); KEN's officer replied");
            Ok::<(), anyhow::Error>(())
        })?;

        let demo = json!({
            "directory": {"url": directory_url, "secretariat_key": info.secretariat_key, "tls_pin": info.tls_pin, "data_dir": sec_dir},
            "parties": nodes,
            "password": DEMO_PASSWORD,
        });
        let demo_json = root.join("demo.json");
        crate::directory::client::cache::write_atomic(
            &demo_json,
            serde_json::to_string_pretty(&demo)?.as_bytes(),
        )?;
        println!(
            "\nReady in {:.1} s. The federation:",
            started.elapsed().as_secs_f64()
        );
        println!("  directory  {directory_url}");
        for n in &nodes {
            println!(
                "  {:<3}  API {}   federation {}   data {}",
                n.code,
                n.api_url,
                n.federation_url,
                n.data_dir.display()
            );
        }
        println!(
            "\nLog in to any node's API as officer, approver or admin with the password \"{DEMO_PASSWORD}\", e.g.\n  curl -s {}/api/v1/session -H 'content-type: application/json' -d '{{\"username\":\"officer\",\"password\":\"{DEMO_PASSWORD}\"}}'",
            ken.api_url
        );
        println!(
            "Everything is described in {}. Ctrl-C stops the federation.",
            demo_json.display()
        );
        rt.block_on(async {
            #[cfg(unix)]
            {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            tokio::signal::ctrl_c().await?;
            Ok::<(), std::io::Error>(())
        })?;
        println!("stopping…");
        drop(procs);
        Ok(())
    }
}
