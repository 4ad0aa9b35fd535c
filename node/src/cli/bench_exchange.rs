//! `gsp bench exchange`: two real nodes (KEN asks, PAK answers) and a
//! directory on this machine, measured end to end through KEN's officers' API.
//!
//! 1. the cryptographic ceiling: the sign/seal/open/verify work of one
//!    verification (request, its receipt, the answer, its receipt), called
//!    directly on one thread, with the real request and answer bodies;
//! 2. a bare mutual-TLS request/response on the same stack (actix-web and
//!    reqwest on rustls with ring, pinned certificates, connection reuse);
//! 3. throughput: many single-code verifications composed at once, until
//!    every answer is back;
//! 4. latency at half that rate (open loop, Poisson arrivals): as the officer sees it
//!    (request sent → answer readable on the requesting node), from the nodes' own records
//!    and leg by leg; then the same at a low rate (`--floor-rate`, default 50/s), which
//!    shows the path's own latency with little queueing;
//! 5. one large verification (default 1,000,000 codes) on the answering node's
//!    data, and the peak memory of both nodes.

use super::lab::{Api, Lab, Loaded, PartySpec, Proc, Step, common, with};
use crate::config::SqliteSync;
use crate::exchange::model::CaseState;
use crate::federation::NodeIdentity;
use crate::storage::{Database, DatabaseUrl};
use crate::tls::{self, ClientAuth, StaticPins};
use anyhow::{Context as _, bail};
use clap::Args;
use diesel::prelude::*;
use gsp_federation::{
    InMemorySeenIds, MessageDraft, OpenContext, Part, PartyCode, Receipt, SenderKey, TemplateRef,
    UnixMillis, Validity, Verdict,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Arguments of `gsp bench exchange`.
#[derive(Debug, Args)]
pub struct ExchangeBenchArgs {
    /// Packs of data on the answering node (PAK).
    #[arg(long, default_value_t = 1_000_000)]
    packs: u64,
    /// Single-code verifications in the throughput run.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Requests being composed at once in the throughput run.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of the half-load latency run.
    #[arg(long, default_value_t = 20)]
    latency_secs: u64,
    /// Requests per second in the latency run instead of half the measured
    /// throughput (to compare builds or settings at the same load).
    #[arg(long)]
    latency_rate: Option<f64>,
    /// Requests per second in a second latency run, at a low rate, after
    /// the half-load one: the latency of the path itself, with little
    /// queueing.
    #[arg(long, default_value_t = 50.0)]
    floor_rate: f64,
    /// Seconds of that low-rate run (0: skip it).
    #[arg(long, default_value_t = 10)]
    floor_secs: u64,
    /// Codes in the large verification (0: skip it).
    #[arg(long, default_value_t = 1_000_000)]
    large: usize,
    /// Folder for the federation. A folder left by an earlier run (it holds
    /// `bench-lab.json`) is reused as it is, data included.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The nodes' SQLite `synchronous` setting: full (durable against power
    /// loss, the default) or normal (durable against a crash of the process).
    #[arg(long, value_enum, default_value_t = SqliteSync::Full)]
    sync: SqliteSync,
    /// The nodes' `[exchange] in_flight_per_peer`: deliveries on the way to
    /// one peer at once. The node's default (8) suits a WAN link between
    /// Parties; on loopback under a backlog a delivery round trip waits
    /// behind the receiver's commits, and 32 bounded the run at ~1,000/s.
    #[arg(long, default_value_t = 128)]
    in_flight: usize,
    /// The nodes' `[exchange] answers_in_response`: automatic answers
    /// travel back in the response to their request (SPEC §15.6); false
    /// sends each on its own, as before that section.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    answers_in_response: bool,
}

/// The federation of a bench run, as saved for reuse.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    lab: Lab,
    /// Pack codes of PAK, for requests.
    pak_packs: Vec<String>,
    packs: u64,
}

impl ExchangeBenchArgs {
    /// Runs the benchmark and prints its figures.
    pub fn run(&self) -> anyhow::Result<()> {
        tls::install_default_provider();
        let sync = self.sync;
        let temp;
        let root: PathBuf = match &self.dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                d.canonicalize()?
            }
            None => {
                temp = tempfile::Builder::new().prefix("gsp-bench-").tempdir()?;
                temp.path().to_path_buf()
            }
        };
        let saved_path = root.join("bench-lab.json");
        let saved: Saved = if saved_path.exists() {
            let s: Saved = serde_json::from_slice(&std::fs::read(&saved_path)?)
                .with_context(|| format!("reading {}", saved_path.display()))?;
            println!(
                "reusing the federation in {} ({} packs on PAK)",
                root.display(),
                s.packs
            );
            s
        } else {
            if std::fs::read_dir(&root)?.next().is_some() {
                bail!(
                    "{} is neither empty nor a folder of an earlier run",
                    root.display()
                );
            }
            println!(
                "building a directory, KEN (10,000 packs) and PAK ({} packs) in {}",
                self.packs,
                root.display()
            );
            // Set for every run by `set_node_settings`.
            let exchange = format!("\n[exchange]\nin_flight_per_peer = {}\n", self.in_flight);
            let specs = [
                PartySpec {
                    code: "KEN",
                    packs: 10_000,
                    extra_config: exchange.clone(),
                    api_max_body_bytes: Some(64 * 1024 * 1024),
                },
                PartySpec {
                    code: "PAK",
                    packs: self.packs,
                    extra_config: exchange,
                    api_max_body_bytes: None,
                },
            ];
            let t = Instant::now();
            let (lab, loaded): (Lab, Loaded) = Lab::build(
                &root,
                &specs,
                sync,
                self.large.max(100_000),
                |party, step| {
                    let what = match step {
                        Step::Generating { packs } => format!("generating {packs} packs"),
                        Step::Importing => "importing".to_owned(),
                        Step::Ready { codes, .. } => format!("{codes} codes imported, approved"),
                    };
                    println!("  {party}: {what} after {:.0} s", t.elapsed().as_secs_f64())
                },
            )?;
            let s = Saved {
                pak_packs: loaded.packs_of("PAK").to_vec(),
                lab,
                packs: self.packs,
            };
            std::fs::write(&saved_path, serde_json::to_vec(&s)?)?;
            s
        };
        set_node_settings(&saved.lab, sync, self.in_flight, self.answers_in_response)?;
        let procs = saved.lab.start()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(self.measure(&saved, &procs))
    }

    async fn measure(&self, saved: &Saved, procs: &[Proc]) -> anyhow::Result<()> {
        let lab = &saved.lab;
        let (ken, pak) = (lab.party("KEN")?, lab.party("PAK")?);
        let ken_api = Arc::new(Api::login(&ken.api_url, "officer").await?);
        let pak_api = Api::login(&pak.api_url, "officer").await?;
        let codes = &saved.pak_packs;
        let probe = codes.first().context("no PAK codes")?;
        ken_api.wait_directory(probe, "KEN").await?;
        pak_api.wait_directory(probe, "PAK").await?;
        // Only read here: no checkpoint thread of the bench's own beside
        // each node's (it took ~1 % of a core copying the nodes' WAL frames
        // and fsyncing their files, competing with the nodes it measures).
        let reading = crate::config::DatabaseSettings {
            sqlite_checkpoint_ms: 0,
            ..crate::config::DatabaseSettings::default()
        };
        let ken_db = Database::open(&DatabaseUrl::parse(&ken.database)?, &reading)?;
        let pak_db = Database::open(&DatabaseUrl::parse(&pak.database)?, &reading)?;

        // Warm up, and take a real request and answer for the crypto ceiling.
        let id = compose(&ken_api, &codes[..1]).await?;
        ken_api
            .wait_case(&id, &["answered_full"], Duration::from_secs(60))
            .await?;
        let detail = ken_api.get(&format!("/api/v1/cases/{id}")).await?;
        let body_of = |kind: &str| -> anyhow::Result<Vec<u8>> {
            let m = detail["messages"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m["kind"] == kind))
                .with_context(|| format!("no {kind} in the warm-up case"))?;
            Ok(serde_json::to_vec(&m["body"])?)
        };
        let (request_body, answer_body) = (body_of("request")?, body_of("answer")?);

        println!("\n1. cryptography of one verification, called directly (one thread)");
        let per_verification = crypto_per_verification(ken, pak, &request_body, &answer_body)?;
        let ceiling_per_core = 1.0 / per_verification.as_secs_f64();
        println!(
            "   {:.0} µs per verification (2 seals, 2 opens, 2 receipts signed and verified): {:.0}/s per core, {:.0}/s on 2 cores",
            per_verification.as_secs_f64() * 1e6,
            ceiling_per_core,
            2.0 * ceiling_per_core
        );

        println!("\n2. bare mutual-TLS request/response on the same stack");
        let bare = bare_mtls(ken, pak, request_body.len(), self.concurrency).await?;
        println!(
            "   {bare:.0} requests/s ({} concurrent, keep-alive)",
            self.concurrency
        );

        println!(
            "\n3. throughput: {} single-code verifications, {} composed at once",
            self.requests, self.concurrency
        );
        // Shared, not copied per task: a copy of up to a million codes for
        // each of 64 tasks cost the load generator seconds of CPU inside the
        // measured step.
        let shared_codes: Arc<[String]> = codes.as_slice().into();
        let commits_before = Commits::both(&ken_api, &pak_api).await?;
        let cpu_before = cpu_times(procs);
        let t0 = crate::exchange::store::now_ms();
        let started = Instant::now();
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..self.concurrency {
            let (api, next) = (ken_api.clone(), next.clone());
            let codes = shared_codes.clone();
            let n = self.requests;
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<(), anyhow::Error>(());
                    }
                    let code = &codes[(i * 7919) % codes.len()];
                    compose(&api, std::slice::from_ref(code)).await?;
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        let composed = started.elapsed();
        let done = wait_answered(&ken_db, t0, self.requests, Duration::from_secs(600)).await?;
        let cpu_after = cpu_times(procs);
        let lat = latencies(&ken_db, t0).await?;
        let span_ms = lat.last_answer - t0;
        let rate = self.requests as f64 / (span_ms as f64 / 1000.0);
        println!(
            "   composed in {:.1} s; all {} answered after {:.1} s: {:.0} verifications/s ({:.2} of the 2-core crypto ceiling, {:.2} of bare mTLS)",
            composed.as_secs_f64(),
            done,
            span_ms as f64 / 1000.0,
            rate,
            rate / (2.0 * ceiling_per_core),
            rate / bare
        );
        println!(
            "   latency under full load: p50 {} ms, p99 {} ms",
            lat.p50, lat.p99
        );
        let cpu = CpuUse::between(&cpu_before, &cpu_after, self.requests);
        println!(
            "   CPU per verification (user + system, whole processes): {}; the cryptography alone is {:.2} of it",
            cpu.describe(),
            per_verification.as_secs_f64() / cpu.total.as_secs_f64().max(1e-9)
        );
        let commits_after = Commits::both(&ken_api, &pak_api).await?;
        println!(
            "   SQLite writers: {}",
            Commits::describe(&commits_before, &commits_after, self.requests)
        );

        let half = self.latency_rate.unwrap_or(rate / 2.0).max(1.0);
        println!(
            "\n4. latency at {}: {half:.0}/s for {} s",
            if self.latency_rate.is_some() {
                "the rate asked for"
            } else {
                "half that rate"
            },
            self.latency_secs
        );
        let taken_before = taken(&ken_api, &pak_api).await?;
        let commits_before = Commits::both(&ken_api, &pak_api).await?;
        let rig = Rig {
            ken_api: &ken_api,
            ken_db: &ken_db,
            pak_db: &pak_db,
            procs,
            codes: shared_codes.clone(),
        };
        let step = OpenLoop::run(&rig, half, self.latency_secs).await?;
        step.print();
        let commits_after = Commits::both(&ken_api, &pak_api).await?;
        println!(
            "   SQLite writers at this rate: {}",
            Commits::describe(&commits_before, &commits_after, step.total)
        );
        let taken_after = taken(&ken_api, &pak_api).await?;
        let took: Vec<String> = ["KEN", "PAK"]
            .iter()
            .zip(taken_before.iter().zip(&taken_after))
            .map(|(name, ((p0, o0), (p1, o1)))| {
                format!(
                    "{name} {} through places, {} from the outbox",
                    p1.saturating_sub(*p0),
                    o1.saturating_sub(*o0)
                )
            })
            .collect();
        println!("   messages the delivery workers took: {}", took.join("; "));
        let (ken_page, pak_page) = (ken_api.metrics().await?, pak_api.metrics().await?);
        println!(
            "   answers in responses so far (SPEC §15.6): PAK sent {}, KEN took {}; receipts returned to PAK {} (refused {})",
            pak_page.get::<u64>("gsp_answers_in_response_total{direction=\"sent\"}"),
            ken_page.get::<u64>("gsp_answers_in_response_total{direction=\"taken\"}"),
            pak_page.get::<u64>("gsp_response_receipts_total{result=\"recorded\"}"),
            pak_page.get::<u64>("gsp_response_receipts_total{result=\"refused\"}"),
        );
        if self.floor_secs > 0 {
            println!(
                "   then at {:.0}/s for {} s, the path's own latency (little queueing):",
                self.floor_rate, self.floor_secs
            );
            OpenLoop::run(&rig, self.floor_rate.max(1.0), self.floor_secs)
                .await?
                .print();
        }

        if self.large > 0 {
            let n = self.large.min(codes.len());
            println!(
                "\n5. one verification of {n} codes on a node holding {} packs",
                saved.packs
            );
            let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
            let sampler = {
                let sampling = sampling.clone();
                let pids: Vec<u32> = procs.iter().skip(1).map(Proc::pid).collect();
                tokio::spawn(async move { peak_rss(&pids, &sampling).await })
            };
            let started = Instant::now();
            let id = compose(&ken_api, &codes[..n]).await?;
            let composed = started.elapsed();
            let case = ken_api
                .wait_case(
                    &id,
                    &["answered_full", "answered_partial"],
                    Duration::from_secs(900),
                )
                .await?;
            let total = started.elapsed();
            let detail = ken_api.get(&format!("/api/v1/cases/{id}")).await?;
            let summary = detail["messages"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m["kind"] == "answer"))
                .map(|m| m["body"]["summary"].clone())
                .unwrap_or_default();
            println!(
                "   answered ({}) in {:.2} s end to end (composing and sealing the request: {:.2} s); summary {summary}",
                case["state"],
                total.as_secs_f64(),
                composed.as_secs_f64()
            );
            sampling.store(false, Ordering::Relaxed);
            let peaks = sampler.await?;
            for (p, (anon, file)) in procs.iter().skip(1).zip(peaks) {
                println!(
                    "   {} during it: peak private memory (RssAnon) {:.0} MB, peak file pages (RssFile, database memory map) {:.0} MB",
                    p.name(),
                    anon as f64 / 1e6,
                    file as f64 / 1e6
                );
            }
        }

        println!("\npeak memory (VmHWM)");
        for p in procs.iter().skip(1) {
            if let Some(b) = p.peak_rss_bytes() {
                println!("   {}: {:.0} MB", p.name(), b as f64 / 1e6);
            }
        }
        Ok(())
    }
}

/// CPU time used so far by each node of `procs` (the directory, which does
/// no work per verification, is left out) and by this load generator.
fn cpu_times(procs: &[Proc]) -> Vec<(String, Duration)> {
    let mut out: Vec<(String, Duration)> = procs
        .iter()
        .skip(1)
        .map(|p| {
            let name = p.name().trim_start_matches("the ").to_owned();
            (
                name,
                Proc::cpu_time(&p.pid().to_string()).unwrap_or_default(),
            )
        })
        .collect();
    out.push((
        "load generator".to_owned(),
        Proc::cpu_time("self").unwrap_or_default(),
    ));
    out
}

/// CPU time per verification between two [`cpu_times`] readings.
struct CpuUse {
    /// All processes together.
    total: Duration,
    /// Each process's share, named.
    parts: Vec<(String, Duration)>,
}

impl CpuUse {
    /// The CPU each process used from `before` to `after`, divided by `n`.
    fn between(before: &[(String, Duration)], after: &[(String, Duration)], n: usize) -> CpuUse {
        let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        let parts: Vec<(String, Duration)> = before
            .iter()
            .zip(after)
            .map(|((name, b), (_, a))| (name.clone(), a.saturating_sub(*b) / n))
            .collect();
        CpuUse {
            total: parts.iter().map(|(_, d)| *d).sum(),
            parts,
        }
    }

    /// "1512 µs = KEN node 764 µs, PAK node 680 µs, load generator 68 µs".
    fn describe(&self) -> String {
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(name, d)| format!("{name} {} µs", d.as_micros()))
            .collect();
        format!("{} µs = {}", self.total.as_micros(), parts.join(", "))
    }
}

/// Samples the resident memory of `pids` every 20 ms while `on`; returns the
/// peak (RssAnon, RssFile) of each.
async fn peak_rss(pids: &[u32], on: &std::sync::atomic::AtomicBool) -> Vec<(u64, u64)> {
    let mut peaks = vec![(0u64, 0u64); pids.len()];
    while on.load(Ordering::Relaxed) {
        for (pid, peak) in pids.iter().zip(peaks.iter_mut()) {
            if let Some((anon, file)) = Proc::rss_of(*pid) {
                peak.0 = peak.0.max(anon);
                peak.1 = peak.1.max(file);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    peaks
}

/// Rewrites the nodes' `sqlite_synchronous`, `in_flight_per_peer` and
/// `answers_in_response` (a reused folder may have been built with other
/// settings).
fn set_node_settings(
    lab: &Lab,
    sync: SqliteSync,
    in_flight: usize,
    in_response: bool,
) -> anyhow::Result<()> {
    let value = sync.as_str();
    for n in &lab.parties {
        let text = std::fs::read_to_string(&n.config)?;
        let out: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with("answers_in_response"))
            .flat_map(|l| {
                if l.starts_with("sqlite_synchronous") {
                    vec![format!("sqlite_synchronous = \"{value}\"")]
                } else if l.starts_with("in_flight_per_peer") {
                    vec![
                        format!("in_flight_per_peer = {in_flight}"),
                        format!("answers_in_response = {in_response}"),
                    ]
                } else {
                    vec![l.to_owned()]
                }
            })
            .collect();
        std::fs::write(&n.config, out.join("\n") + "\n")?;
    }
    Ok(())
}

/// What an open-loop latency step reads and writes through.
struct Rig<'a> {
    ken_api: &'a Api,
    ken_db: &'a Database,
    pak_db: &'a Database,
    procs: &'a [Proc],
    /// PAK's pack codes, asked for in turn.
    codes: Arc<[String]>,
}

/// What one open-loop latency step measured.
struct OpenLoop {
    /// Verifications sent.
    total: usize,
    /// As the officer sees them, ms, sorted (those whose answer was seen).
    seen: Vec<i64>,
    /// From the nodes' stamps.
    stamps: Latencies,
    legs: super::bench_stages::Stages,
    cpu: CpuUse,
    /// From the first request sent to the last answer recorded.
    busy: Duration,
}

impl OpenLoop {
    /// Sends `rate` requests a second for `secs` seconds (Poisson arrivals)
    /// and waits for every answer.
    async fn run(rig: &Rig<'_>, rate: f64, secs: u64) -> anyhow::Result<OpenLoop> {
        let mark = super::bench_stages::mark(rig.ken_db, rig.pak_db).await?;
        let watcher = super::bench_watch::Watcher::start(
            rig.ken_db.clone(),
            mark.ken_seq(),
            super::bench_watch::EVERY,
        )?;
        let officers_api = rig.ken_api.with_own_client()?;
        let cpu_before = cpu_times(rig.procs);
        let t1 = crate::exchange::store::now_ms();
        let total = (rate * secs as f64) as usize;
        let started = Instant::now();
        let officers = {
            let codes = rig.codes.clone();
            super::bench_officers::send(rate, total, officers_api, move |api, n| {
                let code = codes[(n * 104_729) % codes.len()].clone();
                async move { compose(&api, std::slice::from_ref(&code)).await }
            })?
        };
        let sent = tokio::task::spawn_blocking(move || officers.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the officers' thread panicked"))??;
        wait_answered(rig.ken_db, t1, total, Duration::from_secs(600)).await?;
        let busy = started.elapsed();
        let cpu = CpuUse::between(&cpu_before, &cpu_times(rig.procs), total);
        let seen = tokio::task::spawn_blocking(move || watcher.finish()).await??;
        Ok(OpenLoop {
            total,
            seen: super::bench_watch::latencies_ms(&sent, &seen),
            stamps: latencies(rig.ken_db, t1).await?,
            legs: super::bench_stages::stages(rig.ken_db, rig.pak_db, mark).await?,
            cpu,
            busy,
        })
    }

    /// Prints the latencies, the legs and the CPU.
    fn print(&self) {
        let q = |p: f64| super::bench_stages::quantile(&self.seen, p);
        println!(
            "   {} verifications, as the officer sees them (request sent to KEN's API → answer readable in KEN's database, read every {} ms; {} of {} seen): p50 {} ms, p99 {} ms, max {} ms",
            self.total,
            super::bench_watch::EVERY.as_millis(),
            self.seen.len(),
            self.total,
            q(0.50),
            q(0.99),
            self.seen.last().copied().unwrap_or(0)
        );
        let lat = &self.stamps;
        println!(
            "   from the nodes' stamps ({} answered; case created → answer recorded, before its commit): p50 {} ms, p99 {} ms, max {} ms",
            lat.count, lat.p50, lat.p99, lat.max
        );
        let legs = &self.legs;
        println!(
            "   legs (p50 / p99 ms, {} seen on both nodes): request sealed on KEN → arrived on PAK {} / {}; → answer sealed on PAK {} / {}; → answer taken on KEN {} / {}",
            legs.count,
            legs.delivered.p50,
            legs.delivered.p99,
            legs.answered.p50,
            legs.answered.p99,
            legs.returned.p50,
            legs.returned.p99
        );
        // At a lower rate fewer writes share a commit and fewer messages a
        // wake-up, so a verification costs more CPU than at full load: this
        // says how busy the two cores really were.
        println!(
            "   CPU per verification at this rate: {}; the two cores {:.0} % busy",
            self.cpu.describe(),
            100.0 * (self.cpu.total.as_secs_f64() * self.total as f64)
                / (2.0 * self.busy.as_secs_f64())
        );
    }
}

/// Messages each node's delivery workers have taken so far, (through a
/// place, from the outbox), KEN then PAK, from their `/metrics`.
async fn taken(ken: &Api, pak: &Api) -> anyhow::Result<[(u64, u64); 2]> {
    let mut out = [(0, 0); 2];
    for (api, o) in [ken, pak].into_iter().zip(out.iter_mut()) {
        let page = api.metrics().await?;
        *o = (
            page.get("gsp_delivery_taken_total{from=\"place\"}"),
            page.get("gsp_delivery_taken_total{from=\"outbox\"}"),
        );
    }
    Ok(out)
}

/// What a node's SQLite writer has committed so far, from its `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
struct Commits {
    synced: u64,
    unsynced: u64,
    writes: u64,
    secs: f64,
}

impl Commits {
    async fn read(api: &Api) -> anyhow::Result<Commits> {
        let page = api.metrics().await?;
        Ok(Commits {
            synced: page.get("gsp_sqlite_commits_total{fsync=\"configured\"}"),
            unsynced: page.get("gsp_sqlite_commits_total{fsync=\"no\"}"),
            writes: page.get("gsp_sqlite_writes_total"),
            secs: page.get("gsp_sqlite_commit_seconds_total"),
        })
    }

    /// KEN's and PAK's.
    async fn both(ken: &Api, pak: &Api) -> anyhow::Result<[Commits; 2]> {
        Ok([Commits::read(ken).await?, Commits::read(pak).await?])
    }

    /// "KEN …; PAK …": each node's commits between `before` and `after`,
    /// per verification of `n`.
    fn describe(before: &[Commits; 2], after: &[Commits; 2], n: usize) -> String {
        let n = n.max(1) as f64;
        ["KEN", "PAK"]
            .iter()
            .zip(before.iter().zip(after))
            .map(|(name, (b, a))| {
                let synced = a.synced.saturating_sub(b.synced);
                let unsynced = a.unsynced.saturating_sub(b.unsynced);
                let commits = (synced + unsynced).max(1) as f64;
                format!(
                    "{name} {:.2} commits per verification ({:.2} with an fsync), {:.1} writes per commit, {:.2} ms per commit",
                    (synced + unsynced) as f64 / n,
                    synced as f64 / n,
                    a.writes.saturating_sub(b.writes) as f64 / commits,
                    1e3 * (a.secs - b.secs) / commits
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Composes a uid-verification of `codes` to PAK; returns the case id.
async fn compose(api: &Api, codes: &[String]) -> anyhow::Result<String> {
    let case = api
        .post(
            "/api/v1/cases",
            &json!({
                "to": "PAK", "template": "uid-verification",
                "body": with(common("Benchmark: packs seized at a border post"), json!({"codes": codes}))
            }),
        )
        .await?;
    Ok(case["case_id"]
        .as_str()
        .context("no case id in the answer")?
        .to_owned())
}

/// The states of an answered case.
fn answered() -> [i16; 2] {
    [
        CaseState::AnsweredFull.to_i16(),
        CaseState::AnsweredPartial.to_i16(),
    ]
}

/// The cases created since `$1` and answered (in state `$2` or `$3`).
/// Through the `updated_at` index (an answered case was updated after it
/// was created): `+state` keeps SQLite from choosing the state index, which
/// would read every answered case of earlier runs on a reused lab.
const ANSWERED_SINCE: &str =
    "FROM cases WHERE updated_at >= $1 AND created_at >= $1 AND +state IN ($2, $3)";

/// Waits until `n` cases created since `since` are answered; returns how many are.
async fn wait_answered(
    db: &Database,
    since: i64,
    n: usize,
    timeout: Duration,
) -> anyhow::Result<usize> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let deadline = Instant::now() + timeout;
    loop {
        let done: i64 = db
            .run(move |c| {
                let [full, partial] = answered();
                diesel::sql_query(format!("SELECT COUNT(*) AS n {ANSWERED_SINCE}"))
                    .bind::<diesel::sql_types::BigInt, _>(since)
                    .bind::<diesel::sql_types::SmallInt, _>(full)
                    .bind::<diesel::sql_types::SmallInt, _>(partial)
                    .get_result::<Count>(c)
                    .map(|r| r.n)
                    .map_err(crate::storage::StorageError::from)
            })
            .await?;
        if done as usize >= n {
            return Ok(done as usize);
        }
        if Instant::now() > deadline {
            bail!("only {done} of {n} verifications answered in time");
        }
        // Not more often: this process shares the two cores with the nodes
        // it measures.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Latency figures, in milliseconds.
struct Latencies {
    count: usize,
    p50: i64,
    p99: i64,
    max: i64,
    last_answer: i64,
}

/// Case created → answer recorded, for the answered cases created since `since`.
async fn latencies(db: &Database, since: i64) -> anyhow::Result<Latencies> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        created_at: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        updated_at: i64,
    }
    let rows: Vec<(i64, i64)> = db
        .run(move |c| {
            let [full, partial] = answered();
            diesel::sql_query(format!("SELECT created_at, updated_at {ANSWERED_SINCE}"))
                .bind::<diesel::sql_types::BigInt, _>(since)
                .bind::<diesel::sql_types::SmallInt, _>(full)
                .bind::<diesel::sql_types::SmallInt, _>(partial)
                .load::<Row>(c)
                .map(|rows| {
                    rows.into_iter()
                        .map(|r| (r.created_at, r.updated_at))
                        .collect()
                })
                .map_err(crate::storage::StorageError::from)
        })
        .await?;
    let mut lat: Vec<i64> = rows.iter().map(|(c, u)| u - c).collect();
    lat.sort_unstable();
    Ok(Latencies {
        count: lat.len(),
        p50: super::bench_stages::quantile(&lat, 0.50),
        p99: super::bench_stages::quantile(&lat, 0.99),
        max: lat.last().copied().unwrap_or(0),
        last_answer: rows.iter().map(|(_, u)| *u).max().unwrap_or(since),
    })
}

/// The signing and sealing work of one verification, on this thread.
fn crypto_per_verification(
    ken: &super::lab::NodeInfo,
    pak: &super::lab::NodeInfo,
    request: &[u8],
    answer: &[u8],
) -> anyhow::Result<Duration> {
    let ken_id = NodeIdentity::load(&ken.keys).map_err(anyhow::Error::msg)?;
    let pak_id = NodeIdentity::load(&pak.keys).map_err(anyhow::Error::msg)?;
    let key_of = |id: &NodeIdentity| SenderKey {
        key: id.signing_key.verifying_key(),
        validity: Validity::ALWAYS,
    };
    let mut keys: BTreeMap<PartyCode, Vec<SenderKey>> = BTreeMap::new();
    keys.insert(ken_id.party, vec![key_of(&ken_id)]);
    keys.insert(pak_id.party, vec![key_of(&pak_id)]);
    let seen = InMemorySeenIds::default();
    let now = UnixMillis::now();
    fn ctx<'a>(
        us: &'a NodeIdentity,
        keys: &'a BTreeMap<PartyCode, Vec<SenderKey>>,
        seen: &'a InMemorySeenIds,
        now: UnixMillis,
    ) -> OpenContext<'a> {
        OpenContext {
            us: us.party,
            our_keys: &us.encryption_keys,
            sender_keys: keys,
            seen,
            now,
            skew: Duration::from_secs(300),
            max_envelope: gsp_federation::envelope::MAX_ENVELOPE,
        }
    }
    let draft = |from: &NodeIdentity, to: &NodeIdentity, part: Part| {
        let mut d = MessageDraft::new(
            from.party,
            to.party,
            uuid::Uuid::now_v7(),
            "application/json",
            now,
            Duration::from_secs(3600),
        );
        d.template = Some(TemplateRef {
            name: "uid-verification".into(),
            version: 1,
            part,
        });
        d
    };
    // One message's full cycle: seal, open, receipt signed and verified.
    let cycle = |from: &NodeIdentity, to: &NodeIdentity, part: Part, body: &[u8]| {
        let d = draft(from, to, part);
        let envelope = gsp_federation::seal(
            &d,
            body,
            &from.signing_key,
            &to.encryption_keys[0].key.public_key(),
        )
        .map_err(|e| anyhow::anyhow!("seal: {e}"))?;
        let opened = gsp_federation::open(&envelope, &ctx(to, &keys, &seen, now))
            .map_err(|e| anyhow::anyhow!("open: {e}"))?;
        let receipt = Receipt::sign(
            gsp_federation::envelope_digest(&envelope),
            d.message_id,
            to.party,
            from.party,
            now,
            Verdict::Accepted,
            &to.signing_key,
        )
        .to_bytes();
        Receipt::from_bytes(&receipt)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .verify(&envelope, &[key_of(to)], now, Duration::from_secs(300))
            .map_err(|e| anyhow::anyhow!("receipt: {e}"))?;
        Ok::<usize, anyhow::Error>(opened.body().len())
    };
    let rounds = 2_000u32;
    let mut checksum = 0;
    for _ in 0..50 {
        checksum += cycle(&ken_id, &pak_id, Part::Request, request)?;
    }
    let t = Instant::now();
    for _ in 0..rounds {
        checksum += cycle(&ken_id, &pak_id, Part::Request, request)?;
        checksum += cycle(&pak_id, &ken_id, Part::Answer, answer)?;
    }
    let elapsed = t.elapsed();
    if checksum == 0 {
        bail!("nothing was opened");
    }
    Ok(elapsed / rounds)
}

/// Requests per second of a bare POST (a body of `size` bytes, 200-byte
/// answer) over mutual TLS 1.3 with pinned certificates: actix-web with two
/// workers, like a node, and reqwest with connection reuse.
async fn bare_mtls(
    ken: &super::lab::NodeInfo,
    pak: &super::lab::NodeInfo,
    size: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let ken_id = NodeIdentity::load(&ken.keys).map_err(anyhow::Error::msg)?;
    let pak_id = NodeIdentity::load(&pak.keys).map_err(anyhow::Error::msg)?;
    let server_tls = tls::server_config(
        &pak_id.tls,
        ClientAuth::Required(Arc::new(StaticPins::one(ken_id.tls.spki_sha256))),
    )?;
    let port = crate::local_ports::free_port()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let sys = actix_web::rt::System::new();
        let r = sys.block_on(async move {
            let server = HttpServer::new(|| {
                App::new().route(
                    "/echo",
                    web::post().to(|body: web::Bytes| async move {
                        // Read the whole request, answer like a receipt would.
                        let _ = body.len();
                        HttpResponse::Ok().body(vec![b'r'; 200])
                    }),
                )
            })
            .workers(2)
            .bind_rustls_0_23(("127.0.0.1", port), server_tls)?
            .run();
            let _ = tx.send(server.handle());
            server.await
        });
        if let Err(e) = r {
            tracing::error!(error = %e, "bare mTLS server");
        }
    });
    let handle = rx
        .recv_timeout(Duration::from_secs(10))
        .context("the bare mTLS server did not start")?;
    let client = tls::http_client(
        tls::client_config(
            Arc::new(StaticPins::one(pak_id.tls.spki_sha256)),
            Some(&ken_id.tls),
        )?,
        Duration::from_secs(30),
    )?;
    let url = format!("https://127.0.0.1:{port}/echo");
    let body = actix_web::web::Bytes::from(vec![b'e'; size]);
    let run = |n: usize| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move {
            let next = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (client, url, body, next) =
                    (client.clone(), url.clone(), body.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        let r = client.post(&url).body(body.clone()).send().await?;
                        if !r.status().is_success() {
                            bail!("bare mTLS: HTTP {}", r.status());
                        }
                        r.bytes().await?;
                    }
                    Ok(())
                }));
            }
            for t in tasks {
                t.await??;
            }
            Ok::<(), anyhow::Error>(())
        }
    };
    run(2_000).await?;
    let t = Instant::now();
    let n = 40_000;
    run(n).await?;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    drop(client);
    // Not graceful: a graceful stop waits for idle keep-alive connections.
    handle.stop(false).await;
    Ok(rate)
}
