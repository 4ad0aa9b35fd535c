//! The Secretariat directory: the server role (`server`: keys, log, admin,
//! HTTPS API), the node's verified copy of it (`client`), building a node's
//! own signed record (`record`) and the node's persistent alarms (`alarms`).
//!
//! The wire format and every verification rule are in
//! `gsp_federation::directory` (SPEC.md §18); this module does the I/O.

pub mod alarms;
pub mod client;
pub mod record;
pub mod server;

pub use client::{DirectoryHandle, Unusable, VerifiedDirectory, WhoisMatch};
