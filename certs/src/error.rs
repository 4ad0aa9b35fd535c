//! Errors of the certs crate: each names the file and, where there is one,
//! the fix.

use std::path::PathBuf;

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// A private key file can be read by group or others.
    #[error(
        "{path} is readable by group or others (mode {mode:04o}); a private key must be readable by its owner only: run `chmod 600 {path}`"
    )]
    KeyFileTooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The identity directory can be entered by group or others.
    #[error("{path} is accessible by group or others (mode {mode:04o}): run `chmod 700 {path}`")]
    DirTooOpen {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file would be overwritten without `--force`.
    #[error("{0} already exists; pass --force to overwrite it (the old key is then lost)")]
    WouldOverwrite(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file's content is not what it should be.
    #[error("{path}: {what}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// The Party code is not ISO 3166-1 alpha-3 or EU.
    #[error(transparent)]
    Party(#[from] gsp_federation::party::InvalidPartyCode),
    /// An argument is invalid (the message says which and why).
    #[error("{0}")]
    Invalid(String),
    /// Key generation or certificate creation failed.
    #[error("could not make the key or certificate: {0}")]
    Crypto(String),
}

impl CertsError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn bad(path: &std::path::Path, what: impl Into<String>) -> Self {
        Self::BadFile {
            path: path.to_owned(),
            what: what.into(),
        }
    }
}
