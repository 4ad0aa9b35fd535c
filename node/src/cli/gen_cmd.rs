//! `gsp gen`: write a synthetic national data set.

use crate::config::is_party_code;
use crate::data::synthetic::{GenFormat, GenOptions, generate};
use anyhow::Context as _;
use clap::Args;
use std::io::BufWriter;
use std::path::PathBuf;

/// Arguments of `gsp gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of packs (unit-level codes); cartons, cases and pallets are added.
    #[arg(long)]
    packs: u64,
    /// Party whose code pattern and names to use (ISO 3166-1 alpha-3 or EU).
    #[arg(long, default_value = "KEN")]
    party: String,
    /// Seed: the same seed writes the same file.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// Layout: csv or epcis-json. Default: from the file extension (.csv, .json/.jsonld).
    #[arg(long)]
    format: Option<GenFormat>,
}

impl GenArgs {
    /// Runs the command.
    pub fn run(&self) -> anyhow::Result<()> {
        if !is_party_code(&self.party) {
            anyhow::bail!(
                "--party {:?}: use an ISO 3166-1 alpha-3 code such as KEN, or EU",
                self.party
            );
        }
        let format = match self.format {
            Some(f) => f,
            None => match self.out.extension().and_then(|e| e.to_str()) {
                Some("json" | "jsonld") => GenFormat::EpcisJson,
                Some("csv") | None => GenFormat::Csv,
                Some(other) => anyhow::bail!(
                    "--out {}: cannot tell the layout from .{other}; give --format",
                    self.out.display()
                ),
            },
        };
        let file = std::fs::File::create(&self.out)
            .with_context(|| format!("creating {}", self.out.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let started = std::time::Instant::now();
        let summary = generate(
            &GenOptions {
                packs: self.packs,
                party: self.party.clone(),
                seed: self.seed,
                format,
            },
            &mut out,
        )
        .with_context(|| format!("writing {}", self.out.display()))?;
        eprintln!(
            "wrote {}: {} packs, {} codes, {} events, {} deactivated, in {:.1} s",
            self.out.display(),
            summary.packs,
            summary.codes,
            summary.events,
            summary.deactivated,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}
