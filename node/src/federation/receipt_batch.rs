//! `POST /federation/v1/receipts` (SPEC.md §15.6): the receipts a peer
//! returns, in batches, for the answers this node sent back in the responses
//! to its requests. Each receipt must be the calling Party's, accepted, and
//! verify against the answer still waiting in our outbox; it then settles
//! that answer exactly as a delivery would. One that does not is refused on
//! its own (named by its place in the batch) and changes nothing: its answer
//! is sent on its own once its hold runs out.

use super::server::{
    CHECKPOINT_HEADER, FederationState, NOT_A_PARTY, admit, calling_party, declared_or, media_is,
    observe_checkpoint, read_limited,
};
use crate::exchange::{outbox, store};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use gsp_federation::frames::{self, FRAMES_TYPE};
use gsp_federation::{PartyCode, Receipt, Verdict};
use serde_json::json;
use std::time::Duration;

/// Most receipts in one batch.
pub const MAX_RECEIPTS: usize = 4096;
/// Longest batch body accepted (a receipt is about 200 bytes).
pub const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;

fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"code": code, "message": message}))
}

/// A returned receipt checked against our outbox: its row and bytes.
struct Settles {
    seq: i64,
    receipt: Vec<u8>,
}

/// Receives a batch of receipts from the calling Party.
pub async fn receive(
    state: web::Data<FederationState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let fed = &state.federation;
    // Receipts are checked against the directory's keys: fail closed on a
    // stale copy, as for messages (SPEC §15.2).
    if let Err(why) = fed.peers.usable(store::now_ms()) {
        let mut res = HttpResponse::ServiceUnavailable();
        res.insert_header(("Retry-After", "30"));
        return res.json(json!({"code": "directory_stale", "message": why}));
    }
    let Some(peer) = calling_party(fed, &req) else {
        return error(StatusCode::FORBIDDEN, "unauthenticated_peer", NOT_A_PARTY);
    };
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    if !media_is(content_type, FRAMES_TYPE) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            &format!("send {FRAMES_TYPE}"),
        );
    }
    let _permit = match admit(&state, peer, declared_or(&req, MAX_BATCH_BYTES)) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let body = match read_limited(&req, payload, MAX_BATCH_BYTES).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!("a batch of receipts is at most {MAX_BATCH_BYTES} bytes"),
            );
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_batch",
                &format!("reading the request body: {e}"),
            );
        }
    };
    observe_checkpoint(fed, peer, &req);
    let st = state.clone();
    let checked = tokio::task::spawn_blocking(move || check_all(&st, peer, &body)).await;
    let (settles, refused) = match checked {
        Ok(Ok(v)) => v,
        Ok(Err(BatchError::Malformed(e))) => {
            return error(StatusCode::BAD_REQUEST, "malformed_batch", &e);
        }
        Ok(Err(BatchError::Internal(e))) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "internal_error", &e);
        }
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal_error",
                &e.to_string(),
            );
        }
    };
    let count = settles.len();
    if count > 0 {
        // As a delivery outcome: lost in a power failure, the answer is sent
        // again and the peer returns the same receipt.
        let recorded = state
            .db
            .write_unsynced_rerunnable(move |c| {
                let now = store::now_ms();
                for s in &settles {
                    outbox::delivered(c, s.seq, &s.receipt, now)?;
                }
                Ok::<_, crate::storage::StorageError>(())
            })
            .await;
        if let Err(e) = recorded {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal_error",
                &e.to_string(),
            );
        }
    }
    state
        .metrics
        .response_receipts(count as u64, refused.len() as u64);
    for r in &refused {
        tracing::warn!(peer = peer.as_str(), refused = %r, "returned receipt refused");
    }
    let mut res = HttpResponse::Ok();
    if let Some(c) = fed.peers.checkpoint() {
        res.insert_header((CHECKPOINT_HEADER, c));
    }
    res.json(json!({"recorded": count, "refused": refused}))
}

/// Why a batch was refused as a whole.
enum BatchError {
    /// Its framing is broken (SPEC `malformed_batch`).
    Malformed(String),
    /// The node failed.
    Internal(String),
}

/// Checks every receipt of `body`: those that settle an answer, and a
/// sentence for each refused one.
fn check_all(
    state: &FederationState,
    peer: PartyCode,
    body: &[u8],
) -> Result<(Vec<Settles>, Vec<serde_json::Value>), BatchError> {
    let fed = &state.federation;
    let frames =
        frames::decode(body, MAX_RECEIPTS).map_err(|e| BatchError::Malformed(e.to_string()))?;
    let mut conn = state
        .db
        .conn()
        .map_err(|e| BatchError::Internal(e.to_string()))?;
    let keys = fed.peers.signing_keys(peer);
    let now = store::now_ms();
    let skew = Duration::from_secs(state.config.federation.clock_skew_secs);
    let us = fed.identity.party;
    let mut settles = Vec::with_capacity(frames.len());
    let mut refused = Vec::new();
    for (index, bytes) in frames.into_iter().enumerate() {
        let checked = (|| -> Result<Option<Settles>, String> {
            let receipt = Receipt::from_bytes(bytes).map_err(|e| e.to_string())?;
            if receipt.from != peer || receipt.to != us {
                return Err(format!(
                    "the receipt is from {} to {}, not from {} to {}",
                    receipt.from.as_str(),
                    receipt.to.as_str(),
                    peer.as_str(),
                    us.as_str()
                ));
            }
            if receipt.verdict != Verdict::Accepted {
                return Err("only accepted receipts are returned in batches".into());
            }
            let id = receipt.message_id.to_string();
            let Some((seq, envelope)) =
                outbox::pending_message(&mut conn, us.as_str(), peer.as_str(), &id)
                    .map_err(|e| format!("reading the outbox: {e}"))?
            else {
                // Delivered on its own meanwhile, or never ours: nothing to
                // settle, and nothing wrong with a late copy.
                return Ok(None);
            };
            receipt
                .verify(&envelope, &keys, store::unix(now), skew)
                .map_err(|e| e.to_string())?;
            Ok(Some(Settles {
                seq,
                receipt: bytes.to_vec(),
            }))
        })();
        match checked {
            Ok(Some(s)) => settles.push(s),
            Ok(None) => {}
            Err(message) => refused.push(json!({"index": index, "message": message})),
        }
    }
    Ok((settles, refused))
}
