//! The federation listener: `POST /federation/v1/messages` over mutual TLS
//! 1.3 (SPEC.md §15).
//!
//! Only a peer whose TLS certificate pin is in the verified directory gets a
//! TLS session at all; the handler then checks that this Party is the
//! envelope's `from`, opens the envelope (every check of SPEC.md §7), and
//! records the message, its case and the signed receipt in one database
//! transaction before answering 200 with the receipt. A small request under
//! the automatic policy is answered in that same transaction (its answer
//! looked up and sealed after opening, see `exchange::auto`), and that
//! answer goes back in the response when the sender asks for it (SPEC.md
//! §15.6; its receipt comes back through `receipt_batch`). Rejections answer
//! with the SPEC's error code and a signed rejection receipt, and store
//! nothing.

use super::Federation;
use super::arrival;
use super::peer_limits::{self, PeerLimits, Permit};
use super::peers::Peers;
use crate::config::Config;
use crate::exchange::auto;
use crate::exchange::store::{self, PreparedAnswer, PreparedArrival};
use crate::storage::Database;
use crate::tls::{self, PinSet};
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use gsp_federation::frames::{self, FRAMES_TYPE};
use gsp_federation::{PartyCode, Receipt, Verdict};
use std::sync::Arc;
use uuid::Uuid;

/// Media type of an envelope.
pub const ENVELOPE_TYPE: &str = "application/gsp-envelope";
/// Media type of a receipt.
pub const RECEIPT_TYPE: &str = "application/gsp-receipt";
/// Request header by which a sender takes the answer made on arrival in the
/// response (SPEC §15.6), with the value [`ACCEPT`].
pub const ANSWER_IN_RESPONSE_HEADER: &str = "GSP-Answer-In-Response";
/// The value of [`ANSWER_IN_RESPONSE_HEADER`].
pub const ACCEPT: &str = "accept";
/// Header carrying the sender's latest verified directory checkpoint.
pub const CHECKPOINT_HEADER: &str = "GSP-Directory-Checkpoint";

/// What the handler needs.
#[derive(Clone)]
pub struct FederationState {
    /// The node's database.
    pub db: Database,
    /// The node's configuration.
    pub config: Arc<Config>,
    /// Our identity and the directory.
    pub federation: Arc<Federation>,
    /// Wakes the automatic answerer when a request arrives.
    pub arrivals: Arc<tokio::sync::Notify>,
    /// Wakes delivery when an answer made on arrival is queued.
    pub outbox: Arc<super::wake::OutboxWake>,
    /// Events and master data shared by the answers made on arrival.
    pub lookups: Arc<crate::data::query::bulk::LookupCaches>,
    /// Counters.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Each calling Party's share of this listener.
    pub limits: Arc<PeerLimits>,
}

/// The directory's pins as the TLS server's client-certificate check.
#[derive(Clone)]
pub struct DirectoryPins(pub Arc<dyn Peers>);

impl std::fmt::Debug for DirectoryPins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectoryPins")
    }
}

impl PinSet for DirectoryPins {
    fn contains(&self, spki_sha256: &[u8; 32]) -> bool {
        self.0.party_for_pin(spki_sha256).is_some()
    }
}

/// Why a caller without a Party's pinned certificate is refused.
pub(super) const NOT_A_PARTY: &str = "the TLS client certificate is not a Party's in the directory";

/// The Party whose pinned TLS certificate the caller presented.
pub(super) fn calling_party(fed: &Federation, req: &HttpRequest) -> Option<PartyCode> {
    tls::peer_spki(req).and_then(|pin| fed.peers.party_for_pin(&pin))
}

fn now_ms() -> i64 {
    store::now_ms()
}

/// A rejection: HTTP status, SPEC code, sentence, and a signed receipt when
/// the sender is known.
fn reject(
    state: &FederationState,
    status: StatusCode,
    code: &str,
    message: &str,
    receipt_for: Option<(&[u8], Uuid, PartyCode)>,
) -> HttpResponse {
    let receipt = receipt_for.map(|(envelope, id, to)| {
        let r = Receipt::sign(
            gsp_federation::envelope_digest(envelope),
            id,
            state.federation.identity.party,
            to,
            store::unix(now_ms()),
            Verdict::Rejected(code.to_owned()),
            &state.federation.identity.signing_key,
        );
        base64::engine::general_purpose::STANDARD.encode(r.to_bytes())
    });
    tracing::warn!(code, message, "federation message refused");
    state.metrics.refused(code);
    let mut res = HttpResponse::build(status);
    if let Some(c) = state.federation.peers.checkpoint() {
        res.insert_header((CHECKPOINT_HEADER, c));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.insert_header(("Retry-After", "30"));
    }
    res.json(serde_json::json!({"code": code, "message": message, "receipt": receipt}))
}

/// Counts a request of `peer` with a body of `bytes` against its share of
/// this listener (see `peer_limits`), or gives the `429 rate_limited`
/// response, with no receipt: nothing of the request was read.
pub(super) fn admit(
    state: &FederationState,
    peer: PartyCode,
    bytes: usize,
) -> Result<Permit, Box<HttpResponse>> {
    state
        .limits
        .admit(peer, bytes, std::time::Instant::now())
        .map_err(|refusal| {
            // Counted, not logged at warn: a flood would flood the log too.
            tracing::debug!(peer = peer.as_str(), why = %refusal.0, "federation request over its Party's share");
            state.metrics.refused("rate_limited");
            let mut res = HttpResponse::TooManyRequests();
            res.insert_header(("Retry-After", peer_limits::RETRY_AFTER_SECS.to_string()));
            Box::new(res.json(
                serde_json::json!({"code": "rate_limited", "message": refusal.0, "receipt": null}),
            ))
        })
}

/// The body length a request declares, or `otherwise` (the endpoint's
/// largest) when it declares none or more.
pub(super) fn declared_or(req: &HttpRequest, otherwise: usize) -> usize {
    crate::offload::declared_size(req).min(otherwise)
}

fn status_for(code: &str) -> StatusCode {
    match code {
        "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "unsupported_media_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unauthenticated_peer" => StatusCode::FORBIDDEN,
        "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        "internal_error" | "directory_stale" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// A request header's value, if it is text.
fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Whether a `Content-Type` value names the media type `ty` (parameters
/// after `;` ignored).
pub(super) fn media_is(content_type: Option<&str>, ty: &str) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        == Some(ty)
}

/// Takes note of the directory checkpoint the calling Party sent (SPEC §15.5).
pub(super) fn observe_checkpoint(fed: &Federation, peer: PartyCode, req: &HttpRequest) {
    if let Some(c) = header(req, CHECKPOINT_HEADER) {
        fed.peers.observe_checkpoint(peer, c);
    }
}

/// Reads the request body up to `limit` bytes; `None` when it is longer
/// (refused before reading further when Content-Length says so).
pub(super) async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Option<web::Bytes>, String> {
    use futures_util::StreamExt as _;
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Ok(None);
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// Receives one envelope.
pub async fn receive(
    state: web::Data<FederationState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let now = now_ms();
    let fed = &state.federation;
    if let Err(why) = fed.peers.usable(now) {
        return reject(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "directory_stale",
            &why,
            None,
        );
    }
    if !media_is(header(&req, "content-type"), ENVELOPE_TYPE) {
        return reject(
            &state,
            status_for("unsupported_media_type"),
            "unsupported_media_type",
            &format!("send {ENVELOPE_TYPE}"),
            None,
        );
    }
    let Some(peer) = calling_party(fed, &req) else {
        return reject(
            &state,
            StatusCode::FORBIDDEN,
            "unauthenticated_peer",
            NOT_A_PARTY,
            None,
        );
    };
    let max = state.config.federation.max_envelope_bytes;
    let _permit = match admit(&state, peer, declared_or(&req, max)) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let body = match read_limited(&req, payload, max).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            return reject(
                &state,
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!("the envelope is longer than this node's limit of {max} bytes"),
                None,
            );
        }
        Err(e) => {
            return reject(
                &state,
                StatusCode::BAD_REQUEST,
                "malformed_envelope",
                &format!("reading the request body: {e}"),
                None,
            );
        }
    };
    let routing = match gsp_federation::parse(&body, max) {
        Ok(p) => p.routing,
        Err(e) => {
            return reject(
                &state,
                status_for(e.code()),
                e.code(),
                &e.to_string(),
                Some((&body, Uuid::nil(), peer)),
            );
        }
    };
    if routing.from != peer {
        return reject(
            &state,
            StatusCode::FORBIDDEN,
            "unauthenticated_peer",
            &format!(
                "the TLS certificate is {}'s but the envelope says it is from {}",
                peer.as_str(),
                routing.from.as_str()
            ),
            Some((&body, routing.message_id, peer)),
        );
    }
    observe_checkpoint(fed, peer, &req);

    // Open (CPU work) off the async threads, then record it through the
    // database's writer (one commit shared with other writes arriving now).
    let st = state.clone();
    let envelope = body.clone(); // Bytes: a reference-counted handle, not a copy
    let opened = tokio::task::spawn_blocking(move || -> Result<Opened, (String, String)> {
        let fed = &st.federation;
        let mut conn = st
            .db
            .conn()
            .map_err(|e| ("internal_error".to_owned(), e.to_string()))?;
        // The same bytes again: the original receipt, nothing decrypted.
        if let Some(receipt) = store::receipt_for_same_envelope(
            &mut conn,
            routing.from.as_str(),
            &routing.message_id.to_string(),
            &envelope,
        )
        .map_err(|e| ("internal_error".to_owned(), e.to_string()))?
        {
            st.metrics.received(true);
            return Ok(Opened::Again(receipt));
        }
        drop(conn);
        let prepared = arrival::open_and_prepare(fed, &st.config, envelope, now)?;
        // A request under the automatic policy: its answer drafted and sealed
        // now, to be stored with it.
        let answer = auto::answer_on_arrival(
            &st.db,
            &st.lookups,
            &fed.sealer(),
            &st.config.exchange,
            &prepared,
            now_ms(),
        );
        Ok(Opened::New(Box::new(prepared), answer.map(Box::new)))
    })
    .await;
    // The sender takes an answer made now in this response (SPEC §15.6).
    let in_response = state.config.exchange.answers_in_response
        && header(&req, ANSWER_IN_RESPONSE_HEADER)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(ACCEPT));
    let outcome = match opened {
        Ok(Ok(Opened::New(arrived, answer))) => {
            record(&state, *arrived, answer, in_response, now).await
        }
        Ok(Ok(Opened::Again(receipt))) => Ok(Recorded {
            receipt,
            automatic: false,
            answered: false,
            handed: false,
            answer: None,
        }),
        Ok(Err(refused)) => Err(refused),
        Err(e) => Err(("internal_error".to_owned(), e.to_string())),
    };
    match outcome {
        Ok(Recorded {
            receipt,
            automatic,
            answered,
            handed,
            answer,
        }) => {
            if automatic {
                state.arrivals.notify_one();
            }
            if answered {
                state.metrics.automatic_answers(1);
                if !handed {
                    state.outbox.queued_for(peer.as_str());
                }
            }
            let mut res = HttpResponse::Ok();
            if let Some(c) = fed.peers.checkpoint() {
                res.insert_header((CHECKPOINT_HEADER, c));
            }
            match answer {
                Some(envelope) => {
                    state.metrics.answers_in_response(1);
                    res.content_type(FRAMES_TYPE);
                    res.body(frames::encode(&[&receipt[..], &envelope[..]]))
                }
                None => {
                    res.content_type(RECEIPT_TYPE);
                    res.body(receipt)
                }
            }
        }
        Err((code, message)) => {
            let receipt =
                (code != "internal_error").then_some((&body[..], routing.message_id, peer));
            reject(&state, status_for(&code), &code, &message, receipt)
        }
    }
}

/// An envelope after the checks that need no database writes.
enum Opened {
    /// Opened and verified, not seen before; with the automatic answer
    /// prepared for it, if any.
    New(Box<PreparedArrival>, Option<Box<PreparedAnswer>>),
    /// The very bytes received before: the original receipt.
    Again(Vec<u8>),
}

/// What recording an arrival leaves the handler to do.
struct Recorded {
    /// The signed receipt to return.
    receipt: Vec<u8>,
    /// The automatic answerer has a new request.
    automatic: bool,
    /// The request was answered in the same transaction: its answer waits
    /// in the outbox to the sender.
    answered: bool,
    /// That answer went straight to the delivery worker or into this
    /// response (no wake needed).
    handed: bool,
    /// The answer's envelope, for the response (SPEC §15.6).
    answer: Option<web::Bytes>,
}

/// Records an opened message with its signed receipt (and the answer
/// prepared on its arrival, if any), or gives the SPEC code and sentence of
/// a refusal.
async fn record(
    state: &FederationState,
    arrived: PreparedArrival,
    answer: Option<Box<PreparedAnswer>>,
    in_response: bool,
    now: i64,
) -> Result<Recorded, (String, String)> {
    let routing = arrived.header().routing;
    let (from, message_id) = (routing.from, routing.message_id);
    // An answer made on arrival goes back to the sender: in this response
    // when the sender takes it there, else straight to the delivery worker
    // if it has a place (see `wake`).
    let (place, claim) = match answer {
        None => (None, None),
        Some(_) if in_response => (None, state.outbox.response_claim(now_ms())),
        Some(_) => {
            let place = state.outbox.place_for(from.as_str(), now_ms());
            let claim = place.as_ref().map(|p| p.claim().clone());
            (place, claim)
        }
    };
    let outcome = state
        .db
        .write_rerunnable(move |conn| {
            store::record_arrival(conn, &arrived, answer.as_deref(), claim.as_ref(), now)
        })
        .await;
    match outcome {
        Ok(o) => {
            state.metrics.received(o.duplicate);
            if o.duplicate {
                tracing::info!(from = from.as_str(), id = %message_id, "duplicate message; original receipt returned");
            } else {
                tracing::info!(from = from.as_str(), id = %message_id, case = %o.case_id, "message received");
            }
            // Handed over or in the response, the answer needs no wake; a
            // place not used goes back when dropped.
            let (handed, answer) = match (place, o.handed) {
                (Some(place), Some(due)) => {
                    place.hand(due);
                    (true, None)
                }
                (None, Some(due)) => (true, Some(due.envelope)),
                _ => (false, None),
            };
            Ok(Recorded {
                receipt: o.receipt,
                automatic: o.automatic,
                answered: o.answered,
                handed,
                answer,
            })
        }
        Err(e) => Err(arrival::refusal(e)),
    }
}

/// `GET /federation/v1/receipts/{message_id}` (SPEC §15.3): the receipt this
/// node issued for a message it accepted from the calling Party — never for
/// another Party's messages.
pub async fn receipt_again(
    state: web::Data<FederationState>,
    req: HttpRequest,
    message_id: web::Path<String>,
) -> HttpResponse {
    let fed = &state.federation;
    let json = |status: StatusCode, code: &str, message: String| {
        HttpResponse::build(status).json(serde_json::json!({"code": code, "message": message}))
    };
    let Some(peer) = calling_party(fed, &req) else {
        return json(
            StatusCode::FORBIDDEN,
            "unauthenticated_peer",
            NOT_A_PARTY.into(),
        );
    };
    let _permit = match admit(&state, peer, 0) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let Ok(id) = Uuid::parse_str(&message_id) else {
        return json(
            StatusCode::BAD_REQUEST,
            "malformed_header",
            format!("{:?} is not a message id (UUID)", message_id.as_str()),
        );
    };
    let found = state
        .db
        .run(move |c| {
            store::receipt_of(c, peer.as_str(), &id.to_string())
                .map_err(crate::storage::StorageError::from)
        })
        .await;
    match found {
        Ok(Some(receipt)) => {
            let mut res = HttpResponse::Ok();
            res.content_type(RECEIPT_TYPE);
            if let Some(c) = fed.peers.checkpoint() {
                res.insert_header((CHECKPOINT_HEADER, c));
            }
            res.body(receipt)
        }
        Ok(None) => json(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no message {id} from {} was accepted here", peer.as_str()),
        ),
        Err(e) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal_error",
            e.to_string(),
        ),
    }
}

/// Registers the federation routes. The message handler enforces the
/// envelope limit itself while reading, so that it can answer with SPEC codes.
pub fn configure(cfg: &mut web::ServiceConfig, state: FederationState) {
    cfg.app_data(web::Data::new(state))
        .route("/federation/v1/messages", web::post().to(receive))
        .route(
            "/federation/v1/receipts/{message_id}",
            web::get().to(receipt_again),
        )
        .route(
            "/federation/v1/receipts",
            web::post().to(super::receipt_batch::receive),
        );
}

/// Binds the federation listener (mutual TLS 1.3, clients pinned to the
/// directory) and returns the running server.
pub fn bind(
    state: FederationState,
) -> Result<(actix_web::dev::Server, std::net::SocketAddr), String> {
    let listen = state
        .config
        .federation
        .listen
        .ok_or("no [federation] listen address configured")?;
    let pins: Arc<dyn PinSet> = Arc::new(DirectoryPins(state.federation.peers.clone()));
    let blocking = state.config.federation.blocking_threads.max(1);
    let tls = tls::server_config(
        &state.federation.identity.tls,
        tls::ClientAuth::Required(pins),
    )
    .map_err(|e| e.to_string())?;
    let server = HttpServer::new(move || {
        let state = state.clone();
        App::new()
            .wrap(
                actix_web::middleware::Logger::new("%a \"%r\" %s %b %Dms")
                    .log_target("gsp::federation"),
            )
            .configure(move |cfg| configure(cfg, state))
    })
    .on_connect(|io, ext| {
        type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
        if let Some(stream) = io.downcast_ref::<Tls>() {
            // Without this, small request/response pairs wait on Nagle's algorithm.
            let _ = stream.get_ref().0.set_nodelay(true);
        }
        tls::capture_peer_spki(io, ext);
    })
    // As the local API: a few threads per worker, not tokio's 512.
    .worker_max_blocking_threads(blocking)
    .bind_rustls_0_23(listen, tls)
    .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = server.addrs().first().copied().unwrap_or(listen);
    Ok((server.run(), addr))
}
