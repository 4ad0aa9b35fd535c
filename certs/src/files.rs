//! Writing and reading key files safely: private files are created with mode
//! 0600 from the first byte (written to a temporary file with that mode, then
//! renamed into place), the directory is 0700, and loading refuses a private
//! key that group or others can read. Also a small PEM codec.

use crate::error::CertsError;
use base64::Engine as _;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use zeroize::Zeroizing;

/// Creates `dir` with mode 0700 if it does not exist; refuses an existing
/// directory that group or others can enter.
pub fn ensure_private_dir(dir: &Path) -> Result<(), CertsError> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CertsError::io(dir, e))?;
    }
    let mode = fs::metadata(dir)
        .map_err(|e| CertsError::io(dir, e))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(CertsError::DirTooOpen {
            path: dir.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Writes `contents` to `path` atomically with the given mode: a temporary
/// file in the same directory is created with that mode (never wider), synced
/// and renamed over `path`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| CertsError::io(&tmp, e))?;
    // The umask can only narrow the mode; set it exactly anyway.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| CertsError::io(&tmp, e))?;
    f.write_all(contents).map_err(|e| CertsError::io(&tmp, e))?;
    f.sync_all().map_err(|e| CertsError::io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| CertsError::io(path, e))
}

/// Reads a private key file, refusing it if group or others can read it.
pub fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, CertsError> {
    let meta = fs::metadata(path).map_err(|e| CertsError::io(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CertsError::KeyFileTooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| CertsError::io(path, e))
}

/// Encodes DER as PEM with the given label (64-column base64).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Decodes the first PEM block with the given label.
pub fn pem_decode(path: &Path, text: &[u8], label: &str) -> Result<Zeroizing<Vec<u8>>, CertsError> {
    let text =
        std::str::from_utf8(text).map_err(|_| CertsError::bad(path, "not a PEM text file"))?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .ok_or_else(|| CertsError::bad(path, format!("no `{begin}` line")))?;
    let rest = text.get(start + begin.len()..).unwrap_or_default();
    let stop = rest
        .find(&end)
        .ok_or_else(|| CertsError::bad(path, format!("no `{end}` line")))?;
    let b64: Zeroizing<String> = Zeroizing::new(
        rest.get(..stop)
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    );
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map(Zeroizing::new)
        .map_err(|e| CertsError::bad(path, format!("bad base64 in PEM: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_and_open_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write_atomic(&p, b"secret", 0o600).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_private(&p).unwrap().as_slice(), b"secret");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_private(&p).unwrap_err().to_string();
        assert!(err.contains("chmod 600") && err.contains("/k"), "{err}");
    }

    #[test]
    fn pem_round_trip() {
        let der = (0u8..200).collect::<Vec<_>>();
        let pem = pem_encode("TEST DATA", &der);
        assert_eq!(
            pem_decode(Path::new("x"), pem.as_bytes(), "TEST DATA")
                .unwrap()
                .as_slice(),
            &der[..]
        );
        assert!(pem_decode(Path::new("x"), pem.as_bytes(), "OTHER").is_err());
    }
}
