//! `gsp config …`: the documented example config and the effective settings.

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
}

impl ConfigArgs {
    /// True when the command runs without loading a configuration.
    pub fn needs_no_context(&self) -> bool {
        matches!(self.command, ConfigCommand::Example)
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
        }
        Ok(())
    }
}
