//! `gsp whois CODE`: which Party issued a unique identifier, by the code
//! pattern library in the verified directory copy, and whom to contact there.

use super::Context;
use crate::directory::client::cache;
use crate::directory::client::fetch::hex32;
use clap::Args;
use gsp_federation::UnixMillis;
use gsp_federation::keys::VerifyingKey;

/// Arguments of `gsp whois`.
#[derive(Debug, Args)]
pub struct WhoisArgs {
    /// The code (as printed on the pack, carton, case or pallet).
    code: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl WhoisArgs {
    /// Looks the code up; exits 1 when no pattern matches.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let key = VerifyingKey(hex32(
            "secretariat_key",
            ctx.config.directory.secretariat_key.as_deref(),
        )?);
        let copy = cache::load(&ctx.data_dir, &key)?.ok_or_else(|| {
            anyhow::anyhow!(
                "no directory copy in {}: run `gsp directory refresh` (or `gsp serve`) first",
                ctx.data_dir.display()
            )
        })?;
        let code = self.code.trim();
        let matches = copy.whois(code);
        let stale = copy.usable(UnixMillis::now()).err();
        if self.json {
            println!(
                "{}",
                serde_json::json!({
                    "code": code,
                    "matches": matches,
                    "directory": {"tree_size": copy.checkpoint().size, "valid_until": copy.snapshot.valid_until, "stale": stale.as_ref().map(|s| s.0.clone())},
                })
            );
        } else {
            if let Some(s) = &stale {
                eprintln!("warning: {s}");
            }
            for m in &matches {
                println!(
                    "{code} matches a pattern of {} (issuer {}): {} — {}",
                    m.party, m.pattern.issuer, m.pattern.pattern, m.pattern.description
                );
                for f in &m.focal_points {
                    println!("  {} — {}, {}: {}", f.name, f.role, f.authority, f.contact);
                }
            }
        }
        if matches.is_empty() {
            anyhow::bail!("no Party's code pattern matches {code:?}");
        }
        Ok(())
    }
}
