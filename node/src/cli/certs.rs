//! `gsp certs …`: Party identity and node keys (implemented with `gsp-certs`).
//!
//! `init` makes the keys and certificate, `show` prints fingerprints to compare
//! out of band, `rotate` replaces one key with an overlap period. All the work
//! is in the `gsp-certs` crate; this file only parses arguments and prints.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use gsp_certs::{DEFAULT_TLS_DAYS, InitOptions, KeyKind, PartyCode, format_instant};
use gsp_federation::UnixMillis;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `gsp certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// What to do.
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Make a Party root key, a TLS key and certificate, a message-signing key
    /// and a message-encryption key in a new directory.
    Init {
        /// The Party: ISO 3166-1 alpha-3 code (e.g. KEN) or EU.
        #[arg(long, value_parser = parse_party)]
        party: PartyCode,
        /// Host name or IP address the node is reached at (repeat for several).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Directory to write the keys to (created with mode 0700).
        #[arg(long)]
        out: PathBuf,
        /// Overwrite existing key files (the old keys are lost).
        #[arg(long)]
        force: bool,
        /// Lifetime of the TLS certificate in days.
        #[arg(long, default_value_t = DEFAULT_TLS_DAYS)]
        tls_days: u32,
    },
    /// Print every public key and the TLS pin as fingerprints, with validity.
    Show {
        /// The identity directory.
        dir: PathBuf,
    },
    /// Replace one key; the previous key stays valid for the overlap period
    /// but is no longer used for sending.
    Rotate {
        /// The identity directory.
        dir: PathBuf,
        /// Rotate the TLS key and certificate.
        #[arg(long, group = "kind")]
        tls: bool,
        /// Rotate the message-signing key.
        #[arg(long, group = "kind")]
        signing: bool,
        /// Rotate the message-encryption key.
        #[arg(long, group = "kind")]
        encryption: bool,
        /// How long the previous key stays valid: e.g. 7d, 36h, 90m.
        #[arg(long, default_value = "7d", value_parser = parse_overlap)]
        overlap: Duration,
    },
}

fn parse_party(s: &str) -> Result<PartyCode, String> {
    PartyCode::parse(s).map_err(|e| e.to_string())
}

fn parse_overlap(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 7d, 36h or 90m"))?;
    let secs = match unit {
        "d" | "" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        _ => None,
    }
    .ok_or_else(|| format!("`{s}` is not a duration such as 7d, 36h or 90m"))?;
    Ok(Duration::from_secs(secs))
}

impl CertsArgs {
    /// Runs the `certs` subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            CertsCommand::Init {
                party,
                hosts,
                out,
                force,
                tls_days,
            } => {
                let opts = InitOptions {
                    party,
                    hosts,
                    dir: out.clone(),
                    force,
                    tls_days,
                    now: UnixMillis::now(),
                };
                gsp_certs::init(&opts).with_context(|| {
                    format!("making the identity of {party} in {}", out.display())
                })?;
                println!("{}", gsp_certs::show(&out)?);
                println!(
                    "Send the root key fingerprint above to the Secretariat and your peers through an official channel.\n\
                     root.key signs only directory records: keep it offline once the directory record is signed."
                );
                Ok(())
            }
            CertsCommand::Show { dir } => {
                print!("{}", gsp_certs::show(&dir)?);
                Ok(())
            }
            CertsCommand::Rotate {
                dir,
                tls,
                signing,
                encryption,
                overlap,
            } => {
                let kind = match (tls, signing, encryption) {
                    (true, false, false) => KeyKind::Tls,
                    (false, true, false) => KeyKind::Signing,
                    (false, false, true) => KeyKind::Encryption,
                    _ => anyhow::bail!("say which key to rotate: --tls, --signing or --encryption"),
                };
                let report = gsp_certs::rotate(&dir, kind, overlap, UnixMillis::now())?;
                println!(
                    "New {kind:?} key {} is current now; the previous key {} stays valid until {}.",
                    report.new,
                    report.previous,
                    format_instant(report.previous_valid_until)
                );
                for id in report.removed {
                    println!("Removed key {id}: its overlap period had ended.");
                }
                println!(
                    "Publish the new key in your directory record (it must be signed by the root key)."
                );
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CertsArgs,
    }

    fn parse(args: &[&str]) -> Result<CertsArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("certs").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn init_show_rotate_end_to_end() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ken");
        let d = dir.to_str().unwrap();
        parse(&[
            "init",
            "--party",
            "KEN",
            "--host",
            "gsp.example.ke",
            "--host",
            "10.0.0.7",
            "--out",
            d,
        ])
        .unwrap()
        .run()
        .unwrap();
        let again = parse(&["init", "--party", "KEN", "--host", "x", "--out", d])
            .unwrap()
            .run();
        assert!(format!("{:#}", again.unwrap_err()).contains("--force"));
        parse(&["show", d]).unwrap().run().unwrap();
        parse(&["rotate", d, "--signing", "--overlap", "36h"])
            .unwrap()
            .run()
            .unwrap();
        parse(&["rotate", d, "--tls"]).unwrap().run().unwrap();
        assert_eq!(
            gsp_certs::Identity::load(&dir).unwrap().doc.signing.len(),
            2
        );
    }

    #[test]
    fn arguments_are_checked() {
        assert!(parse(&["init", "--party", "KENYA", "--host", "h", "--out", "/tmp/x"]).is_err());
        assert!(
            parse(&["init", "--party", "KEN", "--out", "/tmp/x"]).is_err(),
            "a host is required"
        );
        assert!(
            parse(&["rotate", "/tmp/x", "--tls", "--signing"]).is_err(),
            "one key at a time"
        );
        assert!(parse(&["rotate", "/tmp/x", "--overlap", "1w", "--tls"]).is_err());
    }

    #[test]
    fn overlap_durations() {
        assert_eq!(
            parse_overlap("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(
            parse_overlap("36h").unwrap(),
            Duration::from_secs(36 * 3_600)
        );
        assert_eq!(parse_overlap("90m").unwrap(), Duration::from_secs(90 * 60));
        assert_eq!(parse_overlap("2").unwrap(), Duration::from_secs(2 * 86_400));
        assert!(parse_overlap("7w").is_err());
        assert!(parse_overlap("d").is_err());
    }
}
