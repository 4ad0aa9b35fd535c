//! A node's identity directory: making it (`init`), loading it, rotating its
//! keys with overlap (`rotate`) and describing it for operators (`show`).
//!
//! Layout of the directory (mode 0700):
//!
//! | file | content | mode |
//! |---|---|---|
//! | `root.key` | Party root key, Ed25519, PKCS#8 v2 PEM | 0600 |
//! | `signing.key` | current message-signing key, Ed25519, PKCS#8 v2 PEM | 0600 |
//! | `encryption.key` | current message-encryption key, X25519, PKCS#8 PEM | 0600 |
//! | `tls.key` | current TLS key, ECDSA P-256, PKCS#8 PEM | 0600 |
//! | `tls.crt` | current self-signed TLS certificate, PEM | 0644 |
//! | `<kind>.<key id>.key` (and `tls.<key id>.crt`) | a previous key still in its overlap period | 0600 |
//! | `identity.json` | public keys, key ids, validity windows, the TLS SPKI pins | 0644 |
//!
//! `identity.json` is public and is what the directory record is built from.
//! The root key is only needed to sign directory records and may be moved
//! offline after `init`; nothing here loads it except [`Identity::root_key`].

use crate::der::cert_info;
use crate::error::CertsError;
use crate::files::{ensure_private_dir, pem_decode, pem_encode, read_private, write_atomic};
use crate::pkcs8;
use gsp_federation::keys::{
    EncryptionKey, EncryptionPublicKey, KeyId, RecipientKey, SenderKey, SigningKey, Validity,
    VerifyingKey, fingerprint, group_hex,
};
use gsp_federation::{PartyCode, UnixMillis};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// Name of the public description file.
pub const IDENTITY_FILE: &str = "identity.json";
/// Format tag inside `identity.json`.
pub const IDENTITY_FORMAT: &str = "gsp-identity/1";
/// Default overlap after a rotation: 7 days.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default lifetime of a TLS certificate: 2 years.
pub const DEFAULT_TLS_DAYS: u32 = 730;

const PRIVATE_LABEL: &str = "PRIVATE KEY";
const CERT_LABEL: &str = "CERTIFICATE";

/// Which key `rotate` replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The TLS key and certificate.
    Tls,
    /// The message-signing key.
    Signing,
    /// The message-encryption key.
    Encryption,
}

impl KeyKind {
    fn stem(self) -> &'static str {
        match self {
            KeyKind::Tls => "tls",
            KeyKind::Signing => "signing",
            KeyKind::Encryption => "encryption",
        }
    }
}

/// `identity.json`: the public description of a node's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityDoc {
    /// Always [`IDENTITY_FORMAT`].
    pub format: String,
    /// The Party.
    pub party: PartyCode,
    /// Host names and IP addresses in the TLS certificate.
    pub hosts: Vec<String>,
    /// The Party root key.
    pub root: PublicKeyEntry,
    /// Message-signing keys, current first.
    pub signing: Vec<PublicKeyEntry>,
    /// Message-encryption keys, current first.
    pub encryption: Vec<PublicKeyEntry>,
    /// TLS keys and certificates, current first.
    pub tls: Vec<TlsEntry>,
}

/// One public key in `identity.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyEntry {
    /// Key id (first 8 bytes of SHA-256 of the public key, hex).
    pub key_id: KeyId,
    /// The raw public key, hex.
    pub public_key: String,
    /// When the key may be used.
    pub validity: Validity,
    /// The private key file, relative to the directory.
    pub file: String,
    /// Whether this is the key used for sending (signing) or advertised (encryption).
    pub current: bool,
}

/// One TLS key and certificate in `identity.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsEntry {
    /// Key id: first 8 bytes of the SPKI SHA-256.
    pub key_id: KeyId,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo DER, hex: the pin.
    pub spki_sha256: String,
    /// When peers should accept this pin.
    pub validity: Validity,
    /// The certificate's notAfter.
    pub certificate_not_after: UnixMillis,
    /// The certificate file.
    pub certificate: String,
    /// The private key file.
    pub file: String,
    /// Whether this is the certificate the node presents.
    pub current: bool,
}

/// Options of [`init`].
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The Party.
    pub party: PartyCode,
    /// Host names and IP addresses for the TLS certificate (at least one).
    pub hosts: Vec<String>,
    /// Output directory.
    pub dir: PathBuf,
    /// Overwrite existing files.
    pub force: bool,
    /// TLS certificate lifetime in days.
    pub tls_days: u32,
    /// The clock.
    pub now: UnixMillis,
}

/// The node's TLS credentials, ready for rustls (`CertificateDer`,
/// `PrivatePkcs8KeyDer`) or any other TLS stack.
pub struct TlsCredentials {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 DER.
    pub key_pkcs8_der: Zeroizing<Vec<u8>>,
    /// The private key, PKCS#8 PEM.
    pub key_pem: Zeroizing<String>,
    /// SHA-256 of the certificate's SPKI: the pin peers check.
    pub spki_sha256: [u8; 32],
}

/// A loaded identity directory. Private keys are read from disk only when
/// asked for, and each read checks the file's permissions.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The directory.
    pub dir: PathBuf,
    /// Its `identity.json`.
    pub doc: IdentityDoc,
}

/// SHA-256 over a certificate's DER SubjectPublicKeyInfo: the pin a directory
/// record carries and peers compare. It survives re-issuing the certificate
/// with the same key.
pub fn spki_sha256(cert_der: &[u8]) -> Result<[u8; 32], CertsError> {
    let info = cert_info(cert_der)
        .ok_or_else(|| CertsError::Invalid("not a DER X.509 certificate".into()))?;
    Ok(Sha256::digest(&info.spki_der).into())
}

fn hex_entry(key_id: KeyId, public: &[u8], file: &str, now: UnixMillis) -> PublicKeyEntry {
    PublicKeyEntry {
        key_id,
        public_key: hex::encode(public),
        validity: Validity {
            not_before: now,
            not_after: UnixMillis(u64::MAX),
        },
        file: file.into(),
        current: true,
    }
}

fn check_absent(path: &Path, force: bool) -> Result<(), CertsError> {
    if !force && path.exists() {
        return Err(CertsError::WouldOverwrite(path.to_owned()));
    }
    Ok(())
}

fn write_signing(dir: &Path, file: &str, key: &SigningKey) -> Result<(), CertsError> {
    let pem = Zeroizing::new(pem_encode(PRIVATE_LABEL, &pkcs8::ed25519_to_pkcs8(key)));
    write_atomic(&dir.join(file), pem.as_bytes(), 0o600)
}

fn write_encryption(dir: &Path, file: &str, key: &EncryptionKey) -> Result<(), CertsError> {
    let pem = Zeroizing::new(pem_encode(PRIVATE_LABEL, &pkcs8::x25519_to_pkcs8(key)));
    write_atomic(&dir.join(file), pem.as_bytes(), 0o600)
}

fn make_tls(
    dir: &Path,
    party: PartyCode,
    hosts: &[String],
    key_file: &str,
    cert_file: &str,
    days: u32,
    now: UnixMillis,
) -> Result<TlsEntry, CertsError> {
    let crypto = |e: rcgen::Error| CertsError::Crypto(e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(crypto)?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec())
        .map_err(|e| CertsError::Invalid(format!("bad --host value: {e}")))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, format!("GSP node {party}"));
    dn.push(
        rcgen::DnType::OrganizationName,
        format!("GSP Party {party}"),
    );
    params.distinguished_name = dn;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let start = time::OffsetDateTime::from_unix_timestamp(i64::try_from(now.0 / 1000).unwrap_or(0))
        .map_err(|e| CertsError::Invalid(e.to_string()))?;
    params.not_before = start - time::Duration::hours(1);
    params.not_after = start + time::Duration::days(i64::from(days));
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
        .map_err(|_| CertsError::Crypto("random generator failed".into()))?;
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let cert = params.self_signed(&key).map_err(crypto)?;
    let der = cert.der().to_vec();
    let pin = spki_sha256(&der)?;
    let info = cert_info(&der)
        .ok_or_else(|| CertsError::Crypto("rcgen made an unreadable certificate".into()))?;
    let key_pem = Zeroizing::new(key.serialize_pem());
    write_atomic(&dir.join(key_file), key_pem.as_bytes(), 0o600)?;
    write_atomic(&dir.join(cert_file), cert.pem().as_bytes(), 0o644)?;
    let mut key_id = [0u8; 8];
    key_id.copy_from_slice(pin.get(..8).unwrap_or(&[0; 8]));
    Ok(TlsEntry {
        key_id: KeyId(key_id),
        spki_sha256: hex::encode(pin),
        validity: Validity {
            not_before: now,
            not_after: UnixMillis(
                u64::try_from(info.not_after)
                    .unwrap_or(0)
                    .saturating_mul(1000),
            ),
        },
        certificate_not_after: UnixMillis(
            u64::try_from(info.not_after)
                .unwrap_or(0)
                .saturating_mul(1000),
        ),
        certificate: cert_file.into(),
        file: key_file.into(),
        current: true,
    })
}

/// `gsp certs init`: makes a Party root key, a TLS key and certificate, a
/// message-signing key and a message-encryption key in `opts.dir`.
pub fn init(opts: &InitOptions) -> Result<Identity, CertsError> {
    if opts.hosts.is_empty() {
        return Err(CertsError::Invalid(
            "give at least one --host (DNS name or IP address)".into(),
        ));
    }
    if opts.tls_days == 0 {
        return Err(CertsError::Invalid("--tls-days must be at least 1".into()));
    }
    let dir = &opts.dir;
    ensure_private_dir(dir)?;
    for f in [
        "root.key",
        "signing.key",
        "encryption.key",
        "tls.key",
        "tls.crt",
        IDENTITY_FILE,
    ] {
        check_absent(&dir.join(f), opts.force)?;
    }
    let keygen = |e: gsp_federation::keys::KeyError| CertsError::Crypto(e.to_string());
    let root = SigningKey::generate().map_err(keygen)?;
    let signing = SigningKey::generate().map_err(keygen)?;
    let encryption = EncryptionKey::generate().map_err(keygen)?;
    write_signing(dir, "root.key", &root)?;
    write_signing(dir, "signing.key", &signing)?;
    write_encryption(dir, "encryption.key", &encryption)?;
    let tls = make_tls(
        dir,
        opts.party,
        &opts.hosts,
        "tls.key",
        "tls.crt",
        opts.tls_days,
        opts.now,
    )?;
    let doc = IdentityDoc {
        format: IDENTITY_FORMAT.into(),
        party: opts.party,
        hosts: opts.hosts.clone(),
        root: hex_entry(root.key_id(), &root.verifying_key().0, "root.key", opts.now),
        signing: vec![hex_entry(
            signing.key_id(),
            &signing.verifying_key().0,
            "signing.key",
            opts.now,
        )],
        encryption: vec![hex_entry(
            encryption.key_id(),
            &encryption.public_key().0,
            "encryption.key",
            opts.now,
        )],
        tls: vec![tls],
    };
    let identity = Identity {
        dir: dir.clone(),
        doc,
    };
    identity.save()?;
    Ok(identity)
}

impl Identity {
    /// Loads `identity.json` from `dir` (no private key is read).
    pub fn load(dir: &Path) -> Result<Self, CertsError> {
        let path = dir.join(IDENTITY_FILE);
        let text = std::fs::read(&path).map_err(|e| CertsError::io(&path, e))?;
        let doc: IdentityDoc =
            serde_json::from_slice(&text).map_err(|e| CertsError::bad(&path, e.to_string()))?;
        if doc.format != IDENTITY_FORMAT {
            return Err(CertsError::bad(
                &path,
                format!("format is {:?}, expected {IDENTITY_FORMAT:?}", doc.format),
            ));
        }
        if !doc.signing.iter().any(|e| e.current)
            || !doc.encryption.iter().any(|e| e.current)
            || !doc.tls.iter().any(|e| e.current)
        {
            return Err(CertsError::bad(
                &path,
                "no current signing, encryption or TLS key",
            ));
        }
        Ok(Self {
            dir: dir.to_owned(),
            doc,
        })
    }

    fn save(&self) -> Result<(), CertsError> {
        let mut json =
            serde_json::to_vec_pretty(&self.doc).map_err(|e| CertsError::Invalid(e.to_string()))?;
        json.push(b'\n');
        write_atomic(&self.dir.join(IDENTITY_FILE), &json, 0o644)
    }

    fn load_signing(&self, entry: &PublicKeyEntry) -> Result<SigningKey, CertsError> {
        let path = self.dir.join(&entry.file);
        let pem = read_private(&path)?;
        let der = pem_decode(&path, &pem, PRIVATE_LABEL)?;
        let key = pkcs8::ed25519_from_pkcs8(&der).map_err(|e| CertsError::bad(&path, e))?;
        if key.key_id() != entry.key_id {
            return Err(CertsError::bad(
                &path,
                format!(
                    "holds key {}, identity.json says {}",
                    key.key_id(),
                    entry.key_id
                ),
            ));
        }
        Ok(key)
    }

    /// The Party root key (needed only to sign directory records).
    pub fn root_key(&self) -> Result<SigningKey, CertsError> {
        self.load_signing(&self.doc.root)
    }

    /// The current message-signing key: the only one used for sending.
    pub fn signing_key(&self) -> Result<SigningKey, CertsError> {
        let entry = self.doc.signing.iter().find(|e| e.current).ok_or_else(|| {
            CertsError::bad(&self.dir.join(IDENTITY_FILE), "no current signing key")
        })?;
        self.load_signing(entry)
    }

    /// Our published signing keys with validity (current and overlapping previous).
    pub fn signing_public_keys(&self) -> Result<Vec<SenderKey>, CertsError> {
        self.doc
            .signing
            .iter()
            .map(|e| {
                let bytes = hex::decode(&e.public_key).unwrap_or_default();
                let key = VerifyingKey::from_bytes(&bytes).map_err(|err| {
                    CertsError::bad(
                        &self.dir.join(IDENTITY_FILE),
                        format!("signing key {}: {err}", e.key_id),
                    )
                })?;
                Ok(SenderKey {
                    key,
                    validity: e.validity,
                })
            })
            .collect()
    }

    /// The current message-encryption public key (the one peers seal to).
    pub fn encryption_public_key(&self) -> Result<EncryptionPublicKey, CertsError> {
        let e = self
            .doc
            .encryption
            .iter()
            .find(|e| e.current)
            .ok_or_else(|| {
                CertsError::bad(&self.dir.join(IDENTITY_FILE), "no current encryption key")
            })?;
        EncryptionPublicKey::from_bytes(&hex::decode(&e.public_key).unwrap_or_default())
            .map_err(|err| CertsError::bad(&self.dir.join(IDENTITY_FILE), err.to_string()))
    }

    /// All our message-encryption private keys with validity, for `open`.
    pub fn encryption_keys(&self) -> Result<Vec<RecipientKey>, CertsError> {
        self.doc
            .encryption
            .iter()
            .map(|e| {
                let path = self.dir.join(&e.file);
                let pem = read_private(&path)?;
                let der = pem_decode(&path, &pem, PRIVATE_LABEL)?;
                let key =
                    pkcs8::x25519_from_pkcs8(&der).map_err(|err| CertsError::bad(&path, err))?;
                if key.key_id() != e.key_id {
                    return Err(CertsError::bad(
                        &path,
                        format!(
                            "holds key {}, identity.json says {}",
                            key.key_id(),
                            e.key_id
                        ),
                    ));
                }
                Ok(RecipientKey {
                    key,
                    validity: e.validity,
                })
            })
            .collect()
    }

    /// The current TLS certificate and key.
    pub fn tls(&self) -> Result<TlsCredentials, CertsError> {
        let e =
            self.doc.tls.iter().find(|e| e.current).ok_or_else(|| {
                CertsError::bad(&self.dir.join(IDENTITY_FILE), "no current TLS key")
            })?;
        let cert_path = self.dir.join(&e.certificate);
        let cert_pem =
            std::fs::read_to_string(&cert_path).map_err(|err| CertsError::io(&cert_path, err))?;
        let cert_der = pem_decode(&cert_path, cert_pem.as_bytes(), CERT_LABEL)?.to_vec();
        let key_path = self.dir.join(&e.file);
        let key_pem_bytes = read_private(&key_path)?;
        let key_pkcs8_der = pem_decode(&key_path, &key_pem_bytes, PRIVATE_LABEL)?;
        let key_pem = Zeroizing::new(String::from_utf8_lossy(&key_pem_bytes).into_owned());
        let spki = spki_sha256(&cert_der)?;
        if hex::encode(spki) != e.spki_sha256 {
            return Err(CertsError::bad(
                &cert_path,
                "certificate does not match the pin in identity.json",
            ));
        }
        Ok(TlsCredentials {
            cert_der,
            cert_pem,
            key_pkcs8_der,
            key_pem,
            spki_sha256: spki,
        })
    }

    /// TLS SPKI pins peers should accept now (current and overlapping previous).
    pub fn tls_pins(&self) -> Vec<([u8; 32], Validity)> {
        self.doc
            .tls
            .iter()
            .filter_map(|e| {
                let mut pin = [0u8; 32];
                hex::decode_to_slice(&e.spki_sha256, &mut pin).ok()?;
                Some((pin, e.validity))
            })
            .collect()
    }
}

/// What [`rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// The key that was current.
    pub previous: KeyId,
    /// Until when the previous key stays valid.
    pub previous_valid_until: UnixMillis,
    /// The new current key.
    pub new: KeyId,
    /// Keys whose overlap had ended and whose files were deleted.
    pub removed: Vec<KeyId>,
}

/// `gsp certs rotate`: makes a new key of `kind`, keeps the previous one valid
/// until `now + overlap` (stored as `<kind>.<key id>.key`), and makes the new
/// one current at once. Previous keys whose overlap has ended are deleted.
pub fn rotate(
    dir: &Path,
    kind: KeyKind,
    overlap: Duration,
    now: UnixMillis,
) -> Result<RotationReport, CertsError> {
    ensure_private_dir(dir)?;
    let mut id = Identity::load(dir)?;
    let until = now.saturating_add(overlap);
    let stem = kind.stem();
    let keygen = |e: gsp_federation::keys::KeyError| CertsError::Crypto(e.to_string());
    let rename = |from: &str, to: &str| -> Result<(), CertsError> {
        std::fs::rename(dir.join(from), dir.join(to))
            .map_err(|e| CertsError::io(&dir.join(from), e))
    };

    let (previous, new, removed) = match kind {
        KeyKind::Signing | KeyKind::Encryption => {
            let list = if kind == KeyKind::Signing {
                &mut id.doc.signing
            } else {
                &mut id.doc.encryption
            };
            let removed = prune(dir, list, now)?;
            let old = list.iter_mut().find(|e| e.current).ok_or_else(|| {
                CertsError::Invalid(format!("identity.json has no current {stem} key"))
            })?;
            let old_file = format!("{stem}.{}.key", old.key_id);
            rename(&old.file, &old_file)?;
            old.file = old_file;
            old.current = false;
            old.validity.not_after = until;
            let previous = old.key_id;
            let file = format!("{stem}.key");
            let entry = if kind == KeyKind::Signing {
                let k = SigningKey::generate().map_err(keygen)?;
                write_signing(dir, &file, &k)?;
                hex_entry(k.key_id(), &k.verifying_key().0, &file, now)
            } else {
                let k = EncryptionKey::generate().map_err(keygen)?;
                write_encryption(dir, &file, &k)?;
                hex_entry(k.key_id(), &k.public_key().0, &file, now)
            };
            let new = entry.key_id;
            list.insert(0, entry);
            (previous, new, removed)
        }
        KeyKind::Tls => {
            let mut removed = Vec::new();
            let mut kept = Vec::new();
            for e in id.doc.tls.drain(..) {
                if !e.current && e.validity.not_after < now {
                    let _ = std::fs::remove_file(dir.join(&e.file));
                    let _ = std::fs::remove_file(dir.join(&e.certificate));
                    removed.push(e.key_id);
                } else {
                    kept.push(e);
                }
            }
            id.doc.tls = kept;
            let days = id
                .doc
                .tls
                .iter()
                .find(|e| e.current)
                .map(|e| {
                    e.certificate_not_after
                        .0
                        .saturating_sub(e.validity.not_before.0)
                        / 86_400_000
                })
                .and_then(|d| u32::try_from(d).ok())
                .filter(|d| *d > 0)
                .unwrap_or(DEFAULT_TLS_DAYS);
            let old = id.doc.tls.iter_mut().find(|e| e.current).ok_or_else(|| {
                CertsError::Invalid("identity.json has no current TLS key".into())
            })?;
            let key_file = format!("tls.{}.key", old.key_id);
            let cert_file = format!("tls.{}.crt", old.key_id);
            rename(&old.file, &key_file)?;
            rename(&old.certificate, &cert_file)?;
            old.file = key_file;
            old.certificate = cert_file;
            old.current = false;
            old.validity.not_after = until.min(old.certificate_not_after);
            let previous = old.key_id;
            let entry = make_tls(
                dir,
                id.doc.party,
                &id.doc.hosts,
                "tls.key",
                "tls.crt",
                days,
                now,
            )?;
            let new = entry.key_id;
            id.doc.tls.insert(0, entry);
            (previous, new, removed)
        }
    };
    id.save()?;
    Ok(RotationReport {
        previous,
        previous_valid_until: until,
        new,
        removed,
    })
}

fn prune(
    dir: &Path,
    list: &mut Vec<PublicKeyEntry>,
    now: UnixMillis,
) -> Result<Vec<KeyId>, CertsError> {
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for e in list.drain(..) {
        if !e.current && e.validity.not_after < now {
            let path = dir.join(&e.file);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(CertsError::io(&path, err)),
            }
            removed.push(e.key_id);
        } else {
            kept.push(e);
        }
    }
    *list = kept;
    Ok(removed)
}

/// Formats an instant as an RFC 3339 UTC date-time, or "until rotated" for
/// the open-ended window.
pub fn format_instant(t: UnixMillis) -> String {
    if t.0 == u64::MAX {
        return "until rotated".into();
    }
    let secs = i64::try_from(t.0 / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{} ms since 1970", t.0))
}

/// `gsp certs show`: every public key and the TLS SPKI as fingerprints to
/// read aloud or compare on paper, with key ids and validity.
pub fn show(dir: &Path) -> Result<String, CertsError> {
    let id = Identity::load(dir)?;
    let d = &id.doc;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "GSP identity of Party {} in {}",
        d.party,
        dir.display()
    );
    let _ = writeln!(out, "Hosts: {}", d.hosts.join(", "));
    let _ = writeln!(
        out,
        "Fingerprints are SHA-256, upper-case hex in groups of four.\n"
    );
    let key_fp = |e: &PublicKeyEntry| fingerprint(&hex::decode(&e.public_key).unwrap_or_default());
    let _ = writeln!(out, "Party root key (Ed25519), key id {}", d.root.key_id);
    let _ = writeln!(out, "  {}", key_fp(&d.root));
    let _ = writeln!(
        out,
        "  created {}",
        format_instant(d.root.validity.not_before)
    );
    for (title, list) in [
        ("Message-signing key (Ed25519)", &d.signing),
        ("Message-encryption key (X25519)", &d.encryption),
    ] {
        for e in list {
            let _ = writeln!(
                out,
                "\n{title}{}, key id {}",
                if e.current { ", current" } else { ", previous" },
                e.key_id
            );
            let _ = writeln!(out, "  {}", key_fp(e));
            let _ = writeln!(
                out,
                "  valid {} to {}",
                format_instant(e.validity.not_before),
                format_instant(e.validity.not_after)
            );
        }
    }
    for e in &d.tls {
        let pin = hex::decode(&e.spki_sha256).unwrap_or_default();
        let _ = writeln!(
            out,
            "\nTLS certificate (ECDSA P-256){}, SPKI SHA-256 pin:",
            if e.current { ", current" } else { ", previous" }
        );
        let _ = writeln!(out, "  {}", group_hex(&pin));
        let _ = writeln!(
            out,
            "  pin valid {} to {}",
            format_instant(e.validity.not_before),
            format_instant(e.validity.not_after)
        );
        let _ = writeln!(
            out,
            "  certificate expires {}",
            format_instant(e.certificate_not_after)
        );
    }
    Ok(out)
}
