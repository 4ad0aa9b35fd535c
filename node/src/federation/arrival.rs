//! Opening an envelope that arrived and preparing its record: every check of
//! SPEC.md §7 and the signed receipt, with nothing written yet. Shared by the
//! federation listener (messages POSTed to us) and by delivery (answers that
//! came back in the response to our request, §15.6), so that both take
//! exactly the same path.

use super::Federation;
use super::peers::SenderKeysOf;
use crate::config::Config;
use crate::exchange::store::{self, Arrived, ExchangeError, PreparedArrival};
use gsp_federation::{OpenContext, OpenError, PartyCode, Receipt, UnixMillis, Verdict};
use std::time::Duration;
use uuid::Uuid;

/// Replay is decided in the database, in the same transaction that stores the
/// message (a duplicate gets its original receipt), so `open` is told every
/// id is new.
struct DecidedInDatabase;

impl gsp_federation::SeenIds for DecidedInDatabase {
    fn first_sighting(
        &self,
        _from: PartyCode,
        _id: Uuid,
        _keep_until: UnixMillis,
    ) -> Result<bool, String> {
        Ok(true)
    }
}

/// Opens `envelope`, received at `now` (ms), and prepares its record with
/// our signed receipt; or gives the SPEC code and sentence of its refusal.
/// CPU work: call it off the async threads.
pub fn open_and_prepare(
    fed: &Federation,
    config: &Config,
    envelope: actix_web::web::Bytes,
    now: i64,
) -> Result<PreparedArrival, (String, String)> {
    let keys = SenderKeysOf(fed.peers.as_ref());
    let ctx = OpenContext {
        us: fed.identity.party,
        our_keys: &fed.identity.encryption_keys,
        sender_keys: &keys,
        seen: &DecidedInDatabase,
        now: store::unix(now),
        skew: Duration::from_secs(config.federation.clock_skew_secs),
        max_envelope: config.federation.max_envelope_bytes,
    };
    let opened = gsp_federation::open(&envelope, &ctx)
        .map_err(|e: OpenError| (e.code().to_owned(), e.to_string()))?;
    let header = opened.header.clone();
    let body = opened.into_body();
    let routing = header.routing;
    let identity = &fed.identity;
    let sign = |digest: &[u8; 32]| -> Result<Vec<u8>, String> {
        Ok(Receipt::sign(
            *digest,
            routing.message_id,
            identity.party,
            routing.from,
            store::unix(now),
            Verdict::Accepted,
            &identity.signing_key,
        )
        .to_bytes())
    };
    let arrived = Arrived {
        header,
        body,
        envelope,
    };
    PreparedArrival::new(arrived, &config.exchange, &sign).map_err(refusal)
}

/// The SPEC code and sentence for a message that could not be recorded.
pub fn refusal(e: ExchangeError) -> (String, String) {
    match e {
        ExchangeError::Database(e) => ("internal_error".into(), e.to_string()),
        ExchangeError::Seal(e) => ("internal_error".into(), e),
        ExchangeError::Invalid(e) => ("invalid_body".into(), e),
        e => ("case_conflict".into(), e.to_string()),
    }
}
