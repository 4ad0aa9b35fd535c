//! `gsp config …`: the documented example config, the effective settings,
//! and a new token for `/metrics`.

use super::Context;
use crate::config::Config;
use clap::{Args, Subcommand};

/// Arguments of `gsp config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a documented example gsp.toml with every setting and its default.
    Example,
    /// Print the settings in effect (file, environment and flags combined).
    Show,
    /// Make a random bearer token for `/metrics`: prints the token (for the
    /// scraper) and the `[api] metrics_token_sha256` line (for gsp.toml).
    MetricsToken,
}

impl ConfigArgs {
    /// True when the command runs without loading a configuration.
    pub fn needs_no_context(&self) -> bool {
        matches!(
            self.command,
            ConfigCommand::Example | ConfigCommand::MetricsToken
        )
    }

    /// Runs the command.
    pub fn run(&self, ctx: Option<&Context>) -> anyhow::Result<()> {
        match (&self.command, ctx) {
            (ConfigCommand::Example, _) => print!("{}", Config::example_toml()),
            (ConfigCommand::Show, Some(ctx)) => {
                let mut shown = (*ctx.config).clone();
                shown.database.url = Some(ctx.database.redacted());
                print!("{}", toml::to_string(&shown)?);
            }
            (ConfigCommand::Show, None) => anyhow::bail!("no configuration loaded"),
            (ConfigCommand::MetricsToken, _) => {
                let token = crate::auth::new_token()
                    .ok_or_else(|| anyhow::anyhow!("the system random generator failed"))?;
                let digest = hex::encode(crate::auth::token_sha256(&token));
                println!("token (give it to the scraper, keep it secret): {token}");
                println!("for gsp.toml, under [api]:");
                println!("metrics_token_sha256 = \"{digest}\"");
            }
        }
        Ok(())
    }
}
