//! Operational counters, served in Prometheus' text format at `GET /metrics`
//! on the local API. Content-free: counts and states, never codes, cases or
//! Parties' messages.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counters of one `gsp serve` process.
#[derive(Debug, Default)]
pub struct Metrics {
    received_accepted: AtomicU64,
    received_duplicate: AtomicU64,
    refused: Mutex<BTreeMap<String, u64>>,
    delivered: AtomicU64,
    delivery_retries: AtomicU64,
    delivery_refused: AtomicU64,
    automatic_answers: AtomicU64,
    taken_from_place: AtomicU64,
    taken_from_outbox: AtomicU64,
    answers_in_response_sent: AtomicU64,
    answers_in_response_taken: AtomicU64,
    response_receipts_recorded: AtomicU64,
    response_receipts_refused: AtomicU64,
}

/// Gauges read from elsewhere at scrape time.
#[derive(Debug, Default, Clone)]
pub struct Gauges {
    /// Messages waiting in the outbox.
    pub outbox_pending: Option<i64>,
    /// Messages that failed delivery.
    pub outbox_failed: Option<i64>,
    /// Seconds the directory copy stays valid (negative: expired).
    pub directory_valid_seconds: Option<i64>,
    /// Active alarms.
    pub alarms: Option<i64>,
    /// What SQLite's group-commit writer has committed (`None` on
    /// PostgreSQL).
    pub sqlite_writer: Option<crate::storage::WriterCounts>,
}

impl Metrics {
    /// A message accepted from a peer (`duplicate`: seen before).
    pub fn received(&self, duplicate: bool) {
        if duplicate {
            self.received_duplicate.fetch_add(1, Ordering::Relaxed);
        } else {
            self.received_accepted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A message refused with a SPEC error code.
    pub fn refused(&self, code: &str) {
        if let Ok(mut m) = self.refused.lock() {
            *m.entry(code.to_owned()).or_default() += 1;
        }
    }

    /// A delivery attempt's outcome.
    pub fn delivery(&self, delivered: bool, refused: bool) {
        let c = match (delivered, refused) {
            (true, _) => &self.delivered,
            (false, true) => &self.delivery_refused,
            (false, false) => &self.delivery_retries,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages a delivery worker took for an attempt: `handed` came to it in
    /// memory through a place (queued already claimed for it), `claimed` were
    /// claimed from the outbox.
    pub fn taken(&self, handed: usize, claimed: usize) {
        let n = |c: usize| u64::try_from(c).unwrap_or(u64::MAX);
        self.taken_from_place
            .fetch_add(n(handed), Ordering::Relaxed);
        self.taken_from_outbox
            .fetch_add(n(claimed), Ordering::Relaxed);
    }

    /// Requests answered automatically.
    pub fn automatic_answers(&self, n: u64) {
        self.automatic_answers.fetch_add(n, Ordering::Relaxed);
    }

    /// Answers returned in the response to their request (SPEC §15.6).
    pub fn answers_in_response(&self, n: u64) {
        self.answers_in_response_sent
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Answers taken from the response to our request and recorded.
    pub fn answer_taken_from_response(&self) {
        self.answers_in_response_taken
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Receipts that came back for answers returned in responses:
    /// `recorded` ones settled their answer, the others were refused.
    pub fn response_receipts(&self, recorded: u64, refused: u64) {
        self.response_receipts_recorded
            .fetch_add(recorded, Ordering::Relaxed);
        self.response_receipts_refused
            .fetch_add(refused, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, rows: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in rows {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        counter(
            &mut out,
            "gsp_federation_received_total",
            "Messages accepted from other Parties' nodes.",
            &[
                (
                    "{result=\"accepted\"}",
                    self.received_accepted.load(Ordering::Relaxed),
                ),
                (
                    "{result=\"duplicate\"}",
                    self.received_duplicate.load(Ordering::Relaxed),
                ),
            ],
        );
        let refused: Vec<(String, u64)> = self
            .refused
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (format!("{{code=\"{k}\"}}"), *v))
                    .collect()
            })
            .unwrap_or_default();
        let refused_rows: Vec<(&str, u64)> =
            refused.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        counter(
            &mut out,
            "gsp_federation_refused_total",
            "Federation requests refused, by error code (messages; rate_limited on every endpoint).",
            &refused_rows,
        );
        counter(
            &mut out,
            "gsp_delivery_attempts_total",
            "Delivery attempts to other Parties' nodes, by outcome.",
            &[
                (
                    "{result=\"delivered\"}",
                    self.delivered.load(Ordering::Relaxed),
                ),
                (
                    "{result=\"retry\"}",
                    self.delivery_retries.load(Ordering::Relaxed),
                ),
                (
                    "{result=\"refused\"}",
                    self.delivery_refused.load(Ordering::Relaxed),
                ),
            ],
        );
        counter(
            &mut out,
            "gsp_delivery_taken_total",
            "Messages taken for a delivery attempt: handed to the peer's worker in memory through a place, or claimed from the outbox.",
            &[
                (
                    "{from=\"place\"}",
                    self.taken_from_place.load(Ordering::Relaxed),
                ),
                (
                    "{from=\"outbox\"}",
                    self.taken_from_outbox.load(Ordering::Relaxed),
                ),
            ],
        );
        counter(
            &mut out,
            "gsp_answers_in_response_total",
            "Answers that travelled in the response to their request: sent by this node, or taken by it from a response and recorded.",
            &[
                (
                    "{direction=\"sent\"}",
                    self.answers_in_response_sent.load(Ordering::Relaxed),
                ),
                (
                    "{direction=\"taken\"}",
                    self.answers_in_response_taken.load(Ordering::Relaxed),
                ),
            ],
        );
        counter(
            &mut out,
            "gsp_response_receipts_total",
            "Receipts returned in batches for answers sent in responses, by outcome.",
            &[
                (
                    "{result=\"recorded\"}",
                    self.response_receipts_recorded.load(Ordering::Relaxed),
                ),
                (
                    "{result=\"refused\"}",
                    self.response_receipts_refused.load(Ordering::Relaxed),
                ),
            ],
        );
        counter(
            &mut out,
            "gsp_automatic_answers_total",
            "Requests answered automatically from this node's data.",
            &[("", self.automatic_answers.load(Ordering::Relaxed))],
        );
        if let Some(w) = gauges.sqlite_writer {
            counter(
                &mut out,
                "gsp_sqlite_commits_total",
                "Transactions committed by the SQLite writer: with the configured synchronous (an fsync under full), or without an fsync for writes that need none. Writes per commit = gsp_sqlite_writes_total / these.",
                &[
                    ("{fsync=\"configured\"}", w.commits_synced),
                    ("{fsync=\"no\"}", w.commits_unsynced),
                ],
            );
            counter(
                &mut out,
                "gsp_sqlite_writes_total",
                "Writes in the SQLite writer's committed transactions (several share one commit; one that failed alone counts too).",
                &[("", w.writes)],
            );
            let _ = writeln!(
                out,
                "# HELP gsp_sqlite_commit_seconds_total Time the SQLite writer spent on its transactions, from BEGIN to the end of COMMIT (fsync included).\n# TYPE gsp_sqlite_commit_seconds_total counter\ngsp_sqlite_commit_seconds_total {:.6}",
                w.commit_micros as f64 / 1e6
            );
        }
        let gauge = |out: &mut String, name: &str, help: &str, v: Option<i64>| {
            if let Some(v) = v {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
            }
        };
        gauge(
            &mut out,
            "gsp_outbox_pending",
            "Messages waiting for delivery.",
            gauges.outbox_pending,
        );
        gauge(
            &mut out,
            "gsp_outbox_failed",
            "Messages that could not be delivered before they expired.",
            gauges.outbox_failed,
        );
        gauge(
            &mut out,
            "gsp_directory_valid_seconds",
            "Seconds the verified directory copy stays valid (negative: expired, federation stopped).",
            gauges.directory_valid_seconds,
        );
        gauge(
            &mut out,
            "gsp_alarms_active",
            "Active alarms (see gsp status).",
            gauges.alarms,
        );
        out
    }
}
