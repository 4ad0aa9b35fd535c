//! `init`, `show`, `rotate` and loading, on real files in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsp_certs::*;
use gsp_federation::UnixMillis;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const NOW: UnixMillis = UnixMillis(1_800_000_000_000);
const DAY: Duration = Duration::from_secs(86_400);

fn opts(dir: &Path) -> InitOptions {
    InitOptions {
        party: PartyCode::parse("KEN").unwrap(),
        hosts: vec!["gsp.example.ke".into(), "127.0.0.1".into(), "::1".into()],
        dir: dir.to_owned(),
        force: false,
        tls_days: 365,
        now: NOW,
    }
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn init_makes_every_key_with_safe_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("id");
    let id = init(&opts(&dir)).unwrap();
    assert_eq!(mode(&dir), 0o700);
    for f in ["root.key", "signing.key", "encryption.key", "tls.key"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&dir.join("tls.crt")), 0o644);
    assert_eq!(mode(&dir.join("identity.json")), 0o644);

    let loaded = Identity::load(&dir).unwrap();
    assert_eq!(loaded.doc, id.doc);
    let signing = loaded.signing_key().unwrap();
    assert_eq!(signing.key_id(), id.doc.signing[0].key_id);
    loaded.root_key().unwrap();
    assert_eq!(loaded.encryption_keys().unwrap().len(), 1);
    assert_eq!(
        loaded.signing_public_keys().unwrap()[0].key,
        signing.verifying_key()
    );

    let tls = loaded.tls().unwrap();
    assert_eq!(spki_sha256(&tls.cert_der).unwrap(), tls.spki_sha256);
    // The key is ECDSA P-256 (prime256v1 OID) and the certificate allows both
    // serverAuth and clientAuth, with the host names and addresses as SANs.
    let key = rcgen::KeyPair::try_from(tls.key_pkcs8_der.as_slice()).unwrap();
    assert!(std::ptr::eq(
        key.algorithm(),
        &rcgen::PKCS_ECDSA_P256_SHA256
    ));
    assert!(contains(
        &tls.cert_der,
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
    ));
    assert!(contains(
        &tls.cert_der,
        &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01]
    ));
    assert!(contains(
        &tls.cert_der,
        &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02]
    ));
    assert!(contains(&tls.cert_der, b"gsp.example.ke"));
    assert!(contains(&tls.cert_der, &[127, 0, 0, 1]));
    // The pin is the SHA-256 of rcgen's own SPKI encoding of the key.
    use rcgen::PublicKeyData;
    let spki = key.subject_public_key_info();
    assert_eq!(
        ring::digest::digest(&ring::digest::SHA256, &spki).as_ref(),
        tls.spki_sha256
    );
}

#[test]
fn nothing_is_overwritten_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("id");
    let first = init(&opts(&dir)).unwrap();
    let err = init(&opts(&dir)).unwrap_err().to_string();
    assert!(err.contains("--force"), "{err}");
    assert_eq!(Identity::load(&dir).unwrap().doc, first.doc);
    let second = init(&InitOptions {
        force: true,
        ..opts(&dir)
    })
    .unwrap();
    assert_ne!(second.doc.root.key_id, first.doc.root.key_id);
}

#[test]
fn a_key_readable_by_others_is_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("id");
    init(&opts(&dir)).unwrap();
    let key = dir.join("signing.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let err = Identity::load(&dir)
        .unwrap()
        .signing_key()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("signing.key") && err.contains("chmod 600"),
        "{err}"
    );
}

#[test]
fn a_world_readable_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("id");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let err = init(&opts(&dir)).unwrap_err().to_string();
    assert!(err.contains("chmod 700"), "{err}");
}

#[test]
fn show_prints_grouped_fingerprints_and_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("id");
    let id = init(&opts(&dir)).unwrap();
    let text = show(&dir).unwrap();
    let root_pub = hex::decode(&id.doc.root.public_key).unwrap();
    assert!(text.contains(&fingerprint(&root_pub)), "{text}");
    assert!(text.contains(&group_hex(
        &hex::decode(&id.doc.tls[0].spki_sha256).unwrap()
    )));
    assert!(text.contains("certificate expires 2028-01-15"), "{text}");
    assert!(text.contains("Message-encryption key (X25519), current"));
    assert!(!text.contains("PRIVATE"));
}

#[test]
fn rotation_overlaps_then_prunes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("id");
    let id = init(&opts(&dir)).unwrap();
    let old_sign = id.doc.signing[0].key_id;

    let report = rotate(&dir, KeyKind::Signing, 7 * DAY, NOW).unwrap();
    assert_eq!(report.previous, old_sign);
    let id = Identity::load(&dir).unwrap();
    assert_eq!(id.doc.signing.len(), 2);
    assert_eq!(
        id.signing_key().unwrap().key_id(),
        report.new,
        "the new key signs at once"
    );
    let keys = id.signing_public_keys().unwrap();
    assert!(
        keys.iter()
            .all(|k| k.validity.contains(NOW.saturating_add(DAY), Duration::ZERO))
    );
    assert!(
        !keys[1]
            .validity
            .contains(NOW.saturating_add(8 * DAY), Duration::ZERO)
    );
    assert_eq!(mode(&dir.join(format!("signing.{old_sign}.key"))), 0o600);

    // Encryption: both keys can open during the overlap.
    let old_enc = id.doc.encryption[0].key_id;
    rotate(&dir, KeyKind::Encryption, 7 * DAY, NOW).unwrap();
    let id = Identity::load(&dir).unwrap();
    let enc = id.encryption_keys().unwrap();
    assert_eq!(enc.len(), 2);
    assert_eq!(enc[1].key.key_id(), old_enc);
    assert_ne!(id.encryption_public_key().unwrap().key_id(), old_enc);

    // TLS: two pins during the overlap; the current certificate is the new one.
    let old_pin = id.tls().unwrap().spki_sha256;
    rotate(&dir, KeyKind::Tls, 7 * DAY, NOW).unwrap();
    let id = Identity::load(&dir).unwrap();
    let pins = id.tls_pins();
    assert_eq!(pins.len(), 2);
    assert_ne!(id.tls().unwrap().spki_sha256, old_pin);
    assert_eq!(pins[1].0, old_pin);

    // A rotation after the overlap ended deletes the expired previous key.
    let later = NOW.saturating_add(10 * DAY);
    let report = rotate(&dir, KeyKind::Signing, 7 * DAY, later).unwrap();
    assert_eq!(report.removed, vec![old_sign]);
    assert!(!dir.join(format!("signing.{old_sign}.key")).exists());
    assert_eq!(Identity::load(&dir).unwrap().doc.signing.len(), 2);
}

#[test]
fn party_codes_are_checked() {
    for bad in ["XX", "kenya", "ke", "XKX"] {
        assert!(PartyCode::parse(bad).is_err(), "{bad}");
    }
}
