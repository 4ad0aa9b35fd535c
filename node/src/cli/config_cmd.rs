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
                let (token, digest) = metrics_token()?;
                println!("token (give it to the scraper, keep it secret): {token}");
                println!("for gsp.toml, under [api]:");
                println!("metrics_token_sha256 = \"{digest}\"");
            }
        }
        Ok(())
    }
}

/// A new random token (32 bytes, base64url) and its SHA-256 in hex.
fn metrics_token() -> anyhow::Result<(String, String)> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut raw = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let digest = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ));
    Ok((token, digest))
}
