//! `gsp bench …`: the data-store benchmarks behind BENCHMARKS.md.
//!
//! - `ingest`: `gsp gen` data imported by GSP, and the same rows loaded raw by
//!   `sqlite3 .import` or PostgreSQL `COPY` into an empty database with the
//!   same schema, in the same run; prints both rates and their ratio, and the
//!   bytes on disk per code.
//! - `trace`: p50/p99 latency of `trace` for random packs of an existing
//!   database, then one bulk lookup of N codes.
//!
//! The raw loaders are the `sqlite3` and `psql` programs; the command says so
//! when one is missing.

use super::Context;
use crate::config::{Config, DatabaseSettings};
use crate::data::import::{ImportOptions, import_file};
use crate::data::query::{bulk::bulk_lookup, trace::trace};
use crate::data::synthetic::{GenFormat, GenOptions, generate};
use crate::storage::{Backend, Database, DatabaseUrl, DbConnection};
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Arguments of `gsp bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Import rate of generated data against the database's own bulk loader.
    Ingest(IngestArgs),
    /// Trace latency and bulk lookup time on the database given by --database.
    Trace(TraceArgs),
    /// Two nodes and a directory on this machine: verifications per second
    /// end to end against the cryptographic ceiling and bare mutual TLS,
    /// latency at half load, one large verification, memory.
    Exchange(super::bench_exchange::ExchangeBenchArgs),
}

#[derive(Debug, Args)]
struct IngestArgs {
    /// Packs to generate.
    #[arg(long, default_value_t = 1_000_000)]
    packs: u64,
    /// Backend to measure.
    #[arg(long, value_parser = ["sqlite", "postgres"], default_value = "sqlite")]
    backend: String,
    /// PostgreSQL server for --backend postgres; a database is created and dropped per run.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    /// Folder for the generated file and databases (default: a temporary folder).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the GSP-imported database (its URL is printed) for `gsp bench trace`.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Args)]
struct TraceArgs {
    /// Random packs to trace.
    #[arg(long, default_value_t = 10_000)]
    samples: usize,
    /// Codes in the bulk lookup.
    #[arg(long, default_value_t = 1_000_000)]
    lookup: usize,
}

impl BenchArgs {
    /// Whether this is `gsp bench exchange`, which builds its own nodes and
    /// needs no node context.
    pub fn is_exchange(&self) -> bool {
        matches!(self.command, BenchCommand::Exchange(_))
    }

    /// Runs a benchmark that needs no node context (`exchange`).
    pub fn run_without_context(&self) -> anyhow::Result<()> {
        match &self.command {
            BenchCommand::Exchange(a) => a.run(),
            _ => bail!("this benchmark runs against a node: give --data-dir or --database"),
        }
    }

    /// Runs the benchmark.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        match &self.command {
            BenchCommand::Ingest(a) => ingest(a, &ctx.config),
            BenchCommand::Trace(a) => trace_bench(a, ctx),
            BenchCommand::Exchange(a) => a.run(),
        }
    }
}

fn rate(n: u64, secs: f64) -> f64 {
    n as f64 / secs.max(1e-9)
}

fn ingest(a: &IngestArgs, config: &Config) -> anyhow::Result<()> {
    let temp;
    let work: &Path = match &a.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path()
        }
    };
    let file = work.join(format!("bench-{}.csv", a.packs));
    if !file.exists() {
        let started = Instant::now();
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
        generate(
            &GenOptions {
                packs: a.packs,
                party: "KEN".into(),
                seed: 1,
                format: GenFormat::Csv,
            },
            &mut out,
        )?;
        drop(out);
        println!(
            "generated {} in {:.1} s",
            file.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let settings = DatabaseSettings {
        sqlite_synchronous: config.database.sqlite_synchronous,
        ..config.database.clone()
    };
    let stamp = std::process::id();
    let (gsp_url, raw_url, cleanup): (DatabaseUrl, DatabaseUrl, Vec<String>) =
        match a.backend.as_str() {
            "sqlite" => {
                let g = work.join(format!("gsp-{stamp}.db"));
                let r = work.join(format!("raw-{stamp}.db"));
                (DatabaseUrl::Sqlite(g), DatabaseUrl::Sqlite(r), Vec::new())
            }
            _ => {
                let base = a.postgres.trim_end_matches('/');
                let root = base.rsplit_once('/').map(|(r, _)| r).unwrap_or(base);
                let (g, r) = (format!("gsp_bench_{stamp}"), format!("gsp_raw_{stamp}"));
                for db in [&g, &r] {
                    psql(&a.postgres, &format!("CREATE DATABASE {db}"))?;
                }
                let gu = format!("{root}/{g}");
                let ru = format!("{root}/{r}");
                (
                    DatabaseUrl::Postgres(gu),
                    DatabaseUrl::Postgres(ru),
                    vec![g, r],
                )
            }
        };
    let outcome = (|| -> anyhow::Result<()> {
        // GSP.
        let db = Database::open(&gsp_url, &settings)?;
        let options = ImportOptions {
            format: None,
            settings: config.import.clone(),
            progress: false,
        };
        let report = import_file(&db, &file, &options)?;
        let codes = report.stats.codes_new;
        let rows = codes + report.stats.events_new;
        println!(
            "gsp import ({}): {} codes + {} events in {:.2} s = {:.0} codes/s",
            db.backend(),
            codes,
            report.stats.events_new,
            report.seconds,
            rate(codes, report.seconds)
        );
        let bytes = database_bytes(&mut *db.conn()?, &gsp_url)?;
        println!(
            "bytes on disk: {bytes} = {:.1} bytes/code (all tables and indexes)",
            bytes as f64 / codes as f64
        );

        // The same rows, raw.
        // Every table the import wrote, parents before children.
        let tables = [
            "operators",
            "facilities",
            "machines",
            "products",
            "imports",
            "events",
            "codes",
            "event_codes",
            "aggregation_history",
        ];
        let files: Vec<PathBuf> = tables
            .iter()
            .map(|t| work.join(format!("{t}.csv")))
            .collect();
        for (t, f) in tables.iter().zip(&files) {
            export(&gsp_url, t, f)?;
        }
        drop(Database::open(&raw_url, &settings)?); // same schema, empty
        let load: Vec<(&str, &Path)> = tables
            .iter()
            .copied()
            .zip(files.iter().map(PathBuf::as_path))
            .collect();
        let started = Instant::now();
        raw_load(&raw_url, &load, &settings, config.import.sqlite_cache_mib)?;
        let raw_secs = started.elapsed().as_secs_f64();
        let tool = if db.backend() == Backend::Sqlite {
            "sqlite3 .import"
        } else {
            "psql \\copy (COPY)"
        };
        println!(
            "{tool}: the same {rows} rows in {raw_secs:.2} s = {:.0} codes/s",
            rate(codes, raw_secs)
        );
        println!(
            "ratio gsp/raw: {:.2}",
            rate(codes, report.seconds) / rate(codes, raw_secs)
        );
        if a.keep {
            println!("kept: --database {}", gsp_url);
        }
        Ok(())
    })();
    if !a.keep {
        for db in &cleanup {
            let _ = psql(
                &a.postgres,
                &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            );
        }
    } else if let Some(raw) = cleanup.get(1) {
        let _ = psql(
            &a.postgres,
            &format!("DROP DATABASE IF EXISTS {raw} WITH (FORCE)"),
        );
    }
    outcome
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let status = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-qc", sql])
        .status()
        .context("running psql (install postgresql-client)")?;
    if !status.success() {
        bail!("psql failed: {sql}");
    }
    Ok(())
}

/// Writes a table as CSV with the database's own tool.
fn export(url: &DatabaseUrl, table: &str, out: &Path) -> anyhow::Result<()> {
    let status = match url {
        DatabaseUrl::Sqlite(db) => Command::new("sqlite3")
            .arg("-csv")
            .arg(db)
            .arg(format!("SELECT * FROM {table}"))
            .stdout(std::fs::File::create(out)?)
            .status()
            .context("running sqlite3 (install the sqlite3 package)")?,
        DatabaseUrl::Postgres(u) => Command::new("psql")
            .arg(u)
            .args(["-v", "ON_ERROR_STOP=1", "-qc"])
            .arg(format!("\\copy {table} TO '{}' CSV", out.display()))
            .status()
            .context("running psql")?,
    };
    if !status.success() {
        bail!("exporting {table} failed");
    }
    Ok(())
}

/// Loads CSV files into tables with the database's own bulk loader, in one
/// transaction, with the same durability settings and (SQLite) page cache
/// GSP's import uses.
fn raw_load(
    url: &DatabaseUrl,
    tables: &[(&str, &Path)],
    settings: &DatabaseSettings,
    cache_mib: u32,
) -> anyhow::Result<()> {
    let status = match url {
        DatabaseUrl::Sqlite(db) => {
            let sync = settings.sqlite_synchronous.as_str();
            let mut cmd = Command::new("sqlite3");
            cmd.arg(db)
                .arg(format!(
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA cache_size=-{};",
                    cache_mib * 1024
                ))
                .arg("BEGIN");
            for (table, file) in tables {
                cmd.arg(format!(".import --csv {} {table}", file.display()));
            }
            cmd.arg("COMMIT").status().context("running sqlite3")?
        }
        DatabaseUrl::Postgres(u) => {
            let mut script = String::from("BEGIN;\n");
            for (table, file) in tables {
                script.push_str(&format!("\\copy {table} FROM '{}' CSV\n", file.display()));
            }
            script.push_str("COMMIT;\n");
            let script_file =
                std::env::temp_dir().join(format!("gsp-raw-{}.sql", std::process::id()));
            std::fs::write(&script_file, script)?;
            let s = Command::new("psql")
                .arg(u)
                .args(["-v", "ON_ERROR_STOP=1", "-q", "-f"])
                .arg(&script_file)
                .status()
                .context("running psql")?;
            let _ = std::fs::remove_file(&script_file);
            s
        }
    };
    if !status.success() {
        bail!("raw load failed");
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Bytes {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    bytes: i64,
}

/// Size of the database on disk: SQLite pages in use, or the PostgreSQL
/// relations (tables, indexes, TOAST) of the current schema.
fn database_bytes(conn: &mut DbConnection, url: &DatabaseUrl) -> anyhow::Result<u64> {
    let bytes = match conn {
        DbConnection::Sqlite(c) => {
            c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")?;
            let row: Bytes = diesel::sql_query(
                "SELECT (SELECT page_count FROM pragma_page_count()) * (SELECT page_size FROM pragma_page_size()) AS bytes",
            )
            .get_result(c)?;
            row.bytes
        }
        DbConnection::Postgresql(c) => {
            c.batch_execute("VACUUM ANALYZE")?;
            let row: Bytes = diesel::sql_query(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint AS bytes FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'",
            )
            .get_result(c)?;
            row.bytes
        }
    };
    let _ = url;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

#[derive(QueryableByName)]
struct CodeText {
    #[diesel(sql_type = diesel::sql_types::Text)]
    code: String,
}

fn trace_bench(a: &TraceArgs, ctx: &Context) -> anyhow::Result<()> {
    use rand::{RngExt, SeedableRng};
    let db = ctx.open_db()?;
    let mut conn = db.conn()?;
    let max_id: i64 = crate::storage::schema::codes::table
        .select(diesel::dsl::max(crate::storage::schema::codes::id))
        .first::<Option<i64>>(&mut *conn)?
        .unwrap_or(0);
    if max_id == 0 {
        bail!("the database has no codes; import some first (gsp bench ingest --keep)");
    }
    let total: i64 = crate::storage::schema::codes::table
        .count()
        .get_result(&mut *conn)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    // Random packs: random ids, keeping unit-level codes.
    let mut sample: Vec<String> = Vec::with_capacity(a.samples.max(a.lookup));
    let want = a.samples.max(a.lookup);
    while sample.len() < want {
        let ids: Vec<i64> = (0..4096).map(|_| rng.random_range(1..=max_id)).collect();
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let rows: Vec<CodeText> = diesel::sql_query(format!(
            "SELECT code FROM codes WHERE level = 0 AND id IN ({list})"
        ))
        .load(&mut *conn)?;
        sample.extend(rows.into_iter().map(|r| r.code));
    }
    sample.truncate(want);
    println!(
        "{} codes in the database ({}), {} random packs",
        total,
        db.backend(),
        sample.len()
    );

    // Warm up briefly, then time each trace.
    for code in sample.iter().take(200) {
        trace(&mut conn, code)?;
    }
    let mut times: Vec<f64> = Vec::with_capacity(a.samples);
    for code in sample.iter().take(a.samples) {
        let t = Instant::now();
        let found = trace(&mut conn, code)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if found.is_none() {
            bail!("sampled code {code} not found");
        }
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "trace: {} codes, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        times.len(),
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    let t = Instant::now();
    let answers = bulk_lookup(&mut conn, &sample[..a.lookup.min(sample.len())])?;
    let secs = t.elapsed().as_secs_f64();
    let known = answers.iter().filter(|v| v.record.is_some()).count();
    println!(
        "bulk lookup: {} codes in {secs:.2} s ({known} known)",
        answers.len()
    );
    Ok(())
}
