//! `gsp import FILE…`: load data files, each atomically.

use super::Context;
use crate::data::import::{Format, ImportOptions, import_file};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `gsp import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files to import: EPCIS 2.0 JSON-LD, EPCIS 1.2/2.0 XML or GSP CSV.
    /// Each file is all-or-nothing; a file imported before is skipped.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Force the format instead of detecting it.
    #[arg(long)]
    format: Option<Format>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Print one JSON report per file instead of a sentence.
    #[arg(long)]
    json: bool,
}

impl ImportArgs {
    /// Runs the command; stops at the first file that fails.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let db = ctx.open_db()?;
        let options = ImportOptions {
            format: self.format,
            settings: ctx.config.import.clone(),
            progress: !self.quiet && !self.json,
        };
        for file in &self.files {
            tracing::info!(file = %file.display(), "importing");
            let report = import_file(&db, file, &options)?;
            tracing::info!(
                file = %file.display(),
                codes_new = report.stats.codes_new,
                events_new = report.stats.events_new,
                seconds = report.seconds,
                already_imported = report.already_imported,
                "imported"
            );
            if self.json {
                println!("{}", serde_json::to_string(&report)?);
            } else if report.already_imported {
                println!(
                    "{}: already imported (same SHA-256), nothing to do",
                    file.display()
                );
            } else {
                let s = &report.stats;
                println!(
                    "{}: {} codes new, {} updated, {} events new, {} already known, {} master-data records, in {:.1} s ({:.0} codes/s)",
                    file.display(),
                    s.codes_new,
                    s.codes_updated,
                    s.events_new,
                    s.events_existing,
                    s.master_data,
                    report.seconds,
                    (s.codes_new + s.codes_updated) as f64 / report.seconds.max(1e-9)
                );
            }
        }
        Ok(())
    }
}
