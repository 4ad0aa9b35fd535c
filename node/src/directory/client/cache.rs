//! The verified directory copy on disk: `<data-dir>/directory.json` (the
//! snapshot document exactly as fetched, with when and from whom), written
//! atomically (temporary file, fsync, rename, fsync of the folder) so a crash
//! leaves the old copy or the new one, never half of either; and
//! `<data-dir>/directory-refresh.json`, the outcome of the last refresh
//! attempt, for `gsp status`.
//!
//! A copy read back is verified again (signatures and proofs) before use;
//! an expired one is still loaded, since its checkpoint guards against
//! rollback, but [`super::VerifiedDirectory::usable`] then refuses federation.

use super::VerifiedDirectory;
use gsp_federation::UnixMillis;
use gsp_federation::directory::{DirectoryError, SnapshotDoc};
use gsp_federation::keys::VerifyingKey;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// File name of the verified copy in the data directory.
pub const CACHE_FILE: &str = "directory.json";
/// File name of the last refresh outcome.
pub const STATUS_FILE: &str = "directory-refresh.json";
const FORMAT: &str = "gsp-directory-copy/1";

/// `directory.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheFile {
    /// Always `gsp-directory-copy/1`.
    pub format: String,
    /// When it was fetched.
    pub fetched_at: UnixMillis,
    /// The Secretariat key it was verified with, hex.
    pub secretariat_key: String,
    /// The snapshot document as served.
    pub snapshot: SnapshotDoc,
}

/// `directory-refresh.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefreshStatus {
    /// Last attempt.
    pub last_attempt: Option<UnixMillis>,
    /// Last attempt that produced an accepted copy.
    pub last_success: Option<UnixMillis>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// Why the copy on disk could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a copy, or for another Secretariat key.
    #[error("{path}: {message}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The copy no longer verifies (edited, or corrupted).
    #[error("{path}: the stored directory copy does not verify: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        source: DirectoryError,
    },
}

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Saves a copy that has just been verified.
pub fn save(
    data_dir: &Path,
    doc: &SnapshotDoc,
    secretariat: &VerifyingKey,
    fetched_at: UnixMillis,
) -> Result<(), CacheError> {
    let path = data_dir.join(CACHE_FILE);
    let file = CacheFile {
        format: FORMAT.into(),
        fetched_at,
        secretariat_key: hex::encode(secretariat.0),
        snapshot: doc.clone(),
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| CacheError::Bad {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&path, &bytes).map_err(|source| CacheError::Io { path, source })
}

/// Loads and re-verifies the copy, if there is one.
pub fn load(
    data_dir: &Path,
    secretariat: &VerifyingKey,
) -> Result<Option<VerifiedDirectory>, CacheError> {
    let path = data_dir.join(CACHE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CacheError::Io { path, source }),
    };
    let file: CacheFile = serde_json::from_slice(&bytes).map_err(|e| CacheError::Bad {
        path: path.clone(),
        message: format!("not a directory copy: {e}"),
    })?;
    if file.format != FORMAT {
        return Err(CacheError::Bad {
            path,
            message: format!("format is {:?}, expected {FORMAT:?}", file.format),
        });
    }
    if file.secretariat_key != hex::encode(secretariat.0) {
        return Err(CacheError::Bad {
            path,
            message: "verified with another Secretariat key than [directory] secretariat_key: delete it to start afresh".into(),
        });
    }
    let verified = file
        .snapshot
        .verify_ignoring_time(secretariat)
        .map_err(|source| CacheError::Invalid { path, source })?;
    Ok(Some(VerifiedDirectory::new(
        verified,
        *secretariat,
        file.fetched_at,
    )))
}

/// Reads the last refresh outcome (default when absent or unreadable).
pub fn load_status(data_dir: &Path) -> RefreshStatus {
    std::fs::read(data_dir.join(STATUS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Records a refresh outcome.
pub fn save_status(data_dir: &Path, status: &RefreshStatus) {
    if let Ok(bytes) = serde_json::to_vec(status)
        && let Err(e) = write_atomic(&data_dir.join(STATUS_FILE), &bytes)
    {
        tracing::warn!(error = %e, "cannot record the directory refresh status");
    }
}
