//! Helpers for tests of the exchange layer: messages as the federation layer
//! hands them over, recording them, a sealer that names what it seals, and
//! row counts.

use diesel::prelude::*;
use gsp_federation::keys::KeyId;
use gsp_federation::{
    MessageDraft, PROTOCOL_VERSION, PartyCode, RoutingHeader, SignedHeader, TemplateRef, UnixMillis,
};
use gsp_node::config::Config;
use gsp_node::exchange::store::{
    ArrivalOutcome, Arrived, ExchangeError, PreparedAnswer, PreparedArrival, Sealer, record_arrival,
};
use gsp_node::storage::DbConnection;
use uuid::Uuid;

/// An attachment from KEN to PAK in `case`, as the federation layer hands it over.
pub fn attachment(case: Uuid, body: &[u8]) -> Arrived {
    message(case, None, "image/jpeg", body)
}

/// A message from KEN to PAK in `case`, as the federation layer hands it over.
pub fn message(
    case: Uuid,
    template: Option<TemplateRef>,
    content_type: &str,
    body: &[u8],
) -> Arrived {
    let now = 1_800_000_000_000;
    Arrived {
        header: SignedHeader {
            version: PROTOCOL_VERSION,
            routing: RoutingHeader {
                message_id: Uuid::now_v7(),
                from: PartyCode::parse("KEN").unwrap(),
                to: PartyCode::parse("PAK").unwrap(),
                recipient_key_id: KeyId([7; 8]),
                created: UnixMillis(now),
                expires: UnixMillis(now + 3_600_000),
            },
            sender_key_id: KeyId([9; 8]),
            case_id: case,
            template,
            content_type: content_type.into(),
            body_len: body.len() as u64,
            body_sha256: [0; 32],
        },
        body: body.to_vec(),
        envelope: [b"envelope of ".as_slice(), body].concat().into(),
    }
}

/// Records `arrived` with a receipt that names the envelope digest.
pub fn arrive(conn: &mut DbConnection, arrived: Arrived) -> Result<ArrivalOutcome, ExchangeError> {
    arrive_answered(conn, arrived, None)
}

/// [`arrive`], with the answer prepared on its arrival.
pub fn arrive_answered(
    conn: &mut DbConnection,
    arrived: Arrived,
    answer: Option<&PreparedAnswer>,
) -> Result<ArrivalOutcome, ExchangeError> {
    record(conn, &prepare(arrived)?, answer)
}

/// `arrived` prepared for recording, with a receipt that names the envelope
/// digest.
pub fn prepare(arrived: Arrived) -> Result<PreparedArrival, ExchangeError> {
    let settings = Config::default().exchange;
    let sign = |digest: &[u8; 32]| Ok(digest.to_vec());
    PreparedArrival::new(arrived, &settings, &sign)
}

/// Records a prepared arrival, with the answer prepared on its arrival.
pub fn record(
    conn: &mut DbConnection,
    prepared: &PreparedArrival,
    answer: Option<&PreparedAnswer>,
) -> Result<ArrivalOutcome, ExchangeError> {
    record_arrival(conn, prepared, answer, None, 1_800_000_000)
}

#[derive(QueryableByName)]
pub struct Count {
    /// The count.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

pub fn count(conn: &mut DbConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

/// Seals by naming the message: the envelope's content is not what this test is about.
pub struct NamingSealer;

impl Sealer for NamingSealer {
    fn us(&self) -> PartyCode {
        PartyCode::parse("PAK").unwrap()
    }

    fn seal(&self, draft: &MessageDraft, body: &[u8]) -> Result<Vec<u8>, String> {
        Ok([draft.message_id.as_bytes().as_slice(), body].concat())
    }

    fn seal_validated(
        &self,
        draft: &MessageDraft,
        body: &gsp_federation::ValidatedBody,
    ) -> Result<Vec<u8>, String> {
        self.seal(draft, body.bytes())
    }
}
