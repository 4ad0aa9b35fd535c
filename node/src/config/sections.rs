//! The config sections. Each field's doc comment is what the example config
//! shows, so write it for an operator.

use super::settings::settings;
use std::net::SocketAddr;

settings! {
    /// Who this node is.
    pub struct NodeSettings {
        /// The Party this node serves: an ISO 3166-1 alpha-3 code (e.g. KEN) or EU.
        /// Unset until the node has an identity (`gsp certs init`).
        party: Option<String> = None, example = "\"KEN\"";
        /// A human name for this node, shown to officers and in logs.
        name: String = "GSP node".to_owned();
    }
}

settings! {
    /// Where the data lives.
    pub struct DatabaseSettings {
        /// Database URL: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`.
        /// Unset means an SQLite file `gsp.db` in the data directory.
        /// Also `--database` and GSP_DATABASE_URL.
        url: Option<String> = None, example = "\"postgres://gsp@127.0.0.1:5432/gsp\"";
        /// Connections kept in the pool.
        pool_size: u32 = 8;
        /// Seconds to wait for a free pooled connection before failing a request.
        pool_timeout_secs: u64 = 30;
        /// SQLite only: `full` makes every commit durable against power loss;
        /// `normal` is faster and durable against a process crash (WAL mode).
        sqlite_synchronous: SqliteSync = SqliteSync::Full;
        /// SQLite only: page cache per connection, in MiB (a node keeps up to
        /// `pool_size` + 1 connections). Reads beyond it come from the
        /// operating system's file cache, which is not the node's memory.
        sqlite_cache_mib: u32 = 16;
        /// SQLite only: how much of the database file may be read through a
        /// memory map, in MiB (0: none, the default). A map makes large bulk
        /// lookups a little faster (1,000,000 codes on 10 million packs on one
        /// connection: 3.0–3.3 s instead of 3.4 s here) but every page it
        /// touches counts in the node's resident memory (about 1 GB more
        /// during such a lookup).
        sqlite_mmap_mib: u32 = 0;
        /// SQLite only: milliseconds between WAL checkpoints run by a thread
        /// of their own, which also has the writer let the log start over
        /// once it passes 16 MiB (0: SQLite checkpoints inside the commit
        /// that takes the WAL past 1,000 pages, holding up the writes queued
        /// behind it).
        sqlite_checkpoint_ms: u32 = 200;
        /// SQLite only: milliseconds a writer waits for a lock before failing.
        sqlite_busy_timeout_ms: u32 = 10_000;
    }
}

settings! {
    /// The local HTTP API.
    pub struct ApiSettings {
        /// Address of the local API listener. Keep it on 127.0.0.1 unless a
        /// reverse proxy with authentication sits in front of it.
        listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8480));
        /// Largest request body accepted, in bytes.
        max_body_bytes: usize = 16 * 1024 * 1024;
        /// Worker threads serving HTTP (0 = one per CPU core).
        workers: usize = 0;
        /// Threads per worker for database work and for sealing bodies over
        /// 16 KiB (at least 1; smaller ones are sealed on the worker itself).
        /// More let more slow reads wait at once (PostgreSQL far away); more
        /// than needed only compete for the same cores.
        blocking_threads: usize = 8;
        /// SHA-256 (64 hex digits) of the bearer token `/metrics` asks for
        /// (`gsp config metrics-token` makes a token and prints this line).
        /// Unset: `/metrics` answers anyone who can reach the listener.
        metrics_token_sha256: Option<String> = None, example = "\"6b51d431df5d7f141cbececcf79edf3dd861c3b4069f0b11661a3eefacbba918\"";
    }
}

settings! {
    /// Logging.
    pub struct LogSettings {
        /// `human` for terminals, `json` for log collectors. Also `--log-format`.
        format: LogFormat = LogFormat::Human;
        /// Filter in tracing's syntax, e.g. `info` or `gsp_node=debug,info`.
        /// The RUST_LOG variable wins over this when it is set.
        level: String = "info".to_owned();
    }
}

settings! {
    /// Data import.
    pub struct ImportSettings {
        /// Codes written per database statement during import.
        batch_size: usize = 16_384;
        /// How many recently seen codes the importer remembers to resolve parents
        /// without a database lookup (memory: about 100 bytes each).
        code_cache: usize = 262_144;
        /// SQLite only: page cache of the importing connection while an
        /// import runs, in MiB (the node's other connections keep
        /// `[database] sqlite_cache_mib`). Millions of new codes go into the
        /// code index at random places; a larger cache keeps its pages.
        sqlite_cache_mib: u32 = 64;
    }
}

/// SQLite's `synchronous` pragma, restricted to the two sane values in WAL mode.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// Durable against power loss: fsync at every commit.
    Full,
    /// Durable against a process crash; the last commits may be lost on power loss.
    Normal,
}

impl SqliteSync {
    /// The value as written in `gsp.toml` (and accepted by the SQLite pragma).
    pub fn as_str(self) -> &'static str {
        match self {
            SqliteSync::Full => "full",
            SqliteSync::Normal => "normal",
        }
    }
}

/// Log output format.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

settings! {
    /// The federation listener: where other Parties' nodes deliver messages.
    pub struct FederationSettings {
        /// Address of the federation listener (mutual TLS 1.3). It must be
        /// reachable by other Parties' nodes at the URL in this node's
        /// directory record. Unset: no federation listener.
        listen: Option<SocketAddr> = None, example = "\"0.0.0.0:8443\"";
        /// Largest envelope accepted, in bytes (at most 64 MiB + 4 KiB).
        max_envelope_bytes: usize = 64 * 1024 * 1024 + 4096;
        /// Seconds a peer may take to answer one delivery before it is retried.
        request_timeout_secs: u64 = 60;
        /// Clock difference tolerated between Parties, in seconds (at most 3600).
        clock_skew_secs: u64 = 300;
        /// Threads per worker for opening envelopes, database work and
        /// automatic answers (at least 1). More than needed only compete for
        /// the same cores.
        blocking_threads: usize = 8;
        /// Requests from one Party handled at once (messages, receipt
        /// batches, receipt fetches); more get HTTP 429 `rate_limited` and
        /// are retried by the sender. A GSP sender keeps up to its
        /// `[exchange] in_flight_per_peer` messages (8 by default, at most
        /// 256) in flight per instance: lower this only as far as the peers'
        /// settings allow. At least 1.
        peer_max_in_flight: usize = 256;
        /// Bytes of request bodies from one Party read at once (a body
        /// without a declared length counts as the largest envelope): bounds
        /// the memory one Party can hold. A request is always let in when
        /// none of the Party's is in flight, however large.
        peer_max_in_flight_bytes: usize = 256 * 1024 * 1024;
        /// Requests per second one Party may sustain, in bursts of up to one
        /// second's worth; 0: no rate limit (the two limits above still
        /// apply).
        peer_requests_per_second: u32 = 0;
    }
}

settings! {
    /// Cases, answer policies and delivery.
    pub struct ExchangeSettings {
        /// Answer policy per template: "automatic" (this node answers from its
        /// data), "officer", or "two-person" (an officer answers, an approver
        /// approves). Templates not listed are answered by an officer.
        policies: std::collections::BTreeMap<String, crate::exchange::model::AnswerPolicy> = default_policies();
        /// Hours a message may take to reach the other Party; after that it is
        /// marked failed with the reason, and an officer is told.
        message_lifetime_hours: u64 = 72;
        /// First retry delay in milliseconds; doubles each attempt (with jitter).
        retry_base_ms: u64 = 500;
        /// Longest delay between two attempts, in seconds.
        retry_cap_secs: u64 = 300;
        /// Messages in flight at once to one peer.
        in_flight_per_peer: usize = 8;
        /// Threads that send this node's messages, check their receipts and
        /// open the answers that come back in the responses (at most 256;
        /// 0: one per CPU core).
        delivery_threads: usize = 0;
        /// Codes sent inline in a uid-verification request or answer; more
        /// travel as a (compressed) attachment.
        inline_codes_max: usize = 10_000;
        /// An answer made as its request arrives goes back in the response
        /// to that request (SPEC.md §15.6), its receipt returned in a batch;
        /// false: it is delivered on its own like any message. Applies to
        /// the answers this node gives and to those it accepts.
        answers_in_response: bool = true;
    }
}

impl ExchangeSettings {
    /// How a received request of `template` is answered: its configured
    /// policy, `officer` for templates not listed.
    pub fn policy_for(&self, template: &str) -> crate::exchange::model::AnswerPolicy {
        self.policies
            .get(template)
            .copied()
            .unwrap_or(crate::exchange::model::AnswerPolicy::Officer)
    }
}

fn default_policies() -> std::collections::BTreeMap<String, crate::exchange::model::AnswerPolicy> {
    use crate::exchange::model::AnswerPolicy;
    [
        ("uid-verification", AnswerPolicy::Automatic),
        ("supply-chain-trace", AnswerPolicy::Officer),
        ("seizure", AnswerPolicy::Officer),
        ("operator-licence", AnswerPolicy::Officer),
        ("free-text", AnswerPolicy::Officer),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

settings! {
    /// Where this node finds the Secretariat directory and how it trusts it.
    pub struct DirectorySettings {
        /// The directory's URL, e.g. `https://directory.example.int:8490`.
        /// Unset: no directory (no federation).
        url: Option<String> = None, example = "\"https://directory.example.int:8490\"";
        /// The Secretariat's public key (64 hex digits), from `gsp directory
        /// init` on the directory host, confirmed out of band.
        secretariat_key: Option<String> = None, example = "\"3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29\"";
        /// SHA-256 pin of the directory's TLS key (64 hex digits), from the same place.
        tls_pin: Option<String> = None, example = "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"";
        /// Seconds between two fetches of the directory snapshot.
        refresh_secs: u64 = 300;
        /// Seconds a directory request may take.
        timeout_secs: u64 = 30;
        /// The node's identity folder (`gsp certs init --out`). Unset: `keys`
        /// in the data directory.
        keys_dir: Option<std::path::PathBuf> = None, example = "\"/var/lib/gsp/keys\"";
    }
}

settings! {
    /// The Secretariat directory role (`gsp directory serve`).
    pub struct DirectoryServerSettings {
        /// Address the directory's HTTPS API listens on.
        listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8490));
        /// How long a snapshot stays valid for nodes, in seconds (default 7 days,
        /// at most 30 days). Nodes that cannot refresh stop federation after this.
        snapshot_validity_secs: u64 = 7 * 24 * 3600;
        /// Worker threads (0 = one per CPU core).
        workers: usize = 0;
    }
}
