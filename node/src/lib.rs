//! GSP node software.
//!
//! One crate, one binary (`gsp`), three roles: a Party node holding the national
//! tracking-and-tracing data and exchanging messages with other Parties, the
//! Secretariat directory, and the operator tools. The folders are the
//! architecture: `config` (typed settings), `storage` (diesel over SQLite and
//! PostgreSQL), `data` (the tracking-and-tracing model, import, generation and
//! queries), `web` (the local HTTP API) and `cli` (the `gsp` commands).
//!
//! The wire format is not here: it lives in the `gsp-federation` crate, and keys
//! and certificates in `gsp-certs`.

pub mod auth;
pub mod cli;
pub mod config;
pub mod data;
pub mod directory;
mod enums;
pub mod exchange;
pub mod federation;
pub mod local_ports;
pub mod metrics;
pub mod offload;
pub mod storage;
pub mod tls;
pub mod web;
