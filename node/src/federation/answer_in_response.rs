//! Answers that come back in the response to our request (SPEC.md §15.6).
//!
//! A request answered automatically as it arrives needs no delivery of its
//! own for the answer: the peer returns the answer's envelope after the
//! request's receipt, in the same HTTP response. Delivery opens it here
//! exactly as the federation listener opens a message (every check of §7),
//! records it durably with our signed receipt (on a task of its own, so the
//! request's delivery outcome does not wait for it), and returns our
//! receipts to the peer in batches (`POST /federation/v1/receipts`) a moment
//! later.
//!
//! Nothing is lost if any of it fails: the peer keeps the answer in its
//! outbox and, without our receipt when its hold runs out, sends it on its
//! own — and a copy of an answer recorded here gets its original receipt.

use super::arrival;
use super::delivery::{Delivery, read_capped, retry_after_ms};
use super::peers::Peer;
use crate::exchange::model::MessageKind;
use crate::exchange::store::{self, ArrivalOutcome, ExchangeError, PreparedArrival};
use gsp_federation::PartyCode;
use gsp_federation::frames::{self, FRAMES_TYPE};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long receipts gather before a batch goes back: long enough for many
/// to share one request under load, short against the peer's hold.
const GATHER: Duration = Duration::from_millis(20);

/// Most of a reply to a batch of receipts that is read (a refusal's JSON
/// names each refused receipt by its place).
const REPLY_LIMIT: usize = 1024 * 1024;

/// Receipts waiting to go back to each peer.
#[derive(Default)]
pub struct ReceiptReturns {
    queues: Mutex<HashMap<PartyCode, Queue>>,
}

#[derive(Default)]
struct Queue {
    receipts: Vec<Vec<u8>>,
    /// A task is sending this peer's batches.
    sending: bool,
}

impl ReceiptReturns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PartyCode, Queue>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a receipt for `peer`; true when no task is sending that peer's
    /// batches (the caller starts one).
    fn push(&self, peer: PartyCode, receipt: Vec<u8>) -> bool {
        let mut queues = self.lock();
        let q = queues.entry(peer).or_default();
        q.receipts.push(receipt);
        !std::mem::replace(&mut q.sending, true)
    }

    /// The next batch for `peer`, or `None` (and the sending task ends)
    /// when there is none.
    fn next_batch(&self, peer: PartyCode) -> Option<Vec<Vec<u8>>> {
        let mut queues = self.lock();
        let q = queues.entry(peer).or_default();
        if q.receipts.is_empty() {
            q.sending = false;
            return None;
        }
        let n = q.receipts.len().min(super::receipt_batch::MAX_RECEIPTS);
        Some(q.receipts.drain(..n).collect())
    }
}

impl Delivery {
    /// Takes the answer `envelope` that came back from `peer` in the
    /// response to one of our requests: opened, checked and recorded as if
    /// the peer had POSTed it, its receipt then returned in a batch.
    pub(super) async fn take_answer(&self, peer: &Peer, envelope: actix_web::web::Bytes) {
        let Some(prepared) = self.open_answer(peer, envelope).await else {
            return;
        };
        let now = store::now_ms();
        let outcome = self
            .db
            .write_rerunnable(move |c| store::record_arrival(c, &prepared, None, None, now))
            .await;
        self.answers_recorded(peer.party.as_str(), vec![outcome]);
    }

    /// Opens and checks the answer `envelope` that came back from `peer` in
    /// the response to one of our requests, as if the peer had POSTed it. A
    /// refusal is only logged: the peer sends the answer again on its own,
    /// and the federation listener refuses it then with the SPEC's code.
    async fn open_answer(
        &self,
        peer: &Peer,
        envelope: actix_web::web::Bytes,
    ) -> Option<Box<PreparedArrival>> {
        let (fed, config) = (self.federation.clone(), self.config.clone());
        let now = store::now_ms();
        let opened = crate::offload::cpu(envelope.len(), move || {
            arrival::open_and_prepare(&fed, &config, envelope, now)
        })
        .await;
        let prepared = match opened {
            Ok(Ok(p)) => p,
            Ok(Err((code, message))) => {
                tracing::warn!(
                    peer = peer.party.as_str(),
                    code,
                    message,
                    "answer in a response refused; the peer will send it on its own"
                );
                return None;
            }
            Err(e) => {
                tracing::error!(error = %e, "opening an answer in a response failed");
                return None;
            }
        };
        let from = prepared.header().routing.from;
        if from != peer.party || prepared.kind() != MessageKind::Answer {
            tracing::warn!(
                peer = peer.party.as_str(),
                from = from.as_str(),
                "a response carried something other than the peer's own answer; ignored"
            );
            return None;
        }
        Some(Box::new(prepared))
    }

    /// After the write that recorded answers from `peer`'s responses: their
    /// receipts go back in a batch; one not recorded is left to the peer's
    /// own delivery.
    fn answers_recorded(&self, peer: &str, arrivals: Vec<Result<ArrivalOutcome, ExchangeError>>) {
        let Ok(party) = PartyCode::parse(peer) else {
            return;
        };
        let mut start = false;
        for arrival in arrivals {
            match arrival {
                Ok(o) => {
                    self.metrics.received(o.duplicate);
                    self.metrics.answer_taken_from_response();
                    tracing::info!(from = peer, case = %o.case_id, "answer received in a response");
                    start |= self.returns.push(party, o.receipt);
                }
                Err(e) => {
                    let (code, message) = arrival::refusal(e);
                    tracing::warn!(
                        peer,
                        code,
                        message,
                        "answer in a response not recorded; the peer will send it on its own"
                    );
                }
            }
        }
        if start {
            let me = self.clone();
            tokio::spawn(async move { me.send_returns(party).await });
        }
    }

    /// Sends `party`'s waiting receipts in batches until none are left. A
    /// batch the peer refuses as over our share of its listener (429) is
    /// sent once more after the wait it asks for, at most [`RETURN_WAIT`]:
    /// later, the peer would already be sending those answers again.
    async fn send_returns(&self, party: PartyCode) {
        loop {
            tokio::time::sleep(GATHER).await;
            let Some(batch) = self.returns.next_batch(party) else {
                return;
            };
            let mut sent = self.post_receipts(party, &batch).await;
            if let Err(Unreturned {
                wait: Some(wait), ..
            }) = &sent
            {
                tokio::time::sleep((*wait).min(RETURN_WAIT)).await;
                sent = self.post_receipts(party, &batch).await;
            }
            if let Err(e) = sent {
                tracing::warn!(peer = party.as_str(), count = batch.len(), error = %e.why, "returning receipts failed; the peer will send those answers again");
            }
        }
    }

    /// POSTs one batch of receipts to `party`'s node.
    async fn post_receipts(&self, party: PartyCode, batch: &[Vec<u8>]) -> Result<(), Unreturned> {
        let peers = &self.federation.peers;
        let peer = peers.peer(party).ok_or_else(|| {
            Unreturned::from(format!("{} has no node in the directory", party.as_str()))
        })?;
        let client = self.client_for(&peer).map_err(Unreturned::from)?;
        let body = actix_web::web::Bytes::from(frames::encode(batch));
        let mut last = Unreturned::from("no URL in the directory record".to_owned());
        for url in &peer.urls {
            let endpoint = format!("{}/federation/v1/receipts", url.trim_end_matches('/'));
            let req = self.post(&client, &endpoint, FRAMES_TYPE, body.clone());
            match req.send().await {
                Ok(res) if res.status().is_success() => {
                    let answer: serde_json::Value = read_capped(res, REPLY_LIMIT)
                        .await
                        .ok()
                        .and_then(|b| serde_json::from_slice(&b).ok())
                        .unwrap_or_default();
                    let refused = answer
                        .get("refused")
                        .and_then(serde_json::Value::as_array)
                        .map_or(0, Vec::len);
                    if refused > 0 {
                        tracing::warn!(peer = party.as_str(), refused, details = %answer, "the peer refused returned receipts");
                    }
                    return Ok(());
                }
                Ok(res) => {
                    let status = res.status();
                    let wait = (status == reqwest::StatusCode::TOO_MANY_REQUESTS).then(|| {
                        let ms = retry_after_ms(res.headers(), &self.config);
                        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
                    });
                    let text = read_capped(res, REPLY_LIMIT)
                        .await
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_else(|e| e);
                    last = Unreturned {
                        why: format!("{endpoint}: {status}: {text}"),
                        wait,
                    };
                }
                Err(e) => last = Unreturned::from(format!("{endpoint}: {e}")),
            }
        }
        Err(last)
    }
}

/// The longest wait before a batch of receipts refused with 429 is sent
/// again: well inside the time for which a GSP peer holds the answers for
/// their receipts ([`super::wake::RESPONSE_GRACE_MS`], 10 s).
const RETURN_WAIT: Duration = Duration::from_secs(5);

/// Why a batch of receipts did not go back, and the wait the peer asked
/// for when it refused the batch as over our share (429).
struct Unreturned {
    why: String,
    wait: Option<Duration>,
}

impl From<String> for Unreturned {
    fn from(why: String) -> Self {
        Unreturned { why, wait: None }
    }
}
