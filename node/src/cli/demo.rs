//! `gsp demo`: a whole federation on this machine, in one command.
//!
//! Makes a Secretariat directory and four Party nodes (EU, KEN, PAK, SEN)
//! with fresh keys under a folder, registers and approves them, loads each
//! with `gsp gen` data, starts them as separate `gsp` processes on loopback,
//! runs real exchanges through their APIs (an automatic 10,000-code
//! verification, a supply-chain trace answered by an officer, a free-text
//! question and answer), prints what happened with the URLs and demo
//! credentials, writes `demo.json` for scripts, and runs until Ctrl-C.

use super::lab::{Api, Lab, PartySpec, Step, common, with};
use crate::config::SqliteSync;
use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The demonstration Parties.
const PARTIES: [&str; 4] = ["EU", "KEN", "PAK", "SEN"];

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
        let specs: Vec<PartySpec> = PARTIES
            .iter()
            .map(|code| PartySpec {
                code,
                packs: self.packs,
                extra_config: String::new(),
                api_max_body_bytes: None,
            })
            .collect();
        let (lab, loaded) = Lab::build(
            &root,
            &specs,
            SqliteSync::Normal,
            10_000,
            |party, step| {
                if let Step::Ready {
                    codes,
                    root_fingerprint,
                } = step
                {
                    println!(
                        "  {party:<3}  keys, {codes} codes imported, registered and approved (root key {root_fingerprint})"
                    );
                }
            },
        )?;
        let procs = lab.start()?;
        println!(
            "  all running after {:.1} s; running the exchanges…",
            started.elapsed().as_secs_f64()
        );

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let pak_codes = loaded.packs_of("PAK");
        let sen_codes = loaded.packs_of("SEN");
        let (ken, pak, eu, sen) = (
            lab.party("KEN")?,
            lab.party("PAK")?,
            lab.party("EU")?,
            lab.party("SEN")?,
        );
        rt.block_on(async {
            let ken_api = Api::login(&ken.api_url, "officer").await?;
            let pak_api = Api::login(&pak.api_url, "officer").await?;
            let eu_api = Api::login(&eu.api_url, "officer").await?;
            let sen_api = Api::login(&sen.api_url, "officer").await?;
            // Every node must hold a verified directory copy before sending.
            let probe = pak_codes.first().map(String::as_str).unwrap_or("PAK1");
            for (name, api) in [("EU", &eu_api), ("KEN", &ken_api), ("PAK", &pak_api), ("SEN", &sen_api)] {
                api.wait_directory(probe, name).await?;
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
            "directory": {"url": lab.directory_url, "secretariat_key": lab.secretariat_key, "tls_pin": lab.tls_pin, "data_dir": lab.directory_dir},
            "parties": lab.parties,
            "password": super::lab::LAB_PASSWORD,
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
        println!("  directory  {}", lab.directory_url);
        for n in &lab.parties {
            println!(
                "  {:<3}  API {}   federation {}   data {}",
                n.code,
                n.api_url,
                n.federation_url,
                n.data_dir.display()
            );
        }
        println!(
            "\nLog in to any node's API as officer, approver or admin with the password \"{pw}\", e.g.\n  curl -s {}/api/v1/session -H 'content-type: application/json' -d '{{\"username\":\"officer\",\"password\":\"{pw}\"}}'",
            ken.api_url,
            pw = super::lab::LAB_PASSWORD
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
