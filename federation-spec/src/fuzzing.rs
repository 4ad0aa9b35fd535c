//! Entry points for fuzzing: feed arbitrary bytes to every parser of
//! untrusted input. Used by the `cargo fuzz` target in `federation-spec/fuzz/`
//! and by a proptest so that stable CI exercises the same code.
//!
//! Not for production use: the keys here are fixed and public.

use crate::envelope::{MAX_ENVELOPE, OpenContext, open};
use crate::header::{RoutingHeader, SignedHeader};
use crate::keys::{EncryptionKey, RecipientKey, SenderKey, SigningKey, Validity};
use crate::party::PartyCode;
use crate::receipt::Receipt;
use crate::replay::InMemorySeenIds;
use crate::timestamp::UnixMillis;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

struct Fixture {
    us: PartyCode,
    our_keys: Vec<RecipientKey>,
    directory: HashMap<PartyCode, Vec<SenderKey>>,
}

fn fixture() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let us = PartyCode::parse("KEN").ok()?;
        let from = PartyCode::parse("FRA").ok()?;
        let key = EncryptionKey::from_bytes(&label_key("gsp vector key KEN encryption")).ok()?;
        let signer = SigningKey::from_seed(&label_key("gsp vector key FRA signing")).ok()?;
        let mut directory = HashMap::new();
        directory.insert(
            from,
            vec![SenderKey {
                key: signer.verifying_key(),
                validity: Validity::ALWAYS,
            }],
        );
        Some(Fixture {
            us,
            our_keys: vec![RecipientKey {
                key,
                validity: Validity::ALWAYS,
            }],
            directory,
        })
    })
    .as_ref()
}

/// The keys are those of the test vectors (SHA-256 of a label), so the
/// vectors' envelopes make a good seed corpus.
fn label_key(label: &str) -> [u8; 32] {
    crate::envelope::sha256(label.as_bytes())
}

/// The clock the fuzz context uses (the vectors' clock).
pub const FUZZ_NOW: UnixMillis = UnixMillis(1_800_000_000_000);

/// Feeds `data` to `open` (as an envelope for KEN from FRA), to the header
/// and receipt parsers, and to the frame parser (each frame then parsed as a
/// receipt, as a batch of returned receipts is). Must never panic; returns
/// whether `open` accepted.
pub fn open_any(data: &[u8]) -> bool {
    let _ = RoutingHeader::from_bytes(data);
    let _ = SignedHeader::from_bytes(data);
    let _ = Receipt::from_bytes(data);
    if let Ok(frames) = crate::frames::decode(data, 4096) {
        for frame in frames {
            let _ = Receipt::from_bytes(frame);
        }
    }
    let Some(f) = fixture() else {
        return false;
    };
    let seen = InMemorySeenIds::new();
    let ctx = OpenContext {
        us: f.us,
        our_keys: &f.our_keys,
        sender_keys: &f.directory,
        seen: &seen,
        now: FUZZ_NOW,
        skew: Duration::from_secs(300),
        max_envelope: MAX_ENVELOPE,
    };
    open(data, &ctx).is_ok()
}
