//! Delivery: workers that take due messages from the durable outbox and POST
//! them to the peer's node over mutual TLS 1.3 (pinned to the peer's
//! directory record, our certificate presented), keeping connections alive.
//!
//! One worker per peer with up to `[exchange] in_flight_per_peer` messages
//! at once. A 200 with a receipt that verifies against the peer's published
//! signing keys marks the message delivered; a refusal by the peer fails it
//! with the peer's reason; anything else (network, 429, 503) is retried with
//! back-off until the message expires. Leases and outcomes are committed
//! without waiting for an fsync (`Database::write_unsynced`): lost in a power
//! failure, a message is simply sent again and the peer answers with its
//! original receipt. The outcomes are written in batches, one write per peer
//! under way at a time, while the worker goes on sending. A
//! request's response may also carry the peer's answer to it (SPEC §15.6),
//! taken by [`super::answer_in_response`].

use super::Federation;
use super::answer_in_response::ReceiptReturns;
use super::peers::Peer;
use super::server::{
    ACCEPT, ANSWER_IN_RESPONSE_HEADER, CHECKPOINT_HEADER, ENVELOPE_TYPE, media_is,
};
use super::wake::{OutboxWake, PeerWorker};
use crate::config::Config;
use crate::exchange::outbox::{self, Due, Retry};
use crate::exchange::store;
use crate::storage::Database;
use crate::tls::{self, StaticPins};
use gsp_federation::frames::{self, FRAMES_TYPE};
use gsp_federation::{PartyCode, Receipt};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a peer's worker with nothing to do waits for new messages before
/// it ends (a message queued meanwhile takes one of its places).
const LINGER: Duration = Duration::from_millis(500);

/// How long the outcomes of deliveries wait for more to share their write
/// when nothing else needs one (no claim): the outcome of a delivery holds
/// nothing back, and one write for several costs the writer less.
const GATHER: Duration = Duration::from_millis(10);

/// How long a claim lasts (ms): it outlives one attempt by a margin; the
/// claims of an instance that crashed mid-attempt lapse after that and
/// another takes over.
fn lease_ms(config: &Config) -> i64 {
    let timeout = Duration::from_secs(config.federation.request_timeout_secs.max(1));
    i64::try_from(timeout.as_millis()).unwrap_or(60_000) + LEASE_MARGIN_MS
}

/// How much longer a claim lasts than one attempt (ms).
const LEASE_MARGIN_MS: i64 = 10_000;

/// The longest a peer's worker holds back claimed messages because the peer
/// asked it to wait (ms): well inside [`LEASE_MARGIN_MS`], so a message
/// held that long and then sent keeps its claim until its attempt ends.
const MAX_PAUSE_MS: i64 = LEASE_MARGIN_MS / 2;

/// What one delivery attempt came to.
enum Attempt {
    /// Delivered; the receipt bytes.
    Delivered(Vec<u8>),
    /// Try again later.
    Transient(String),
    /// The peer asked us to wait (429 `rate_limited` with `Retry-After`,
    /// SPEC §15.2): try again later, not before the given milliseconds.
    Wait(String, i64),
    /// The peer refused the message itself.
    Refused(String),
}

/// A peer's HTTPS client together with the TLS pins it was built for, so a pin
/// change in the directory builds a new client.
type PinnedClient = (Vec<[u8; 32]>, reqwest::Client);

/// The delivery service of one `gsp serve` instance.
#[derive(Clone)]
pub struct Delivery {
    pub(super) db: Database,
    pub(super) config: Arc<Config>,
    pub(super) federation: Arc<Federation>,
    /// Identifies this instance's leases in the outbox.
    instance: String,
    clients: Arc<Mutex<HashMap<PartyCode, PinnedClient>>>,
    /// The peers with a worker running, and how the node tells about new work.
    wake: Arc<OutboxWake>,
    pub(super) metrics: Arc<crate::metrics::Metrics>,
    /// Our receipts for answers that came in responses, on their way back.
    pub(super) returns: Arc<ReceiptReturns>,
}

impl Delivery {
    /// A delivery service; `instance` must differ between processes sharing a database.
    pub fn new(
        db: Database,
        config: Arc<Config>,
        federation: Arc<Federation>,
        instance: String,
        metrics: Arc<crate::metrics::Metrics>,
        wake: Arc<OutboxWake>,
    ) -> Delivery {
        wake.set_claimant(&instance, lease_ms(&config));
        Delivery {
            db,
            config,
            federation,
            instance,
            clients: Arc::new(Mutex::new(HashMap::new())),
            wake,
            metrics,
            returns: Arc::default(),
        }
    }

    /// Runs forever: wakes when told (see [`OutboxWake`]) or every second,
    /// starts a worker for each peer with due messages, and fails messages
    /// past their expiry.
    pub async fn run(self) {
        let mut last_expiry_sweep = 0i64;
        loop {
            let now = store::now_ms();
            if now - last_expiry_sweep > 30_000 {
                last_expiry_sweep = now;
                match self
                    .db
                    .run(move |c| {
                        outbox::expire_overdue(c, now).map_err(crate::storage::StorageError::from)
                    })
                    .await
                {
                    Ok(n) if n > 0 => {
                        tracing::warn!(count = n, "messages failed: not delivered before expiry")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "outbox expiry sweep failed"),
                }
            }
            match self
                .db
                .run(move |c| outbox::peers_due(c, now).map_err(crate::storage::StorageError::from))
                .await
            {
                Ok(peers) => {
                    for peer in peers {
                        if let Some(worker) = self.wake.poke_or_register(&peer) {
                            let me = self.clone();
                            tokio::spawn(async move { me.work_peer(&peer, &worker).await });
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading the outbox failed"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(1000)) => {}
            }
        }
    }

    /// Delivers everything due for `peer` with up to `in_flight_per_peer`
    /// messages on the way at once: whenever no more than half of them are
    /// on the way — after a delivery, or when told that new messages are due
    /// — more are claimed. A message queued while others are in flight thus
    /// leaves at once instead of waiting for one of them to come back, and
    /// under load claims still come in batches. The outcomes of deliveries
    /// that came back together are recorded in one write, with the claim
    /// that takes their places (one writer round trip, not one per message
    /// and another per claim).
    ///
    /// One such write is under way at a time, and the worker does not wait
    /// for it: messages handed to it or claimed before go out meanwhile, and
    /// the deliveries coming back are read (their receipts verified, the
    /// answers they carry passed on) and gathered for the next write. A
    /// delivered message's outcome thus need not wait for another's commit.
    ///
    /// A peer that refuses us as over our share of its listener (429, SPEC
    /// §15.2) is given what it asks for as a whole, not only for the refused
    /// message: see [`Pace`].
    async fn work_peer(&self, peer: &str, worker: &PeerWorker) {
        use futures_util::{FutureExt as _, StreamExt as _};
        let timeout = Duration::from_secs(self.config.federation.request_timeout_secs.max(1));
        let lease = lease_ms(&self.config);
        let mut pace = Pace::new(self.config.exchange.in_flight_per_peer.max(1));
        let mut in_flight = futures_util::stream::FuturesUnordered::new();
        // Claimed or handed to us, not on the way yet (the peer asked us
        // to wait, or the window is full).
        let mut ready: VecDeque<Due> = VecDeque::new();
        let mut came_back: Vec<(Due, Attempt)> = Vec::new();
        // When the first of those came back.
        let mut gathering: Option<tokio::time::Instant> = None;
        // The write recording outcomes (and claiming) under way, if any.
        let mut settling = None;
        // It claims: places are not offered until it is back.
        let mut claiming = false;
        // The last claim found no more due messages for the peer: until
        // poked (a message queued without a place, or one due again after
        // its back-off), new ones come as places (see `wake`).
        let mut drained = false;
        let go = |d: Due| async move {
            let result = self.attempt(&d, timeout).await;
            (d, result)
        };
        loop {
            let handed = worker.take_handed();
            if !handed.is_empty() {
                self.metrics.taken(handed.len(), 0);
            }
            ready.extend(handed);
            let paused = pace.paused(tokio::time::Instant::now());
            let busy = in_flight.len() + ready.len() + worker.held();
            let window = pace.window;
            let want = if settling.is_none()
                && !paused
                && busy <= window / 2
                && (!drained || worker.poked.load(Ordering::SeqCst))
            {
                worker.poked.store(false, Ordering::SeqCst);
                // Places are not offered while claiming: the room is the claim's.
                worker.offer(0);
                window - busy
            } else {
                0
            };
            let gathered = gathering.is_some_and(|t| t + GATHER <= tokio::time::Instant::now())
                || came_back.len() >= (window / 2).max(1);
            if settling.is_none() && (want > 0 || (!came_back.is_empty() && gathered)) {
                gathering = None;
                let outcomes = std::mem::take(&mut came_back);
                claiming = want > 0;
                settling = Some(Box::pin(self.settle(peer, outcomes, want, lease)));
            }
            let paused = pace.paused(tokio::time::Instant::now());
            while !paused && in_flight.len() < pace.window {
                let Some(d) = ready.pop_front() else { break };
                in_flight.push(go(d));
            }
            let busy = in_flight.len() + ready.len() + worker.held();
            if paused {
                // No new messages handed to us while the peer wants a pause.
                worker.offer(0);
            } else if drained && !claiming {
                worker.offer(pace.window.saturating_sub(busy));
            }
            if in_flight.is_empty() && settling.is_none() && came_back.is_empty() {
                if let Some(until) = pace.until.filter(|_| paused) {
                    // Nothing on the way: wait out the pause (or news).
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => {}
                        _ = worker.wake.notified() => {}
                    }
                    continue;
                }
                if worker.held() == 0 && !worker.poked.load(Ordering::SeqCst) {
                    // Idle: stay a moment, offering places, before retiring.
                    let _ = tokio::time::timeout(LINGER, worker.wake.notified()).await;
                    if worker.held() > 0 || worker.poked.load(Ordering::SeqCst) {
                        continue;
                    }
                }
                if self.wake.retire(peer, worker) {
                    return;
                }
                if worker.held() > 0 {
                    // A place taken: wait for its message or its return
                    // (a poke kept by the refused retirement is answered
                    // by the claim after it).
                    worker.wake.notified().await;
                }
                continue;
            }
            let resume = pace.until.filter(|_| paused && !ready.is_empty());
            let flush = gathering.filter(|_| settling.is_none()).map(|t| t + GATHER);
            let recording_on = settling.is_some();
            let recording = futures_util::future::OptionFuture::from(settling.as_mut());
            tokio::select! {
                Some(done) = in_flight.next() => {
                    // Taken in at once, not when written: a peer's wish
                    // to wait holds back what would go out meanwhile.
                    pace.came_back(&done.1, peer, tokio::time::Instant::now());
                    came_back.push(done);
                    gathering.get_or_insert_with(tokio::time::Instant::now);
                    // And every other delivery already back.
                    while let Some(Some(done)) = in_flight.next().now_or_never() {
                        pace.came_back(&done.1, peer, tokio::time::Instant::now());
                        came_back.push(done);
                    }
                }
                Some((claimed, want)) = recording, if recording_on => {
                    settling = None;
                    if claiming {
                        claiming = false;
                        drained = claimed.len() < want;
                    }
                    self.metrics.taken(0, claimed.len());
                    ready.extend(claimed);
                }
                _ = worker.wake.notified() => {}
                // Outcomes gathered long enough: written.
                _ = tokio::time::sleep_until(flush.unwrap_or_else(tokio::time::Instant::now)), if flush.is_some() => {}
                // The pause is over: the messages waiting go.
                _ = tokio::time::sleep_until(resume.unwrap_or_else(tokio::time::Instant::now)), if resume.is_some() => {}
            }
        }
    }

    /// Records `outcomes` and claims up to `want` more messages for `peer`,
    /// in one write; returns the claimed messages, and `want`.
    async fn settle(
        &self,
        peer: &str,
        outcomes: Vec<(Due, Attempt)>,
        want: usize,
        lease: i64,
    ) -> (Vec<Due>, usize) {
        for (d, result) in &outcomes {
            self.metrics.delivery(
                matches!(result, Attempt::Delivered(_)),
                matches!(result, Attempt::Refused(_)),
            );
            match result {
                Attempt::Delivered(_) => {
                    tracing::info!(peer = %d.peer, id = %d.message_id, "delivered")
                }
                Attempt::Transient(e) | Attempt::Wait(e, _) => {
                    tracing::warn!(peer = %d.peer, id = %d.message_id, attempt = d.attempts + 1, error = %e, "delivery failed; will retry")
                }
                Attempt::Refused(e) => {
                    tracing::error!(peer = %d.peer, id = %d.message_id, error = %e, "message refused by the recipient")
                }
            }
        }
        let settings = self.config.exchange.clone();
        let (instance, p) = (self.instance.clone(), peer.to_owned());
        let wanted = want;
        let want = i64::try_from(want).unwrap_or(i64::MAX);
        let claimed = self
            .db
            .write_unsynced_rerunnable(move |c| {
                let now = store::now_ms();
                for (d, result) in &outcomes {
                    // Each its own transaction inside the batch's: one that
                    // fails leaves the others recorded (the writer runs the
                    // batch again with savepoints); its lease runs out and
                    // the message is tried again, and the receiver returns
                    // the same receipt.
                    let recorded = match result {
                        Attempt::Delivered(receipt) => outbox::delivered(c, d.seq, receipt, now),
                        Attempt::Transient(e) => {
                            let retry = Retry::After { at_least_ms: 0 };
                            outbox::attempt_failed(c, &settings, d.seq, e, retry, now)
                        }
                        Attempt::Wait(e, at_least_ms) => {
                            let retry = Retry::After {
                                at_least_ms: *at_least_ms,
                            };
                            outbox::attempt_failed(c, &settings, d.seq, e, retry, now)
                        }
                        Attempt::Refused(e) => {
                            outbox::attempt_failed(c, &settings, d.seq, e, Retry::Never, now)
                        }
                    };
                    if let Err(e) = recorded {
                        tracing::error!(error = %e, seq = d.seq, "recording a delivery outcome failed");
                    }
                }
                if want == 0 {
                    return Ok(Vec::new());
                }
                outbox::claim(c, &instance, &p, now, lease, want)
                    .map_err(crate::storage::StorageError::from)
            })
            .await;
        let claimed = claimed.unwrap_or_else(|e| {
            tracing::error!(error = %e, peer, "recording outcomes and claiming from the outbox failed");
            Vec::new()
        });
        (claimed, wanted)
    }

    pub(super) fn client_for(&self, peer: &Peer) -> Result<reqwest::Client, String> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| "client cache poisoned".to_owned())?;
        if let Some((pins, client)) = clients.get(&peer.party)
            && *pins == peer.tls_pins
        {
            return Ok(client.clone());
        }
        let pins = Arc::new(StaticPins(peer.tls_pins.iter().copied().collect()));
        let config = tls::client_config(pins, Some(&self.federation.identity.tls))
            .map_err(|e| e.to_string())?;
        let timeout = Duration::from_secs(self.config.federation.request_timeout_secs.max(1));
        let client = tls::http_client(config, timeout).map_err(|e| e.to_string())?;
        clients.insert(peer.party, (peer.tls_pins.clone(), client.clone()));
        Ok(client)
    }

    /// A POST of `body` as `media` to a peer's `endpoint`, with our latest
    /// directory checkpoint (SPEC §15.5).
    pub(super) fn post(
        &self,
        client: &reqwest::Client,
        endpoint: &str,
        media: &str,
        body: actix_web::web::Bytes,
    ) -> reqwest::RequestBuilder {
        let req = client
            .post(endpoint)
            .header("content-type", media)
            .body(body);
        match self.federation.peers.checkpoint() {
            Some(c) => req.header(CHECKPOINT_HEADER, c),
            None => req,
        }
    }

    async fn attempt(&self, d: &Due, _timeout: Duration) -> Attempt {
        let peers = &self.federation.peers;
        if let Err(why) = peers.usable(store::now_ms()) {
            return Attempt::Transient(format!("directory not usable: {why}"));
        }
        let Ok(party) = PartyCode::parse(&d.peer) else {
            return Attempt::Refused(format!("{:?} is not a Party code", d.peer));
        };
        let Some(peer) = peers.peer(party) else {
            return Attempt::Transient(format!("{} has no node in the directory", d.peer));
        };
        let client = match self.client_for(&peer) {
            Ok(c) => c,
            Err(e) => return Attempt::Transient(e),
        };
        let mut last = String::from("no URL in the directory record");
        for url in &peer.urls {
            let endpoint = format!("{}/federation/v1/messages", url.trim_end_matches('/'));
            let mut req = self.post(&client, &endpoint, ENVELOPE_TYPE, d.envelope.clone());
            if self.config.exchange.answers_in_response {
                req = req.header(ANSWER_IN_RESPONSE_HEADER, ACCEPT);
            }
            let res = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{endpoint}: {e}");
                    continue;
                }
            };
            if let Some(c) = res
                .headers()
                .get(CHECKPOINT_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                peers.observe_checkpoint(party, c);
            }
            let status = res.status();
            let retry_after = retry_after_ms(res.headers(), &self.config);
            let framed = media_is(
                res.headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok()),
                FRAMES_TYPE,
            );
            // A receipt, or a receipt and an answer envelope (§15.6), or a
            // JSON refusal: never more than an envelope and a little.
            let limit = self.config.federation.max_envelope_bytes + RESPONSE_MARGIN;
            let bytes = match read_capped(res, limit).await {
                Ok(b) => b,
                Err(e) => {
                    last = format!("{endpoint}: reading the response: {e}");
                    continue;
                }
            };
            if status.is_success() {
                // The receipt, and the answer made on arrival if the peer
                // sent it back in the response (SPEC §15.6).
                let (receipt, answer) = if framed {
                    match frames::decode(&bytes, 2) {
                        Ok(f) if !f.is_empty() => (f[0], f.get(1).map(|a| bytes.slice_ref(a))),
                        Ok(_) => (&bytes[..0], None),
                        Err(e) => {
                            return Attempt::Transient(format!("{endpoint}: the response: {e}"));
                        }
                    }
                } else {
                    (&bytes[..], None)
                };
                return match verify_receipt(
                    receipt,
                    &d.envelope,
                    &peer,
                    peers.as_ref(),
                    &self.config,
                    false,
                ) {
                    Ok(()) => {
                        // Taken on its own task: the delivery's outcome
                        // does not wait for the answer's commit.
                        if let Some(answer) = answer {
                            let (me, peer) = (self.clone(), peer.clone());
                            tokio::spawn(async move { me.take_answer(&peer, answer).await });
                        }
                        Attempt::Delivered(receipt.to_vec())
                    }
                    // A bad receipt is not delivery evidence; try again.
                    Err(e) => Attempt::Transient(format!("{endpoint}: {e}")),
                };
            }
            let json = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
            let field = |name: &str| -> String {
                json.as_ref()
                    .and_then(|v| v.get(name))
                    .and_then(|c| c.as_str())
                    .unwrap_or("")
                    .to_owned()
            };
            let (code, message) = (field("code"), field("message"));
            let text = format!("{} {code}: {message}", status.as_u16());
            return match (status.as_u16(), code.as_str()) {
                // Over our share of the peer's listener: not before it says.
                (429, _) => Attempt::Wait(text, retry_after),
                (503, _) | (_, "internal_error" | "directory_stale" | "rate_limited") => {
                    Attempt::Transient(text)
                }
                // The receiver already accepted this id (SPEC §7.2): delivered,
                // with its signed `replayed` receipt as the evidence.
                (_, "replayed") => {
                    use base64::Engine as _;
                    let receipt = base64::engine::general_purpose::STANDARD
                        .decode(field("receipt"))
                        .unwrap_or_default();
                    match verify_receipt(
                        &receipt,
                        &d.envelope,
                        &peer,
                        peers.as_ref(),
                        &self.config,
                        true,
                    ) {
                        Ok(()) => Attempt::Delivered(receipt),
                        Err(e) => Attempt::Transient(format!("{text} (receipt: {e})")),
                    }
                }
                // Ours or theirs may be behind on keys: retry after a refresh.
                (_, "unknown_recipient_key" | "unknown_signing_key" | "unauthenticated_peer") => {
                    Attempt::Transient(text)
                }
                _ if status.is_client_error() => Attempt::Refused(text),
                _ => Attempt::Transient(text),
            };
        }
        Attempt::Transient(last)
    }
}

/// How fast one peer's worker may send after the peer asked it to wait.
///
/// A 429 `rate_limited` says we are over our share of the peer's listener
/// (SPEC §15.2), so every other message sent at once would be refused too.
/// On one, the worker starts nothing new for that peer until the
/// `Retry-After` has passed (at most [`MAX_PAUSE_MS`], so that messages
/// held meanwhile keep their claims; the refused message itself waits the
/// whole `Retry-After` in the outbox), and halves the number of messages it
/// keeps on the way (to one at the least); each delivery widens that window
/// by one again, up to `[exchange] in_flight_per_peer`. A peer that limits
/// the rate of requests thus sees the sender settle near what it allows
/// instead of a stream of attempts it must refuse.
struct Pace {
    /// The most messages on the way now.
    window: usize,
    /// `in_flight_per_peer`.
    limit: usize,
    /// No new attempt before this.
    until: Option<tokio::time::Instant>,
}

impl Pace {
    fn new(limit: usize) -> Pace {
        Pace {
            window: limit,
            limit,
            until: None,
        }
    }

    /// True while the peer's wait lasts; forgets a wait that has passed.
    fn paused(&mut self, now: tokio::time::Instant) -> bool {
        if self.until.is_some_and(|t| t <= now) {
            self.until = None;
        }
        self.until.is_some()
    }

    /// Takes in what an attempt to `peer` came to.
    fn came_back(&mut self, result: &Attempt, peer: &str, now: tokio::time::Instant) {
        match result {
            Attempt::Delivered(_) => self.window = (self.window + 1).min(self.limit),
            Attempt::Wait(_, ms) => {
                self.window = (self.window / 2).max(1);
                let ms = (*ms).clamp(0, MAX_PAUSE_MS);
                let until = now + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
                if self.until.is_none_or(|t| t < until) {
                    if self.until.is_none() {
                        tracing::info!(
                            peer,
                            pause_ms = ms,
                            window = self.window,
                            "the peer asked us to wait; pausing deliveries to it"
                        );
                    }
                    self.until = Some(until);
                }
            }
            Attempt::Transient(_) | Attempt::Refused(_) => {}
        }
    }
}

/// The wait a peer asks for in `Retry-After` (whole seconds; the HTTP-date
/// form is not used between nodes and counts as none), in milliseconds and
/// never more than our own longest back-off (`[exchange] retry_cap_secs`):
/// a peer cannot hold a message back until it expires.
pub(super) fn retry_after_ms(headers: &reqwest::header::HeaderMap, config: &Config) -> i64 {
    let asked = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let secs = asked.min(config.exchange.retry_cap_secs.max(1));
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// Room in a delivery response beyond the largest envelope: the receipt,
/// the frames' lengths, a refusal's JSON.
const RESPONSE_MARGIN: usize = 64 * 1024;

/// The body of `res`, read up to `limit` bytes; an error naming the limit
/// if the peer sends more (a peer cannot make us hold an unbounded body).
pub(super) async fn read_capped(
    mut res: reqwest::Response,
    limit: usize,
) -> Result<actix_web::web::Bytes, String> {
    if res.content_length().is_some_and(|n| n > limit as u64) {
        return Err(format!("the response is longer than {limit} bytes"));
    }
    let mut body = actix_web::web::BytesMut::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > limit {
            return Err(format!("the response is longer than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn verify_receipt(
    bytes: &[u8],
    envelope: &[u8],
    peer: &Peer,
    peers: &dyn super::Peers,
    config: &Config,
    replayed_counts: bool,
) -> Result<(), String> {
    let receipt = Receipt::from_bytes(bytes).map_err(|e| e.to_string())?;
    receipt
        .verify(
            envelope,
            &peers.signing_keys(peer.party),
            store::unix(store::now_ms()),
            Duration::from_secs(config.federation.clock_skew_secs),
        )
        .map_err(|e| e.to_string())?;
    if receipt.from != peer.party {
        return Err(format!(
            "the receipt is signed by {}, not {}",
            receipt.from.as_str(),
            peer.party.as_str()
        ));
    }
    match receipt.verdict {
        gsp_federation::Verdict::Accepted => Ok(()),
        gsp_federation::Verdict::Rejected(code) if replayed_counts && code == "replayed" => Ok(()),
        gsp_federation::Verdict::Rejected(code) => {
            Err(format!("the receipt says rejected: {code}"))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::storage::Backend;

    fn response(body: Vec<u8>) -> reqwest::Response {
        reqwest::Response::from(http::Response::new(body))
    }

    #[test]
    fn a_peer_s_retry_after_is_taken_up_to_our_own_cap() {
        let mut config = Config::default();
        config.exchange.retry_cap_secs = 300;
        let wait = |value: Option<&str>| {
            let mut headers = reqwest::header::HeaderMap::new();
            if let Some(v) = value {
                headers.insert(reqwest::header::RETRY_AFTER, v.parse().unwrap());
            }
            retry_after_ms(&headers, &config)
        };
        assert_eq!(wait(Some("1")), 1000);
        assert_eq!(wait(Some(" 30 ")), 30_000);
        // A peer cannot hold our messages back until they expire.
        assert_eq!(wait(Some("999999999999")), 300_000);
        // None, or a form we do not take: no wish.
        assert_eq!(wait(None), 0);
        assert_eq!(wait(Some("Wed, 21 Oct 2026 07:28:00 GMT")), 0);
        assert_eq!(wait(Some("-5")), 0);
    }

    #[test]
    fn a_peer_that_asks_us_to_wait_gets_a_pause_and_a_narrower_window() {
        let start = tokio::time::Instant::now();
        let ms = Duration::from_millis;
        let wait = |ms| Attempt::Wait("429 rate_limited".into(), ms);
        let mut pace = Pace::new(8);
        assert!(!pace.paused(start));
        // A burst refused: halved each time, never below one; paused for
        // the longest wait asked.
        pace.came_back(&wait(1000), "PAK", start);
        assert_eq!((pace.window, pace.paused(start)), (4, true));
        pace.came_back(&wait(500), "PAK", start);
        pace.came_back(&wait(1000), "PAK", start);
        pace.came_back(&wait(1000), "PAK", start);
        assert_eq!(pace.window, 1);
        assert!(pace.paused(start + ms(999)));
        assert!(!pace.paused(start + ms(1000)));
        // Deliveries widen it again, one each, up to the configured most.
        for expected in [2, 3, 4, 5, 6, 7, 8, 8] {
            pace.came_back(&Attempt::Delivered(Vec::new()), "PAK", start);
            assert_eq!(pace.window, expected);
        }
        // Other failures change neither; a peer cannot make us hold claimed
        // messages back for longer than 5 s (they keep their claims).
        pace.came_back(&Attempt::Transient("down".into()), "PAK", start);
        pace.came_back(&Attempt::Refused("bad".into()), "PAK", start);
        assert_eq!((pace.window, pace.paused(start)), (8, false));
        pace.came_back(&wait(3_600_000), "PAK", start);
        assert!(pace.paused(start + ms(4_999)));
        assert!(!pace.paused(start + ms(5_000)));
    }

    /// A peer's listener that takes each connection and drops it at once
    /// (every attempt to it fails), telling the test of each one.
    fn refusing_listener() -> (u16, std::sync::mpsc::Receiver<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                drop(conn);
                if tx.send(()).is_err() {
                    return;
                }
            }
        });
        (port, rx)
    }

    /// The directory as these tests see it: one peer, always usable.
    struct OnePeer(Peer);

    impl super::super::Peers for OnePeer {
        fn usable(&self, _now_ms: i64) -> Result<(), String> {
            Ok(())
        }
        fn party_for_pin(&self, _spki_sha256: &[u8; 32]) -> Option<PartyCode> {
            None
        }
        fn peer(&self, party: PartyCode) -> Option<Peer> {
            (party == self.0.party).then(|| self.0.clone())
        }
        fn signing_keys(&self, _party: PartyCode) -> Vec<gsp_federation::SenderKey> {
            Vec::new()
        }
        fn checkpoint(&self) -> Option<String> {
            None
        }
        fn observe_checkpoint(&self, _from: PartyCode, _checkpoint: &str) {}
    }

    /// Message `seq` to PAK in its own case, pending in the outbox and
    /// claimed by this test's instance.
    fn queued(db: &Database, seq: i64) -> Due {
        use diesel::RunQueryDsl as _;
        let now = store::now_ms();
        let mut conn = db.conn().unwrap();
        diesel::sql_query(format!(
            "INSERT INTO cases (id, role, counterpart, template, template_version, state, \
               priority, subject, policy, created_at, updated_at) \
             VALUES ('case{seq}', 0, 'PAK', 'free-text', 1, 1, 'routine', 's', 1, {now}, {now})"
        ))
        .execute(&mut *conn)
        .unwrap();
        let case = format!("case{seq}");
        let m = crate::storage::testing::BareMessage {
            direction: 1,
            envelope: Some(b"envelope"),
            created_at: now,
            ..crate::storage::testing::BareMessage::new(seq, &case)
        };
        crate::storage::testing::insert_bare_message(&mut conn, &m).unwrap();
        diesel::sql_query(format!(
            "INSERT INTO outbox (message_seq, peer, state, attempts, next_attempt_at, expires_at, \
               claimed_by, claimed_until, created_at) \
             VALUES ({seq}, 'PAK', 0, 0, {now}, {}, 'test-1', {}, {now})",
            now + 3_600_000,
            now + 60_000
        ))
        .execute(&mut *conn)
        .unwrap();
        Due {
            seq,
            peer: "PAK".into(),
            message_id: format!("m{seq}"),
            envelope: b"envelope".to_vec().into(),
            attempts: 0,
        }
    }

    crate::for_each_backend! {
        /// While a write recording the outcome of one delivery waits (here
        /// behind another write that holds the database), a message handed
        /// to the worker goes out all the same; both outcomes are recorded
        /// once the database is free again.
        fn a_message_goes_out_while_the_outcome_before_it_is_written(backend: Backend) {
            let test_db = crate::storage::testing::TestDb::new(backend).unwrap();
            let db = Database::open(&test_db.url, &Config::default().database).unwrap();
            let keys = tempfile::tempdir().unwrap();
            gsp_certs::init(&gsp_certs::InitOptions {
                party: PartyCode::parse("KEN").unwrap(),
                hosts: vec!["127.0.0.1".into()],
                dir: keys.path().join("KEN"),
                force: false,
                tls_days: 30,
                now: gsp_federation::UnixMillis::now(),
            })
            .unwrap();
            let identity = super::super::NodeIdentity::load(&keys.path().join("KEN")).unwrap();
            let (port, connections) = refusing_listener();
            let encryption = gsp_federation::keys::EncryptionKey::generate().unwrap();
            let peer = Peer {
                party: PartyCode::parse("PAK").unwrap(),
                urls: vec![format!("https://127.0.0.1:{port}")],
                tls_pins: vec![[7; 32]],
                encryption_key: (encryption.key_id(), encryption.public_key()),
                templates: Vec::new(),
            };
            let mut config = Config::default();
            config.exchange.in_flight_per_peer = 4;
            config.federation.request_timeout_secs = 5;
            let federation = Federation {
                identity,
                peers: Arc::new(OnePeer(peer)),
            };
            let wake = Arc::new(OutboxWake::default());
            let metrics = Arc::new(crate::metrics::Metrics::default());
            let delivery = Delivery::new(
                db.clone(),
                Arc::new(config),
                Arc::new(federation),
                "test-1".into(),
                metrics.clone(),
                wake.clone(),
            );
            let (first, second) = (queued(&db, 1), queued(&db, 2));
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let wait = Duration::from_secs(20);
                let worker = wake.poke_or_register("PAK").unwrap();
                tokio::spawn(async move { delivery.work_peer("PAK", &worker).await });
                // Its first claim finds nothing due: it offers places.
                let place = || async {
                    let deadline = tokio::time::Instant::now() + wait;
                    loop {
                        if let Some(p) = wake.place_for("PAK", store::now_ms()) {
                            return p;
                        }
                        assert!(tokio::time::Instant::now() < deadline, "no place offered");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                };
                let first_place = place().await;
                // Another write holds the database (on PostgreSQL, the
                // outbox table) until told.
                let (release, held) = std::sync::mpsc::channel::<()>();
                let (holding, started) = tokio::sync::oneshot::channel::<()>();
                let postgres = backend == Backend::Postgres;
                let stalled = db.clone();
                let stall = tokio::spawn(async move {
                    stalled.write(move |c| {
                    if postgres {
                        use diesel::RunQueryDsl as _;
                        diesel::sql_query("LOCK TABLE outbox IN EXCLUSIVE MODE").execute(c)?;
                    }
                    let _ = holding.send(());
                    let _ = held.recv();
                    Ok::<(), crate::storage::StorageError>(())
                    })
                    .await
                });
                started.await.unwrap();
                first_place.hand(first);
                connections.recv_timeout(wait).expect("the first message sent");
                // Its outcome came back and its write has begun (the
                // outcome is counted as the write is sent).
                let deadline = tokio::time::Instant::now() + wait;
                let retried = "gsp_delivery_attempts_total{result=\"retry\"} 1";
                while !metrics.render(&Default::default()).contains(retried) {
                    assert!(tokio::time::Instant::now() < deadline, "no outcome");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                place().await.hand(second);
                let sent = tokio::task::spawn_blocking(move || {
                    let sent = connections.recv_timeout(wait);
                    (sent, connections)
                });
                let (sent, _connections) = sent.await.unwrap();
                release.send(()).unwrap();
                stall.await.unwrap().unwrap();
                sent.expect("the second message sent while the first one's outcome waited");
                // Both outcomes recorded once the database was free.
                let deadline = tokio::time::Instant::now() + wait;
                loop {
                    let rows: Vec<(i32, Option<String>)> = {
                        use crate::storage::schema::outbox;
                        use crate::storage::Direct as _;
                        use diesel::prelude::*;
                        let mut conn = db.conn().unwrap();
                        outbox::table
                            .order(outbox::message_seq)
                            .select((outbox::attempts, outbox::last_error))
                            .load_direct(&mut conn)
                            .unwrap()
                    };
                    if rows.iter().all(|(attempts, error)| *attempts == 1 && error.is_some()) {
                        assert_eq!(rows.len(), 2);
                        break;
                    }
                    assert!(tokio::time::Instant::now() < deadline, "outcomes not recorded: {rows:?}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        }
    }

    #[tokio::test]
    async fn a_response_is_read_up_to_its_limit_and_no_further() {
        let read = read_capped(response(vec![7u8; 1000]), 1000).await.unwrap();
        assert_eq!(read.len(), 1000);
        let refused = read_capped(response(vec![7u8; 1001]), 1000)
            .await
            .unwrap_err();
        assert_eq!(refused, "the response is longer than 1000 bytes");
    }
}
