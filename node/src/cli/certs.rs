//! `gsp certs …`: Party identity and node keys (implemented with `gsp-certs`).

use clap::Args;

/// Arguments of `gsp certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {}

impl CertsArgs {
    /// Runs the `certs` subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        anyhow::bail!("`gsp certs` is being built in this change; it is not available yet")
    }
}
