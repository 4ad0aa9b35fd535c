//! The `gsp` command line: global options, subcommands and their dispatch.

mod certs;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// GSP: node software for the WHO FCTC global information-sharing focal point.
#[derive(Debug, Parser)]
#[command(name = "gsp", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The `gsp` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Party identity and node keys: make, show and rotate them.
    Certs(certs::CertsArgs),
}

/// Parses the process arguments, runs the command and turns its outcome into an
/// exit code (0 on success, 1 on a reported error).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Certs(args) => args.run(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
