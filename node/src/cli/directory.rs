//! `gsp directory …`: the Secretariat directory role and a node's dealings
//! with it.
//!
//! On the directory host: `init`, `serve`, `approve`, `revoke`,
//! `reregister`, `list` (against the directory's own data directory and
//! database). On a Party's node: `record` (build and sign this node's record
//! from its keys), `register` (submit it), `refresh` (fetch and verify the
//! snapshot once). The work is in `crate::directory`; this file parses
//! arguments and prints.

use super::Context;
use crate::directory::alarms::AlarmSink;
use crate::directory::client::refresh::{OwnParty, Refresher};
use crate::directory::client::{DirectoryHandle, cache, fetch::DirectoryClient};
use crate::directory::record::{RecordInputs, build_record, demo_details};
use crate::directory::server::{DirectoryServer, admin, http, secretariat};
use anyhow::Context as _;
use clap::{Args, Subcommand};
use gsp_federation::directory::{CodePattern, FocalPoint, RecordStatus, Submission, TemplateEntry};
use gsp_federation::{PartyCode, UnixMillis};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `gsp directory`.
#[derive(Debug, Args)]
pub struct DirectoryArgs {
    /// What to do.
    #[command(subcommand)]
    command: DirectoryCommand,
}

#[derive(Debug, Subcommand)]
enum DirectoryCommand {
    /// Directory host: make the Secretariat signing key and the directory's TLS certificate.
    Init {
        /// Host name or IP address nodes reach the directory at (repeat for several).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Replace existing keys (every node must then be reconfigured).
        #[arg(long)]
        force: bool,
    },
    /// Directory host: serve the directory's HTTPS API.
    Serve {
        /// Override [directory_server] listen, e.g. 127.0.0.1:0.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Directory host: accept a pending registration after confirming the
    /// Party's root-key fingerprint out of band.
    Approve {
        /// The Party.
        #[arg(value_parser = parse_party)]
        party: PartyCode,
        /// The fingerprint the Party confirmed through an official channel.
        #[arg(long)]
        root_fingerprint: String,
    },
    /// Directory host: revoke a Party (logged, signed by the Secretariat).
    Revoke {
        /// The Party.
        #[arg(value_parser = parse_party)]
        party: PartyCode,
        /// Why (published in the log).
        #[arg(long)]
        reason: String,
    },
    /// Directory host: re-register a Party under a new root key without the
    /// old key (lost key), after an out-of-band check. Logged; the Party's
    /// node raises an alarm.
    Reregister {
        /// The Party's signed record (from `gsp directory record`).
        file: PathBuf,
        /// The new root-key fingerprint, confirmed out of band.
        #[arg(long)]
        root_fingerprint: String,
        /// Why (published in the log).
        #[arg(long)]
        reason: String,
    },
    /// Directory host: list Parties (pending, active, withdrawn, revoked).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Node: build and sign this node's directory record from its keys.
    Record {
        /// The identity folder (default: [directory] keys_dir or <data-dir>/keys).
        #[arg(long)]
        keys: Option<PathBuf>,
        /// Federation URL of this node (repeat for several).
        #[arg(long = "url")]
        urls: Vec<String>,
        /// JSON file with `focal_points`, `code_patterns` and optionally `templates`.
        #[arg(long)]
        details: Option<PathBuf>,
        /// Fill focal points and code patterns with demonstration values.
        #[arg(long, conflicts_with = "details")]
        demo_details: bool,
        /// Make a withdrawal record (the node leaves the federation).
        #[arg(long)]
        withdraw: bool,
        /// Where to write the signed record.
        #[arg(long)]
        out: PathBuf,
    },
    /// Node: submit a signed record to the directory ([directory] url).
    Register {
        /// The signed record (from `gsp directory record`).
        file: PathBuf,
    },
    /// Node: fetch, verify and keep the directory snapshot once.
    Refresh,
}

fn parse_party(s: &str) -> Result<PartyCode, String> {
    PartyCode::parse(s).map_err(|e| e.to_string())
}

/// The `details` file of `gsp directory record`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Details {
    #[serde(default)]
    focal_points: Vec<FocalPoint>,
    #[serde(default)]
    code_patterns: Vec<CodePattern>,
    #[serde(default)]
    templates: Option<Vec<TemplateEntry>>,
}

fn read_submission(path: &Path) -> anyhow::Result<Submission> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Submission::from_json(&bytes).with_context(|| format!("{}", path.display()))
}

/// The node's identity folder.
pub fn keys_dir(ctx: &Context) -> PathBuf {
    ctx.config
        .directory
        .keys_dir
        .clone()
        .unwrap_or_else(|| ctx.data_dir.join("keys"))
}

/// A directory client for this node, presenting its TLS certificate when it has one.
pub fn client(ctx: &Context) -> anyhow::Result<DirectoryClient> {
    let tls = gsp_certs::Identity::load(&keys_dir(ctx))
        .ok()
        .and_then(|id| id.tls().ok());
    Ok(DirectoryClient::new(&ctx.config.directory, tls.as_ref())?)
}

impl DirectoryArgs {
    /// Runs the `directory` subcommand.
    pub fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let now = UnixMillis::now();
        match self.command {
            DirectoryCommand::Init { hosts, force } => {
                let info = secretariat::init(&ctx.data_dir, &hosts, force, now)?;
                let listen = ctx.config.directory_server.listen;
                println!(
                    "Secretariat key fingerprint (publish it through official channels):\n  {}\n",
                    info.fingerprint
                );
                println!(
                    "Every node's gsp.toml needs:\n\n[directory]\nurl = \"https://{}:{}\"\nsecretariat_key = \"{}\"\ntls_pin = \"{}\"",
                    hosts.first().map(String::as_str).unwrap_or("HOST"),
                    listen.port(),
                    info.secretariat_key,
                    info.tls_pin
                );
                Ok(())
            }
            DirectoryCommand::Serve { listen } => {
                let sec = secretariat::load(&ctx.data_dir)?;
                let db = ctx.open_db()?;
                let settings = &ctx.config.directory_server;
                let validity =
                    Duration::from_secs(settings.snapshot_validity_secs.clamp(1, 30 * 86_400));
                let server = std::sync::Arc::new(DirectoryServer::new(db, sec, validity)?);
                let listen = listen.unwrap_or(settings.listen);
                let workers = settings.workers;
                actix_web::rt::System::new().block_on(async move {
                    let (running, addr) = http::bind(server, listen, workers)?;
                    tracing::info!(%addr, "directory listening");
                    println!("gsp: directory on https://{addr}");
                    running.await
                })?;
                Ok(())
            }
            DirectoryCommand::Approve {
                party,
                root_fingerprint,
            } => {
                let db = ctx.open_db()?;
                let key = secretariat::load_key(&ctx.data_dir)?.verifying_key();
                let index = admin::approve(&db, &key, party, &root_fingerprint, now)?;
                println!("{party} approved: log entry {index}.");
                Ok(())
            }
            DirectoryCommand::Revoke { party, reason } => {
                let db = ctx.open_db()?;
                let key = secretariat::load_key(&ctx.data_dir)?;
                let index = admin::revoke(&db, &key, party, &reason, now)?;
                println!("{party} revoked: log entry {index}.");
                Ok(())
            }
            DirectoryCommand::Reregister {
                file,
                root_fingerprint,
                reason,
            } => {
                let submission = read_submission(&file)?;
                let db = ctx.open_db()?;
                let key = secretariat::load_key(&ctx.data_dir)?;
                let index =
                    admin::reregister(&db, &key, &submission, &root_fingerprint, &reason, now)?;
                println!(
                    "Re-registered: log entry {index}. Every node sees it; the Party's own node raises an alarm."
                );
                Ok(())
            }
            DirectoryCommand::List { json } => {
                let db = ctx.open_db()?;
                let key = secretariat::load_key(&ctx.data_dir)?.verifying_key();
                let (list, size) = admin::list(&db, &key)?;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"tree_size": size, "parties": list})
                    );
                    return Ok(());
                }
                println!("Log: {size} entries.");
                for l in list {
                    println!(
                        "{:<4} {:<9} {} {}  {}",
                        l.party,
                        l.state,
                        l.index
                            .map(|i| format!("entry {i:<5}"))
                            .unwrap_or_else(|| "pending    ".into()),
                        l.root_fingerprint,
                        l.urls.join(" ")
                    );
                }
                Ok(())
            }
            DirectoryCommand::Record {
                keys,
                urls,
                details,
                demo_details: demo,
                withdraw,
                out,
            } => {
                let dir = keys.unwrap_or_else(|| keys_dir(ctx));
                let identity = gsp_certs::Identity::load(&dir)?;
                let mut d = match details {
                    Some(p) => serde_json::from_slice::<Details>(
                        &std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?,
                    )
                    .with_context(|| format!("{}", p.display()))?,
                    None => Details::default(),
                };
                if demo {
                    let (f, c) = demo_details(identity.doc.party);
                    d.focal_points = f;
                    d.code_patterns = c;
                }
                if urls.is_empty() && !withdraw {
                    anyhow::bail!("give this node's federation URL with --url https://HOST:PORT");
                }
                let inputs = RecordInputs {
                    node_urls: urls,
                    focal_points: d.focal_points,
                    code_patterns: d.code_patterns,
                    templates: d.templates,
                    status: if withdraw {
                        RecordStatus::Revoked
                    } else {
                        RecordStatus::Active
                    },
                    issued: now,
                };
                let signed = build_record(&identity, &inputs, None)?;
                let mut json = serde_json::to_vec_pretty(&signed.to_submission())?;
                json.push(b'\n');
                cache::write_atomic(&out, &json)
                    .with_context(|| format!("writing {}", out.display()))?;
                println!(
                    "Signed record of {} written to {} (root key {}).\nSubmit it with `gsp directory register {}`.",
                    identity.doc.party,
                    out.display(),
                    signed.record.root_key().fingerprint(),
                    out.display()
                );
                Ok(())
            }
            DirectoryCommand::Register { file } => {
                let submission = read_submission(&file)?;
                submission
                    .open()
                    .with_context(|| format!("{}", file.display()))?;
                let client = client(ctx)?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let answer = rt.block_on(client.register(&submission))?;
                match answer["status"].as_str() {
                    Some("pending") => println!(
                        "Registration of {} is pending. Ask the Secretariat to approve it after checking the root key fingerprint\n  {}\nthrough an official channel.",
                        answer["party"].as_str().unwrap_or("?"),
                        answer["root_fingerprint"].as_str().unwrap_or("?")
                    ),
                    _ => println!(
                        "Record of {} accepted: log entry {}.",
                        answer["party"].as_str().unwrap_or("?"),
                        answer["index"]
                    ),
                }
                Ok(())
            }
            DirectoryCommand::Refresh => {
                let refresher = refresher(ctx, &ctx.open_db()?)?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let report = rt.block_on(refresher.refresh_once())?;
                println!(
                    "Directory copy verified and kept: {} log entries (was {}), {} Parties in service.",
                    report.size,
                    report
                        .previous_size
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "none".into()),
                    refresher
                        .handle
                        .current()
                        .map(|c| c.active_parties().len())
                        .unwrap_or(0)
                );
                for a in report.own_alarms {
                    println!("ALARM: {a}");
                }
                Ok(())
            }
        }
    }
}

/// The node's refresher: its client, its copy loaded from disk (verified
/// again), its own Party, alarms into `db`.
pub fn refresher(ctx: &Context, db: &crate::storage::Database) -> anyhow::Result<Refresher> {
    let client = client(ctx)?;
    let alarms = AlarmSink::new(db.clone());
    let copy = match cache::load(&ctx.data_dir, &client.secretariat) {
        Ok(c) => c,
        Err(e) => {
            alarms.raise_blocking(
                crate::directory::alarms::kind::DIRECTORY_REJECTED,
                &e.to_string(),
            );
            None
        }
    };
    let handle = DirectoryHandle::new(copy, alarms);
    let own = OwnParty::load(&keys_dir(ctx)).ok();
    Ok(Refresher {
        handle,
        client,
        data_dir: ctx.data_dir.clone(),
        own,
    })
}
