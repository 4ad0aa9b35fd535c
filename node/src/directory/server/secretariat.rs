//! The Secretariat's own keys on the directory host: its Ed25519 signing key
//! (checkpoints, snapshots, re-registrations, revocations) and the
//! directory's TLS certificate, made by `gsp directory init` in
//! `<data-dir>/secretariat/` (folder 0700, private files 0600), plus the
//! public `secretariat.json` that tells nodes what to configure.

use super::AdminError;
use gsp_certs::TlsCredentials;
use gsp_certs::files::{ensure_private_dir, pem_decode, pem_encode, read_private, write_atomic};
use gsp_federation::UnixMillis;
use gsp_federation::keys::{SigningKey, fingerprint};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Sub-folder of the data directory holding the Secretariat's keys.
pub const FOLDER: &str = "secretariat";
const KEY_FILE: &str = "secretariat.key";
const TLS_KEY_FILE: &str = "tls.key";
const TLS_CERT_FILE: &str = "tls.crt";
const INFO_FILE: &str = "secretariat.json";

/// What nodes must configure to trust this directory (public).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecretariatInfo {
    /// The Secretariat's Ed25519 public key, hex (`[directory] secretariat_key`).
    pub secretariat_key: String,
    /// Its fingerprint, to confirm out of band.
    pub fingerprint: String,
    /// SHA-256 of the directory TLS certificate's SPKI, hex (`[directory] tls_pin`).
    pub tls_pin: String,
    /// Host names and addresses in the TLS certificate.
    pub hosts: Vec<String>,
    /// When it was made.
    pub created: UnixMillis,
}

/// The loaded Secretariat identity.
pub struct Secretariat {
    /// The signing key.
    pub key: SigningKey,
    /// The directory's TLS certificate and key.
    pub tls: TlsCredentials,
    /// The public description.
    pub info: SecretariatInfo,
}

impl std::fmt::Debug for Secretariat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secretariat")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn folder(data_dir: &Path) -> PathBuf {
    data_dir.join(FOLDER)
}

fn keys_err(e: gsp_certs::CertsError) -> AdminError {
    AdminError::Keys(e.to_string())
}

/// `gsp directory init`: makes the Secretariat key and the directory TLS
/// certificate for `hosts`. Refuses to overwrite unless `force`.
pub fn init(
    data_dir: &Path,
    hosts: &[String],
    force: bool,
    now: UnixMillis,
) -> Result<SecretariatInfo, AdminError> {
    if hosts.is_empty() {
        return Err(AdminError::Invalid(
            "give at least one --host (DNS name or IP address) for the directory's certificate"
                .into(),
        ));
    }
    let dir = folder(data_dir);
    ensure_private_dir(&dir).map_err(keys_err)?;
    if !force && dir.join(KEY_FILE).exists() {
        return Err(AdminError::Invalid(format!(
            "{} exists: this directory already has a Secretariat key (use --force to replace it, which breaks every node's trust)",
            dir.join(KEY_FILE).display()
        )));
    }
    let key = SigningKey::generate().map_err(|e| AdminError::Keys(e.to_string()))?;
    let pem = Zeroizing::new(pem_encode(
        "PRIVATE KEY",
        &gsp_certs::pkcs8::ed25519_to_pkcs8(&key),
    ));
    write_atomic(&dir.join(KEY_FILE), pem.as_bytes(), 0o600).map_err(keys_err)?;

    let crypto = |e: rcgen::Error| AdminError::Keys(e.to_string());
    let tls_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(crypto)?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec())
        .map_err(|e| AdminError::Invalid(format!("bad --host value: {e}")))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "GSP Secretariat directory");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let start = time::OffsetDateTime::from_unix_timestamp(i64::try_from(now.0 / 1000).unwrap_or(0))
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    params.not_before = start - time::Duration::hours(1);
    params.not_after = start + time::Duration::days(3650);
    let cert = params.self_signed(&tls_key).map_err(crypto)?;
    let key_pem = Zeroizing::new(tls_key.serialize_pem());
    write_atomic(&dir.join(TLS_KEY_FILE), key_pem.as_bytes(), 0o600).map_err(keys_err)?;
    write_atomic(&dir.join(TLS_CERT_FILE), cert.pem().as_bytes(), 0o644).map_err(keys_err)?;
    let pin = gsp_certs::spki_sha256(cert.der()).map_err(keys_err)?;
    let info = SecretariatInfo {
        secretariat_key: hex::encode(key.verifying_key().0),
        fingerprint: fingerprint(&key.verifying_key().0),
        tls_pin: hex::encode(pin),
        hosts: hosts.to_vec(),
        created: now,
    };
    let mut json =
        serde_json::to_vec_pretty(&info).map_err(|e| AdminError::Invalid(e.to_string()))?;
    json.push(b'\n');
    write_atomic(&dir.join(INFO_FILE), &json, 0o644).map_err(keys_err)?;
    Ok(info)
}

/// Loads the Secretariat's signing key only (for revocations and
/// re-registrations made from the command line).
pub fn load_key(data_dir: &Path) -> Result<SigningKey, AdminError> {
    let path = folder(data_dir).join(KEY_FILE);
    if !path.exists() {
        return Err(AdminError::Invalid(format!(
            "{} does not exist: run `gsp directory init` first",
            path.display()
        )));
    }
    let pem = read_private(&path).map_err(keys_err)?;
    let der = pem_decode(&path, &pem, "PRIVATE KEY").map_err(keys_err)?;
    gsp_certs::pkcs8::ed25519_from_pkcs8(&der)
        .map_err(|e| AdminError::Keys(format!("{}: {e}", path.display())))
}

/// Loads everything `gsp directory serve` needs.
pub fn load(data_dir: &Path) -> Result<Secretariat, AdminError> {
    let key = load_key(data_dir)?;
    let dir = folder(data_dir);
    let info_path = dir.join(INFO_FILE);
    let info: SecretariatInfo = serde_json::from_slice(
        &std::fs::read(&info_path)
            .map_err(|e| AdminError::Invalid(format!("{}: {e}", info_path.display())))?,
    )
    .map_err(|e| AdminError::Invalid(format!("{}: {e}", info_path.display())))?;
    let cert_path = dir.join(TLS_CERT_FILE);
    let cert_pem = std::fs::read_to_string(&cert_path)
        .map_err(|e| AdminError::Invalid(format!("{}: {e}", cert_path.display())))?;
    let cert_der = pem_decode(&cert_path, cert_pem.as_bytes(), "CERTIFICATE")
        .map_err(keys_err)?
        .to_vec();
    let key_path = dir.join(TLS_KEY_FILE);
    let key_pem = read_private(&key_path).map_err(keys_err)?;
    let key_der = pem_decode(&key_path, &key_pem, "PRIVATE KEY").map_err(keys_err)?;
    let spki = gsp_certs::spki_sha256(&cert_der).map_err(keys_err)?;
    if hex::encode(spki) != info.tls_pin {
        return Err(AdminError::Invalid(format!(
            "{} does not match the pin in {}",
            cert_path.display(),
            info_path.display()
        )));
    }
    Ok(Secretariat {
        key,
        tls: TlsCredentials {
            cert_der,
            cert_pem,
            key_pkcs8_der: key_der,
            key_pem: Zeroizing::new(String::from_utf8_lossy(&key_pem).into_owned()),
            spki_sha256: spki,
        },
        info,
    })
}
