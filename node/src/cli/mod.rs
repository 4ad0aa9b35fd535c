//! The `gsp` command line: global options, subcommands and their dispatch.
//!
//! One file per subcommand. Configuration is loaded once here and handed to
//! the command; errors reach the operator as one clear sentence on stderr and
//! exit status 1.

mod bench;
mod bench_exchange;
mod bench_officers;
mod bench_stages;
mod bench_watch;
mod certs;
mod config_cmd;
mod demo;
mod directory;
mod gen_cmd;
mod import;
mod lab;
mod malloc_threshold;
mod outbox;
mod serve;
mod status;
mod trace;
mod user;
mod whois;

use crate::config::{Config, LogFormat};
use crate::storage::{Database, DatabaseUrl};
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// GSP: node software for the WHO FCTC global information-sharing focal point.
///
/// A Party node holds its national tracking-and-tracing data and answers other
/// Parties' questions about codes, consignments, seizures and operators.
#[derive(Debug, Parser)]
#[command(name = "gsp", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Folder holding this node's database, config and keys.
    #[arg(
        long,
        global = true,
        env = "GSP_DATA_DIR",
        default_value = "./gsp-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,

    /// Database URL: sqlite://PATH or postgres://USER@HOST:PORT/DB.
    /// Default: the SQLite file gsp.db in the data directory.
    #[arg(long, global = true, env = "GSP_DATABASE_URL", value_name = "URL")]
    pub database: Option<String>,

    /// Config file. Default: gsp.toml in the data directory (optional there).
    #[arg(long, global = true, env = "GSP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format: human (default) or json.
    #[arg(long, global = true, env = "GSP_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The `gsp` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node: the local API (and, once configured, federation).
    Serve(serve::ServeArgs),
    /// Import tracking-and-tracing data (EPCIS 2.0 JSON-LD, EPCIS XML, GSP CSV).
    Import(import::ImportArgs),
    /// Generate a synthetic national data set (for demos and benchmarks).
    #[command(name = "gen")]
    Gen(gen_cmd::GenArgs),
    /// Show a code's Art. 8.4.1 record, aggregation chain and history.
    Trace(trace::TraceArgs),
    /// Show or write configuration.
    Config(config_cmd::ConfigArgs),
    /// Party identity and node keys: make, show and rotate them.
    Certs(certs::CertsArgs),
    /// Measure the data store (ingest rate against the raw loaders, trace latency).
    Bench(bench::BenchArgs),
    /// Officers' accounts: add, list, disable, enable, change password.
    User(user::UserArgs),
    /// Messages waiting for delivery: list, retry now, cancel.
    Outbox(outbox::OutboxArgs),
    /// A whole federation on this machine: a directory and four Party nodes
    /// with data, exchanging requests and answers. Runs until Ctrl-C.
    Demo(demo::DemoArgs),
    /// The Secretariat directory: serve and administer it, or register this node with it.
    Directory(directory::DirectoryArgs),
    /// Which Party issued a code, by the directory's code-pattern library, and whom to ask.
    Whois(whois::WhoisArgs),
    /// The node's health: directory copy, validity left, alarms (exit 2 when unhealthy).
    Status(status::StatusArgs),
}

/// What a command gets: the loaded configuration and where things are.
#[derive(Debug, Clone)]
pub struct Context {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The configuration, validated.
    pub config: Arc<Config>,
    /// The database to use.
    pub database: DatabaseUrl,
}

impl Context {
    /// Opens the database (creating and migrating it if needed).
    pub fn open_db(&self) -> anyhow::Result<Database> {
        tracing::debug!(database = %self.database, "opening the database");
        let db = Database::open(&self.database, &self.config.database)
            .with_context(|| format!("opening the database {}", self.database))?;
        tracing::debug!(backend = %db.backend(), "database ready");
        Ok(db)
    }
}

fn load_context(cli: &Cli) -> anyhow::Result<Context> {
    let (config_path, required) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (cli.data_dir.join("gsp.toml"), false),
    };
    let env = |k: &str| std::env::var(k).ok();
    let mut config = Config::load(&config_path, required, &env)?;
    if let Some(url) = &cli.database {
        config.database.url = Some(url.clone());
    }
    if let Some(format) = cli.log_format {
        config.log.format = format;
    }
    let database = match &config.database.url {
        Some(url) => DatabaseUrl::parse(url)?,
        None => DatabaseUrl::default_in(&cli.data_dir),
    };
    Ok(Context {
        data_dir: cli.data_dir.clone(),
        config: Arc::new(config),
        database,
    })
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: a log file or journal gets
    // plain text, without escape codes to read around or grep through.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// Parses the process arguments, runs the command and turns its outcome into an
/// exit code (0 on success, 1 on a reported error).
pub fn main() -> ExitCode {
    malloc_threshold::fix();
    let cli = Cli::parse();
    let outcome = run(cli);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logging for commands whose own output tells the story: problems only.
fn quiet() -> Config {
    let mut quiet = Config::default();
    quiet.log.level = "warn".into();
    quiet
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // Commands that need no configuration.
    match &cli.command {
        Command::Gen(args) => return args.run(),
        Command::Demo(args) => {
            // The demo's own output is the story; only problems are logged.
            init_logging(&quiet());
            return args.run();
        }
        Command::Bench(args) if args.is_exchange() => {
            init_logging(&quiet());
            return args.run_without_context();
        }
        Command::Certs(_) => {}
        Command::Config(args) if args.needs_no_context() => return args.run(None),
        _ => {}
    }
    let ctx = load_context(&cli)?;
    init_logging(&ctx.config);
    match cli.command {
        Command::Serve(args) => args.run(&ctx),
        Command::Import(args) => args.run(&ctx),
        Command::Trace(args) => args.run(&ctx),
        Command::Config(args) => args.run(Some(&ctx)),
        Command::Certs(args) => args.run(),
        Command::Gen(args) => args.run(),
        Command::Bench(args) => args.run(&ctx),
        Command::User(args) => args.run(&ctx),
        Command::Outbox(args) => args.run(&ctx),
        Command::Demo(args) => args.run(),
        Command::Directory(args) => args.run(&ctx),
        Command::Whois(args) => args.run(&ctx),
        Command::Status(args) => {
            if !args.run(&ctx)? {
                use std::io::Write as _;
                let _ = std::io::stdout().flush();
                std::process::exit(2);
            }
            Ok(())
        }
    }
}
