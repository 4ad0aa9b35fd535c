//! Helpers shared by the node's integration tests: the GS1 fixtures, the
//! official EPCIS JSON Schema, a generated data set and an opened database.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod exchange;

use gsp_node::config::{Config, ImportSettings};
use gsp_node::data::import::{ImportOptions, ImportReport, import_file};
use gsp_node::data::synthetic::{GenFormat, GenOptions, GenSummary, generate};
use gsp_node::storage::testing::TestDb;
use gsp_node::storage::{Backend, Database};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `../shared/fixtures/gs1-epcis`, found by walking up from the crate.
pub fn fixtures() -> PathBuf {
    let mut dir = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    loop {
        let candidate = dir.join("shared/fixtures/gs1-epcis");
        if candidate.is_dir() {
            return candidate;
        }
        assert!(
            dir.pop(),
            "shared/fixtures/gs1-epcis not found above the crate"
        );
    }
}

/// A throwaway database on `backend`, opened and migrated.
pub fn open(backend: Backend) -> (TestDb, Database) {
    let test_db = TestDb::new(backend).expect("test database");
    let db = Database::open(&test_db.url, &Config::default().database).expect("open database");
    (test_db, db)
}

/// Import options with defaults and no progress bar.
pub fn options() -> ImportOptions {
    ImportOptions {
        format: None,
        settings: ImportSettings::default(),
        progress: false,
    }
}

/// Imports one file.
pub fn import(
    db: &Database,
    path: &Path,
) -> Result<ImportReport, gsp_node::data::import::ImportError> {
    import_file(db, path, &options())
}

/// Writes a generated data set into `dir` and returns its path and summary.
pub fn generated(dir: &Path, packs: u64, seed: u64, format: GenFormat) -> (PathBuf, GenSummary) {
    let name = match format {
        GenFormat::Csv => format!("ken-{packs}-{seed}.csv"),
        GenFormat::EpcisJson => format!("ken-{packs}-{seed}.jsonld"),
    };
    let path = dir.join(name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let summary = generate(
        &GenOptions {
            packs,
            party: "KEN".into(),
            seed,
            format,
        },
        &mut out,
    )
    .expect("generate");
    drop(out);
    (path, summary)
}

/// Counts rows of a table.
pub fn count(db: &Database, table: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = db.conn().expect("conn");
    let row: N = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .get_result(&mut *conn)
        .expect("count");
    row.n
}

/// Serves GS1's modular schemas from the local copy so `$ref`s resolve offline.
struct LocalSchemas(PathBuf);

impl jsonschema::Retrieve for LocalSchemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let path = uri.path().as_str();
        let relative = path
            .strip_prefix("/EPCIS/JSON-Schema/")
            .ok_or_else(|| format!("not a local GS1 schema: {uri}"))?;
        let text = std::fs::read_to_string(self.0.join(relative))?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// A validator for GS1's official `EPCIS-JSON-Schema.json` (formats checked).
pub fn epcis_schema() -> jsonschema::Validator {
    let path = fixtures().join("schema/EPCIS-JSON-Schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("schema"))
        .expect("schema json");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .with_retriever(LocalSchemas(fixtures().join("schema")))
        .build(&schema)
        .expect("build validator")
}

/// Every schema violation of `doc`, with its JSON pointer.
pub fn schema_errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}
