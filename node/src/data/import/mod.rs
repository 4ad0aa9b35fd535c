//! `gsp import`: load tracking-and-tracing data from EPCIS 2.0 JSON-LD, EPCIS
//! XML (1.2 and 2.0) and GSP's CSV layout.
//!
//! Every file is imported in one write transaction: a file with an error
//! imports nothing, and the error names the file, the line or JSON pointer,
//! and what is wrong. Readers stream, so memory does not grow with the file.
//! A file whose SHA-256 was imported before is skipped; any other overlap is
//! merged idempotently (existing events are recognised by eventID or content,
//! existing codes are updated, never duplicated).

mod cache;
pub mod csv_format;
pub mod epcis_json;
pub mod epcis_xml;
mod page_cache;
pub mod record;
pub mod sink;

use crate::config::ImportSettings;
use crate::storage::schema::imports;
use crate::storage::{Database, StorageError, write_transaction};
use diesel::prelude::*;
use record::{Location, Record};
pub use sink::ImportStats;
use sink::{Sink, SinkError};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// An input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// GSP's CSV layout (see `data/MODEL.md`).
    Csv,
    /// EPCIS 2.0 JSON / JSON-LD.
    EpcisJson,
    /// EPCIS 1.2 or 2.0 XML.
    EpcisXml,
}

impl Format {
    /// The format's name as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::EpcisJson => "epcis-json",
            Format::EpcisXml => "epcis-xml",
        }
    }

    /// Guesses the format from the first bytes of the file, then its extension.
    pub fn detect(path: &Path, head: &[u8]) -> Option<Format> {
        let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
        let first = text.iter().copied().find(|b| !b.is_ascii_whitespace());
        match first {
            Some(b'{') => return Some(Format::EpcisJson),
            Some(b'<') => return Some(Format::EpcisXml),
            _ => {}
        }
        if text.starts_with(csv_format::MAGIC.as_bytes()) {
            return Some(Format::Csv);
        }
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Some(Format::Csv),
            Some("json" | "jsonld") => Some(Format::EpcisJson),
            Some("xml") => Some(Format::EpcisXml),
            _ => None,
        }
    }
}

/// Why a file was not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file's content is wrong at a known place.
    #[error("{file}: {location}: {message}")]
    Content {
        /// The file.
        file: PathBuf,
        /// Where in it.
        location: Location,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read.
    #[error("{file}: {message}")]
    Io {
        /// The file.
        file: PathBuf,
        /// Why.
        message: String,
    },
    /// The database failed.
    #[error("{file}: {source}")]
    Storage {
        /// The file being imported.
        file: PathBuf,
        /// The failure.
        source: StorageError,
    },
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Force a format instead of detecting it.
    pub format: Option<Format>,
    /// Batch and cache sizes.
    pub settings: ImportSettings,
    /// Draw a progress bar on the terminal.
    pub progress: bool,
}

/// What importing one file did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    /// The file.
    pub file: PathBuf,
    /// Its format.
    pub format: Format,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// True when this exact file had been imported before (nothing was done).
    pub already_imported: bool,
    /// What was written.
    pub stats: ImportStats,
    /// Wall time.
    pub seconds: f64,
}

/// Imports one file into `db`. See the module documentation.
pub fn import_file(
    db: &Database,
    path: &Path,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let io_err = |e: std::io::Error| ImportError::Io {
        file: path.to_owned(),
        message: e.to_string(),
    };
    let storage_err = |source: StorageError| ImportError::Storage {
        file: path.to_owned(),
        source,
    };
    let (sha256, size, head) = digest_file(path).map_err(io_err)?;
    let format = match options.format.or_else(|| Format::detect(path, &head)) {
        Some(f) => f,
        None => {
            return Err(ImportError::Content {
                file: path.to_owned(),
                location: Location::File,
                message: "cannot tell the format (not EPCIS JSON, EPCIS XML or GSP CSV starting with #gsp-csv,1); give --format".into(),
            });
        }
    };
    let mut conn = page_cache::ImportConnection::new(
        db.conn().map_err(storage_err)?,
        options.settings.sqlite_cache_mib,
    )
    .map_err(storage_err)?;
    let seen: Option<i64> = imports::table
        .filter(imports::sha256.eq(&sha256))
        .select(imports::id)
        .first(&mut *conn)
        .optional()
        .map_err(|e| storage_err(e.into()))?;
    let mut report = ImportReport {
        file: path.to_owned(),
        format,
        sha256: sha256.clone(),
        already_imported: seen.is_some(),
        stats: ImportStats::default(),
        seconds: 0.0,
    };
    if seen.is_some() {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    let file = std::fs::File::open(path).map_err(io_err)?;
    let counter = Arc::new(AtomicU64::new(0));
    let reader = BufReader::with_capacity(
        1 << 20,
        CountingReader {
            inner: file,
            count: counter.clone(),
        },
    );
    let progress = Progress::new(options.progress, path, size, counter);

    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Two stages on two threads: this one writes to the database while a
    // reader thread parses the file, handing records over in chunks.
    let outcome = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(8);
        let reader_thread = scope.spawn(move || read_records(format, reader, tx));
        let written = write_transaction(&mut conn, |conn| -> Result<ImportStats, Failure> {
            let import_id: i64 =
                crate::on_backend!(&mut *conn, |c| diesel::insert_into(imports::table)
                    .values((
                        imports::sha256.eq(&sha256),
                        imports::file_name.eq(&file_name),
                        imports::format.eq(format.as_str()),
                        imports::imported_at.eq(now_ms()),
                        imports::codes.eq(0i64),
                        imports::events.eq(0i64),
                        imports::records.eq(0i64),
                    ))
                    .returning(imports::id)
                    .get_result(c))?;
            let mut sink = Sink::new(
                conn,
                import_id,
                options.settings.batch_size,
                options.settings.code_cache,
            );
            for chunk in rx.iter() {
                let records = chunk?;
                let n = records.len() as u64;
                for (record, location) in records {
                    sink.push(record, location)?;
                }
                progress.tick(n);
            }
            let (stats, context) = sink.finish()?;
            let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            diesel::update(imports::table.find(import_id))
                .set((
                    imports::codes.eq(count(stats.codes_new + stats.codes_updated)),
                    imports::events.eq(count(stats.events_new)),
                    imports::records.eq(count(stats.master_data)),
                    imports::context.eq((!context.is_empty())
                        .then(|| serde_json::Value::Object(context).to_string())),
                ))
                .execute(conn)?;
            Ok(stats)
        });
        // If writing failed first, the reader stops at its next send.
        let _ = reader_thread.join();
        written
    });
    progress.finish();
    report.stats = outcome.map_err(|f| f.into_import_error(path))?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Records handed from the reader thread to the writer, or the reader's error.
type Chunk = Result<Vec<(Record, Location)>, Failure>;

/// Records per chunk sent between the threads.
const CHUNK_RECORDS: usize = 2048;

/// The reader thread: parses the file and sends records in chunks; stops
/// when the writer has gone (it failed) or at the first error, which it sends.
fn read_records(format: Format, reader: impl BufRead, tx: std::sync::mpsc::SyncSender<Chunk>) {
    let mut buf: Vec<(Record, Location)> = Vec::with_capacity(CHUNK_RECORDS);
    let mut push = |record: Record, location: Location| -> Result<(), Stop> {
        buf.push((record, location));
        if buf.len() >= CHUNK_RECORDS {
            let full = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK_RECORDS));
            tx.send(Ok(full)).map_err(|_| Stop)?;
        }
        Ok(())
    };
    let outcome = match format {
        Format::Csv => read_csv(reader, &mut push),
        Format::EpcisJson => epcis_json::read(reader, &mut push).map_err(|e| match e {
            epcis_json::JsonReadError::Document(l, m) => ReadFailure::Content(l, m),
            epcis_json::JsonReadError::Handler(Stop) => ReadFailure::Stopped,
        }),
        Format::EpcisXml => read_xml(reader, &mut push),
    };
    match outcome {
        Ok(()) => {
            let rest = std::mem::take(&mut buf);
            if !rest.is_empty() {
                let _ = tx.send(Ok(rest));
            }
        }
        Err(ReadFailure::Content(l, m)) => {
            let _ = tx.send(Err(Failure::Content(l, m)));
        }
        Err(ReadFailure::Stopped) => {}
    }
}

/// The writer went away; the reader stops.
struct Stop;

/// Why the reader stopped early.
enum ReadFailure {
    /// The file is wrong here.
    Content(Location, String),
    /// The writer stopped.
    Stopped,
}

impl From<Stop> for ReadFailure {
    fn from(_: Stop) -> Self {
        ReadFailure::Stopped
    }
}

/// Failure inside the import transaction.
enum Failure {
    Content(Location, String),
    Sink(SinkError),
    Database(diesel::result::Error),
}

impl From<SinkError> for Failure {
    fn from(e: SinkError) -> Self {
        Failure::Sink(e)
    }
}

impl From<diesel::result::Error> for Failure {
    fn from(e: diesel::result::Error) -> Self {
        Failure::Database(e)
    }
}

impl Failure {
    fn into_import_error(self, path: &Path) -> ImportError {
        match self {
            Failure::Content(location, message)
            | Failure::Sink(SinkError::Invalid { location, message }) => ImportError::Content {
                file: path.to_owned(),
                location,
                message,
            },
            Failure::Sink(SinkError::Database(e)) | Failure::Database(e) => ImportError::Storage {
                file: path.to_owned(),
                source: StorageError::Query(e),
            },
            Failure::Sink(SinkError::Retry) => ImportError::Storage {
                file: path.to_owned(),
                source: StorageError::Task("an internal retry escaped the importer".into()),
            },
        }
    }
}

fn read_csv(
    reader: impl BufRead,
    push: &mut dyn FnMut(Record, Location) -> Result<(), Stop>,
) -> Result<(), ReadFailure> {
    let mut csv = csv_format::CsvReader::new(reader);
    loop {
        match csv.next_record() {
            Ok(Some((record, location))) => push(record, location)?,
            Ok(None) => return Ok(()),
            Err(e) => return Err(ReadFailure::Content(Location::Line(e.line), e.message)),
        }
    }
}

fn read_xml(
    reader: impl BufRead,
    push: &mut dyn FnMut(Record, Location) -> Result<(), Stop>,
) -> Result<(), ReadFailure> {
    let mut xml = epcis_xml::EpcisXmlReader::new(reader);
    loop {
        let item = xml.next_item().map_err(|e| {
            ReadFailure::Content(
                match e.column {
                    Some(c) => Location::LineColumn(e.line, c),
                    None => Location::Line(e.line),
                },
                e.message.clone(),
            )
        })?;
        match item {
            Some(epcis_xml::XmlItem::Event { value, line, index }) => {
                let pointer = format!("/epcisBody/eventList/{index}");
                let record = crate::data::epcis::event_from_json(value, &pointer).map_err(|e| {
                    ReadFailure::Content(
                        Location::Line(line),
                        format!("event {} ({}): {}", index + 1, e.pointer, e.message),
                    )
                })?;
                push(Record::Event(Box::new(record)), Location::Line(line))?;
            }
            Some(epcis_xml::XmlItem::MasterData { value, line }) => {
                let records = crate::data::epcis::vocabulary_to_records(&value, "/vocabulary")
                    .map_err(|e| ReadFailure::Content(Location::Line(line), e.message))?;
                for (record, _) in records {
                    push(record, Location::Line(line))?;
                }
            }
            None => {
                // The namespaces seen, as JSON-LD terms for the extension fields.
                let ctx =
                    crate::data::epcis::DocContext::from_json(&xml.document().json_ld_context())
                        .map_err(|m| ReadFailure::Content(Location::File, m))?;
                push(Record::Context(ctx.terms), Location::File)?;
                return Ok(());
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// SHA-256, size and the first bytes of a file (one pass).
fn digest_file(path: &Path) -> std::io::Result<(String, u64, Vec<u8>)> {
    let mut file = std::fs::File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 4096 {
            head.extend_from_slice(&buf[..n.min(4096 - head.len())]);
        }
        ctx.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(ctx.finish().as_ref()), size, head))
}

/// Counts bytes read, for the progress bar.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A progress bar with rate and ETA, drawn only on a terminal.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    bytes: Arc<AtomicU64>,
    records: std::cell::Cell<u64>,
    last: std::cell::Cell<Instant>,
}

impl Progress {
    fn new(enabled: bool, path: &Path, size: u64, bytes: Arc<AtomicU64>) -> Progress {
        use std::io::IsTerminal;
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(size);
            let style = indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            bar
        });
        Progress {
            bar,
            bytes,
            records: std::cell::Cell::new(0),
            last: std::cell::Cell::new(Instant::now()),
        }
    }

    fn tick(&self, n: u64) {
        let Some(bar) = &self.bar else { return };
        self.records.set(self.records.get() + n);
        if self.last.get().elapsed() > Duration::from_millis(200) {
            self.last.set(Instant::now());
            bar.set_position(self.bytes.load(Ordering::Relaxed));
            bar.set_message(format!("{} records", self.records.get()));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
