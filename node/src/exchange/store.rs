//! Cases and messages in the database: composing a request, recording what
//! arrives (with the receipt, in one transaction), answering, approving,
//! closing, and reading cases back for officers.
//!
//! Sending is done in two steps: `prepare_*` checks, validates against the
//! template and seals (the caller provides a [`Sealer`]: our signing key and
//! the recipient's encryption key from the verified directory) without
//! writing anything; `store_*` then stores the envelopes in the transaction
//! that queues them, so what is stored is exactly what is sent and re-sent,
//! and the database's single writer is never held while signing or sealing.

use super::kept::CaseAnswered;
use super::model::{
    AnswerPolicy, CaseRole, CaseState, Direction, MessageKind, MessageState, OutboxState,
};
use super::outbox::{Due, QueueClaim};
use crate::auth::{Role, User};
use crate::config::ExchangeSettings;
use crate::storage::Direct as _;
use crate::storage::schema::{audit, cases, messages, outbox};
use crate::storage::{DbConnection, write_transaction};
use diesel::prelude::*;
use gsp_federation::{
    MessageDraft, Part, PartyCode, SignedHeader, TemplateRef, UnixMillis, ValidatedBody,
};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// Why an exchange operation was refused. Each variant has a stable code.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The input is not acceptable; the message says what and where.
    #[error("{0}")]
    Invalid(String),
    /// No such case or message.
    #[error("{0}")]
    NotFound(String),
    /// The user may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The case is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// A message refers to a case of another Party.
    #[error("case {0} belongs to another Party")]
    CaseMismatch(String),
    /// Sealing failed (no usable key for the recipient, directory expired…).
    #[error("cannot seal the message: {0}")]
    Seal(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
}

impl ExchangeError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ExchangeError::Invalid(_) => "bad_request",
            ExchangeError::NotFound(_) => "not_found",
            ExchangeError::Forbidden(_) => "forbidden",
            ExchangeError::Conflict(_) => "conflict",
            ExchangeError::CaseMismatch(_) => "case_mismatch",
            ExchangeError::Seal(_) => "cannot_seal",
            ExchangeError::Database(_) => "internal",
        }
    }
}

impl From<crate::storage::StorageError> for ExchangeError {
    fn from(e: crate::storage::StorageError) -> Self {
        ExchangeError::Seal(e.to_string())
    }
}

/// Seals messages from this node: our Party code, our signing key, and the
/// recipient's current encryption key from the verified directory.
pub trait Sealer {
    /// This node's Party.
    fn us(&self) -> PartyCode;
    /// Seals `body` as described by `draft` (which names the recipient).
    fn seal(&self, draft: &MessageDraft, body: &[u8]) -> Result<Vec<u8>, String>;
    /// Seals a templated body validated by [`ValidatedBody::new`], without
    /// validating it again.
    fn seal_validated(&self, draft: &MessageDraft, body: &ValidatedBody)
    -> Result<Vec<u8>, String>;
}

/// Where a body refers to an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Slot {
    /// In the common `attachments` list.
    #[default]
    Attachments,
    /// As `codes_attachment` (a request's code list).
    Codes,
    /// As `results_attachment` (an answer's results).
    Results,
}

impl Slot {
    fn field(self) -> &'static str {
        match self {
            Slot::Attachments => "attachments",
            Slot::Codes => "codes_attachment",
            Slot::Results => "results_attachment",
        }
    }
}

/// An attachment to send.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// File name shown to the other Party.
    pub name: String,
    /// Media type, e.g. `text/plain`.
    pub media_type: String,
    /// Content.
    pub bytes: Vec<u8>,
    /// Where the body refers to it.
    pub slot: Slot,
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct ComposeRequest {
    /// The Party asked.
    pub to: PartyCode,
    /// Template name (version 1).
    pub template: String,
    /// The request fields (the template's request schema).
    pub body: Value,
    /// Files to attach.
    pub attachments: Vec<NewAttachment>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unix milliseconds as the envelope's type (times before 1970 become 0).
pub fn unix(ms: i64) -> UnixMillis {
    UnixMillis(u64::try_from(ms).unwrap_or(0))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn audit_row(
    conn: &mut DbConnection,
    case_id: &str,
    at: i64,
    actor: &str,
    action: &str,
    detail: Value,
) -> QueryResult<()> {
    diesel::insert_into(audit::table)
        .values((
            audit::case_id.eq(case_id),
            audit::at.eq(at),
            audit::actor.eq(actor),
            audit::action.eq(action),
            audit::detail.eq(detail.to_string()),
        ))
        .execute_direct(conn)?;
    Ok(())
}

fn actor_of(user: Option<&User>) -> String {
    match user {
        Some(u) => format!("user:{}", u.username),
        None => "node".to_owned(),
    }
}

/// A short line describing a request, for case lists.
fn subject_of(template: &str, body: &Value) -> String {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let s = match template {
        "uid-verification" => {
            let n = body
                .get("codes")
                .and_then(Value::as_array)
                .map(|a| a.len() as u64)
                .or_else(|| body.get("code_count").and_then(Value::as_u64))
                .unwrap_or(0);
            format!("verify {n} code{}", if n == 1 { "" } else { "s" })
        }
        _ => text("subject")
            .or_else(|| text("free_text"))
            .or_else(|| {
                body.pointer("/justification/reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| template.to_owned()),
    };
    let mut out: String = s.chars().take(120).collect();
    if s.chars().count() > 120 {
        out.push('…');
    }
    out
}

/// Inserts a message and, when it is queued, its outbox row.
#[allow(clippy::too_many_arguments)]
fn insert_message(
    conn: &mut DbConnection,
    draft: &MessageDraft,
    kind: MessageKind,
    body: &[u8],
    envelope: Option<&[u8]>,
    state: MessageState,
    in_reply_to: Option<&str>,
    author: Option<i64>,
    now: i64,
    lifetime: Duration,
    claim: Option<&QueueClaim>,
) -> QueryResult<i64> {
    let seq: i64 = crate::on_backend!(conn, |c| diesel::insert_into(messages::table)
        .values((
            messages::message_id.eq(draft.message_id.to_string()),
            messages::from_party.eq(draft.from.as_str()),
            messages::to_party.eq(draft.to.as_str()),
            messages::case_id.eq(draft.case_id.to_string()),
            messages::direction.eq(Direction::Out.to_i16()),
            messages::kind.eq(kind.to_i16()),
            messages::template.eq(draft.template.as_ref().map(|t| t.name.clone())),
            messages::content_type.eq(&draft.content_type),
            messages::body.eq(body),
            messages::body_sha256.eq(sha256_hex(body)),
            messages::envelope.eq(envelope),
            messages::envelope_sha256.eq(envelope.map(sha256_hex)),
            messages::state.eq(state.to_i16()),
            messages::in_reply_to.eq(in_reply_to),
            messages::author.eq(author),
            messages::created_at.eq(now),
        ))
        .returning(messages::seq)
        .get_result(c))?;
    if state == MessageState::Queued {
        queue(conn, seq, draft.to.as_str(), now, lifetime, claim)?;
    }
    Ok(seq)
}

/// Queues message `seq` for `peer`, claimed already when `claim` says so.
fn queue(
    conn: &mut DbConnection,
    seq: i64,
    peer: &str,
    now: i64,
    lifetime: Duration,
    claim: Option<&QueueClaim>,
) -> QueryResult<()> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::message_seq.eq(seq),
            outbox::peer.eq(peer),
            outbox::state.eq(OutboxState::Pending.to_i16()),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(claim.filter(|c| c.in_response).map_or(now, |c| c.until)),
            outbox::expires_at
                .eq(now + i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX / 2)),
            outbox::created_at.eq(now),
            outbox::claimed_by.eq(claim.map(|c| c.instance.as_str())),
            outbox::claimed_until.eq(claim.map(|c| c.until)),
        ))
        .execute_direct(conn)?;
    Ok(())
}

/// The message just queued as `seq` with `claim`, for the worker that holds
/// the claim.
fn handed(seq: i64, sealed: &SealedMessage) -> Due {
    Due {
        seq,
        peer: sealed.draft.to.as_str().to_owned(),
        message_id: sealed.draft.message_id.to_string(),
        envelope: sealed.envelope.clone().into(),
        attempts: 0,
    }
}

fn lifetime(settings: &ExchangeSettings) -> Duration {
    Duration::from_secs(settings.message_lifetime_hours.clamp(1, 720) * 3600)
}

fn draft(
    sealer: &dyn Sealer,
    to: PartyCode,
    case_id: Uuid,
    content_type: &str,
    template: Option<TemplateRef>,
    now: i64,
    settings: &ExchangeSettings,
) -> MessageDraft {
    let mut d = MessageDraft::new(
        sealer.us(),
        to,
        case_id,
        content_type,
        unix(now),
        lifetime(settings),
    );
    d.template = template;
    d
}

/// A message sealed and ready to store: what is stored is exactly what is sent.
struct SealedMessage {
    draft: MessageDraft,
    bytes: Vec<u8>,
    envelope: Vec<u8>,
}

/// Where an attachment is referred to in a body, and the reference.
type AttachmentRef = (Slot, Value);

/// Seals attachments; returns them with their references for the body.
fn seal_attachments(
    sealer: &dyn Sealer,
    settings: &ExchangeSettings,
    to: PartyCode,
    case_id: Uuid,
    attachments: Vec<NewAttachment>,
    now: i64,
) -> Result<(Vec<SealedMessage>, Vec<AttachmentRef>), ExchangeError> {
    let mut sealed = Vec::with_capacity(attachments.len());
    let mut refs = Vec::with_capacity(attachments.len());
    for a in attachments {
        let d = draft(sealer, to, case_id, &a.media_type, None, now, settings);
        let envelope = sealer.seal(&d, &a.bytes).map_err(ExchangeError::Seal)?;
        refs.push((
            a.slot,
            json!({
                "name": a.name,
                "media_type": a.media_type,
                "size": a.bytes.len(),
                "sha256": sha256_hex(&a.bytes),
                "message_id": d.message_id.to_string(),
            }),
        ));
        sealed.push(SealedMessage {
            draft: d,
            bytes: a.bytes,
            envelope,
        });
    }
    Ok((sealed, refs))
}

/// Stores sealed attachments and queues them.
fn store_attachments(
    conn: &mut DbConnection,
    sealed: &[SealedMessage],
    author: Option<i64>,
    now: i64,
    lifetime: Duration,
) -> QueryResult<()> {
    for a in sealed {
        insert_message(
            conn,
            &a.draft,
            MessageKind::Attachment,
            &a.bytes,
            Some(&a.envelope),
            MessageState::Queued,
            None,
            author,
            now,
            lifetime,
            None,
        )?;
    }
    Ok(())
}

/// The JSON message of a template part: `fields` with the attachment
/// references placed, validated against the template, serialized, and the
/// draft of the message to `to` in `case` that carries it.
fn template_message(
    sealer: &dyn Sealer,
    settings: &ExchangeSettings,
    (to, case_id): (PartyCode, Uuid),
    (template, part): (&str, Part),
    mut fields: serde_json::Map<String, Value>,
    refs: Vec<AttachmentRef>,
    now: i64,
) -> Result<(Value, ValidatedBody, MessageDraft), ExchangeError> {
    place_refs(&mut fields, refs)?;
    let body = Value::Object(fields);
    let what = match part {
        Part::Request => "request",
        Part::Answer => "answer",
    };
    let template = TemplateRef {
        name: template.to_owned(),
        version: 1,
        part,
    };
    let validated =
        ValidatedBody::new(template.clone(), &body).map_err(|e| template_error(what, e))?;
    let d = draft(
        sealer,
        to,
        case_id,
        "application/json",
        Some(template),
        now,
        settings,
    );
    Ok((body, validated, d))
}

/// Puts attachment references where the body expects them.
fn place_refs(
    body: &mut serde_json::Map<String, Value>,
    refs: Vec<AttachmentRef>,
) -> Result<(), ExchangeError> {
    for (slot, r) in refs {
        match slot {
            Slot::Attachments => {
                let list = body
                    .entry("attachments")
                    .or_insert_with(|| Value::Array(Vec::new()));
                match list {
                    Value::Array(a) => a.push(r),
                    _ => {
                        return Err(ExchangeError::Invalid(
                            "attachments must be an array".into(),
                        ));
                    }
                }
            }
            one => {
                if body.get(one.field()).is_some_and(|v| !v.is_null()) {
                    return Err(ExchangeError::Invalid(format!(
                        "{} is given twice",
                        one.field()
                    )));
                }
                body.insert(one.field().into(), r);
            }
        }
    }
    Ok(())
}

fn check_attachments(attachments: &[NewAttachment]) -> Result<(), ExchangeError> {
    if attachments.len() > 100 {
        return Err(ExchangeError::Invalid("at most 100 attachments".into()));
    }
    for (i, a) in attachments.iter().enumerate() {
        if a.name.is_empty() || a.name.len() > 255 {
            return Err(ExchangeError::Invalid(format!(
                "attachments[{i}].name: 1 to 255 characters"
            )));
        }
        if gsp_federation::header::check_content_type(&a.media_type).is_err()
            || !a.media_type.contains('/')
        {
            return Err(ExchangeError::Invalid(format!(
                "attachments[{i}].media_type {:?} is not a media type",
                a.media_type
            )));
        }
        if a.bytes.len() > gsp_federation::envelope::MAX_BODY {
            return Err(ExchangeError::Invalid(format!(
                "attachments[{i}] is larger than 64 MiB"
            )));
        }
    }
    Ok(())
}

fn template_error(part: &str, e: gsp_federation::templates::TemplateError) -> ExchangeError {
    ExchangeError::Invalid(format!("the {part} does not follow its template: {e}"))
}

/// A request checked and sealed with its attachments, ready for
/// [`store_request`]: the signing, sealing and schema work is done before,
/// and outside, the database's single writer.
pub struct PreparedRequest {
    case_id: Uuid,
    to: PartyCode,
    template: String,
    priority: String,
    due_date: Option<String>,
    subject: String,
    author: i64,
    actor: String,
    attachments: Vec<SealedMessage>,
    request: SealedMessage,
    now: i64,
    lifetime: Duration,
}

/// Sending a request, first step: checks it, validates it against its
/// template and seals it and its attachments, without touching the database.
pub fn prepare_request(
    sealer: &dyn Sealer,
    settings: &ExchangeSettings,
    user: &User,
    req: ComposeRequest,
    now: i64,
) -> Result<PreparedRequest, ExchangeError> {
    if !user.has(Role::Officer) {
        return Err(ExchangeError::Forbidden(
            "composing a request needs the officer role".into(),
        ));
    }
    if req.to == sealer.us() {
        return Err(ExchangeError::Invalid(
            "a request goes to another Party".into(),
        ));
    }
    if !gsp_federation::templates::is_known(&req.template, 1) {
        return Err(ExchangeError::Invalid(format!(
            "unknown template {:?}",
            req.template
        )));
    }
    check_attachments(&req.attachments)?;
    let Value::Object(mut body) = req.body else {
        return Err(ExchangeError::Invalid(
            "the request body must be a JSON object".into(),
        ));
    };
    let mut attachments = req.attachments;
    // Long code lists travel as an attachment (SPEC: uid-verification).
    if req.template == "uid-verification"
        && let Some(Value::Array(codes)) = body.get("codes")
        && codes.len() > settings.inline_codes_max
    {
        let mut text = String::with_capacity(codes.len() * 20);
        for c in codes {
            let Some(c) = c.as_str() else {
                return Err(ExchangeError::Invalid("codes must be strings".into()));
            };
            text.push_str(c);
            text.push('\n');
        }
        let count = codes.len();
        body.remove("codes");
        body.insert("code_count".into(), json!(count));
        attachments.insert(
            0,
            NewAttachment {
                name: "codes.txt".into(),
                media_type: "text/plain".into(),
                bytes: text.into_bytes(),
                slot: Slot::Codes,
            },
        );
    }
    let case_id = Uuid::now_v7();
    let (attachments, refs) =
        seal_attachments(sealer, settings, req.to, case_id, attachments, now)?;
    let (body, validated, d) = template_message(
        sealer,
        settings,
        (req.to, case_id),
        (&req.template, Part::Request),
        body,
        refs,
        now,
    )?;
    let envelope = sealer
        .seal_validated(&d, &validated)
        .map_err(ExchangeError::Seal)?;
    let bytes = validated.into_bytes();
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(PreparedRequest {
        case_id,
        to: req.to,
        priority: text("priority").unwrap_or_else(|| "routine".into()),
        due_date: text("due_date"),
        subject: subject_of(&req.template, &body),
        template: req.template,
        author: user.id,
        actor: actor_of(Some(user)),
        attachments,
        request: SealedMessage {
            draft: d,
            bytes,
            envelope,
        },
        now,
        lifetime: lifetime(settings),
    })
}

/// Stores a prepared request: the case, its attachments and the request,
/// queued for delivery, in one transaction — the request's outbox row
/// claimed by `claim` (a place with the peer's worker) when it has no
/// attachments. Returns the case id, and the message for the claiming
/// worker if it was claimed.
pub fn store_request(
    conn: &mut DbConnection,
    p: &PreparedRequest,
    claim: Option<&QueueClaim>,
) -> Result<(String, Option<Due>), ExchangeError> {
    let claim = claim.filter(|_| p.attachments.is_empty());
    let case_id = p.case_id.to_string();
    write_transaction(conn, |conn| {
        diesel::insert_into(cases::table)
            .values((
                cases::id.eq(&case_id),
                cases::role.eq(CaseRole::Requester.to_i16()),
                cases::counterpart.eq(p.to.as_str()),
                cases::template.eq(&p.template),
                cases::template_version.eq(1),
                cases::state.eq(CaseState::Queued.to_i16()),
                cases::priority.eq(&p.priority),
                cases::due_date.eq(p.due_date.as_deref()),
                cases::subject.eq(&p.subject),
                cases::policy.eq(AnswerPolicy::Officer.to_i16()),
                cases::created_by.eq(Some(p.author)),
                cases::created_at.eq(p.now),
                cases::updated_at.eq(p.now),
            ))
            .execute_direct(conn)?;
        store_attachments(conn, &p.attachments, Some(p.author), p.now, p.lifetime)?;
        let r = &p.request;
        let seq = insert_message(
            conn,
            &r.draft,
            MessageKind::Request,
            &r.bytes,
            Some(&r.envelope),
            MessageState::Queued,
            None,
            Some(p.author),
            p.now,
            p.lifetime,
            claim,
        )?;
        audit_row(
            conn,
            &case_id,
            p.now,
            &p.actor,
            "request sent",
            json!({"to": p.to.as_str(), "template": p.template, "message_id": r.draft.message_id.to_string(), "attachments": p.attachments.len()}),
        )?;
        Ok((case_id.clone(), claim.map(|_| handed(seq, r))))
    })
}

/// Makes the signed receipt for an envelope, given its SHA-256.
pub type ReceiptSigner<'a> = dyn Fn(&[u8; 32]) -> Result<Vec<u8>, String> + 'a;

/// A message as it arrived, opened and verified by the federation layer.
#[derive(Debug, Clone)]
pub struct Arrived {
    /// The verified signed header.
    pub header: SignedHeader,
    /// The body.
    pub body: Vec<u8>,
    /// The envelope exactly as received (shared with the request, not copied).
    pub envelope: actix_web::web::Bytes,
}

/// What recording an arrival did.
#[derive(Debug, Clone)]
pub struct ArrivalOutcome {
    /// The signed receipt to return (the stored original for a duplicate).
    pub receipt: Vec<u8>,
    /// True when this message had been received before.
    pub duplicate: bool,
    /// The case it belongs to.
    pub case_id: String,
    /// True when the automatic answerer may have new work: a new request
    /// under the automatic policy, or an attachment (it may be the last one
    /// such a request waits for). Not for answers or duplicates, nor for a
    /// request answered in the same transaction.
    pub automatic: bool,
    /// True when the answer prepared on arrival was stored and queued with
    /// the request (the outbox to the sender has a new message).
    pub answered: bool,
    /// That answer, queued already claimed (see [`record_arrival`]'s
    /// `claim`), for the delivery worker that holds the claim.
    pub handed: Option<Due>,
}

/// The receipt we issued for a message received from `from`, if any.
pub fn receipt_of(
    conn: &mut DbConnection,
    from: &str,
    message_id: &str,
) -> QueryResult<Option<Vec<u8>>> {
    issued_receipt(conn, from, message_id, None)
}

/// The receipt we issued for exactly these envelope bytes from `from`, if
/// they were received before (a retry whose first response was lost).
pub fn receipt_for_same_envelope(
    conn: &mut DbConnection,
    from: &str,
    message_id: &str,
    envelope: &[u8],
) -> QueryResult<Option<Vec<u8>>> {
    issued_receipt(conn, from, message_id, Some(envelope))
}

/// Only received messages count: the receipts stored with messages we sent
/// are the other Party's, not ours to hand out.
fn issued_receipt(
    conn: &mut DbConnection,
    from: &str,
    message_id: &str,
    same_envelope: Option<&[u8]>,
) -> QueryResult<Option<Vec<u8>>> {
    let row: Option<(Option<Vec<u8>>, Option<String>)> = messages::table
        .filter(messages::direction.eq(Direction::In.to_i16()))
        .filter(messages::from_party.eq(from))
        .filter(messages::message_id.eq(message_id))
        .select((messages::receipt, messages::envelope_sha256))
        .first_direct(conn)
        .optional()?;
    Ok(row.and_then(|(receipt, sha)| match same_envelope {
        Some(e) if sha.as_deref() != Some(sha256_hex(e).as_str()) => None,
        _ => receipt,
    }))
}

/// A message that arrived, with everything about it that needs no database:
/// its kind, its body parsed once, what a request sets on its case, the
/// digests and the signed receipt. Made before the write, off the database's
/// writer, so the writer's serial work is the database's alone.
#[derive(Debug, Clone)]
pub struct PreparedArrival {
    arrived: Arrived,
    kind: MessageKind,
    /// The JSON body (none for an attachment).
    body: Option<Value>,
    request: Option<RequestFacts>,
    digest: [u8; 32],
    body_sha256: String,
    receipt: Vec<u8>,
}

impl PreparedArrival {
    /// Parses the body of `arrived` (refused as `Invalid` if a request or an
    /// answer is not JSON) and signs its receipt with `sign_receipt`, given
    /// the envelope's SHA-256. The receipt is used only if the message is new.
    pub fn new(
        arrived: Arrived,
        settings: &ExchangeSettings,
        sign_receipt: &ReceiptSigner<'_>,
    ) -> Result<PreparedArrival, ExchangeError> {
        let h = &arrived.header;
        let kind = match h.template.as_ref().map(|t| t.part) {
            Some(Part::Request) => MessageKind::Request,
            Some(Part::Answer) => MessageKind::Answer,
            None => MessageKind::Attachment,
        };
        let body: Option<Value> = match kind {
            MessageKind::Attachment => None,
            _ => Some(
                serde_json::from_slice(&arrived.body)
                    .map_err(|e| ExchangeError::Invalid(format!("body: {e}")))?,
            ),
        };
        let request = match (kind, &body) {
            (MessageKind::Request, Some(b)) => Some(RequestFacts::of(h, b, settings)),
            _ => None,
        };
        let digest: [u8; 32] = gsp_federation::envelope_digest(&arrived.envelope);
        let receipt = sign_receipt(&digest).map_err(ExchangeError::Seal)?;
        let body_sha256 = sha256_hex(&arrived.body);
        Ok(PreparedArrival {
            arrived,
            kind,
            body,
            request,
            digest,
            body_sha256,
            receipt,
        })
    }

    /// The verified signed header.
    pub fn header(&self) -> &SignedHeader {
        &self.arrived.header
    }

    /// What kind of message it is.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The body as parsed, for a request or an answer.
    pub fn json_body(&self) -> Option<&Value> {
        self.body.as_ref()
    }
}

/// Records a message that arrived, prepared with its receipt
/// ([`PreparedArrival::new`]), in one transaction. A message seen before
/// gets its original receipt and changes nothing.
///
/// `answer` is the automatic answer to a new request, prepared while it
/// arrived ([`prepare_answer_on_arrival`]): stored and queued in the same
/// transaction. Should storing it fail, the request is recorded all the same
/// and left to the automatic answerer's pass. With `claim`, that answer is
/// queued already claimed and returned in [`ArrivalOutcome::handed`].
pub fn record_arrival(
    conn: &mut DbConnection,
    prepared: &PreparedArrival,
    answer: Option<&PreparedAnswer>,
    claim: Option<&QueueClaim>,
    now: i64,
) -> Result<ArrivalOutcome, ExchangeError> {
    // Two messages of one new case (or two copies of one message) may arrive
    // at once; on PostgreSQL the second insert then fails on the key the
    // first committed. Trying again sees that row and takes the normal path.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match arrival_transaction(conn, prepared, answer, claim, now) {
            Err(ExchangeError::Database(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ))) if attempt < ARRIVAL_ATTEMPTS => continue,
            outcome => return outcome,
        }
    }
}

/// How often an arrival is tried when it races another on a unique key.
const ARRIVAL_ATTEMPTS: u32 = 3;

/// One try at recording an arrival, in one transaction.
fn arrival_transaction(
    conn: &mut DbConnection,
    prepared: &PreparedArrival,
    answer: Option<&PreparedAnswer>,
    claim: Option<&QueueClaim>,
    now: i64,
) -> Result<ArrivalOutcome, ExchangeError> {
    let PreparedArrival {
        arrived,
        kind,
        body,
        request,
        digest,
        body_sha256,
        receipt,
    } = prepared;
    let kind = *kind;
    let h = &arrived.header;
    let from = h.routing.from.as_str().to_owned();
    let to = h.routing.to.as_str().to_owned();
    let message_id = h.routing.message_id.to_string();
    let case_id = h.case_id.to_string();
    write_transaction(conn, |conn| {
        if let Some(receipt) = receipt_of(conn, &from, &message_id)? {
            return Ok(ArrivalOutcome {
                receipt,
                duplicate: true,
                case_id: case_id.clone(),
                automatic: false,
                answered: false,
                handed: None,
            });
        }
        let existing: Option<(i16, String, i16)> = cases::table
            .find(&case_id)
            .select((cases::role, cases::counterpart, cases::state))
            .first_direct(conn)
            .optional()?;
        let mut in_reply_to: Option<String> = None;
        match (&existing, kind) {
            (Some((_, counterpart, _)), _) if *counterpart != from => {
                return Err(ExchangeError::CaseMismatch(case_id.clone()));
            }
            (Some((role, _, state)), MessageKind::Request) => {
                // Only a placeholder made by attachments that came first.
                if CaseRole::from_i16(*role) != Some(CaseRole::Responder)
                    || *state != CaseState::Draft.to_i16()
                {
                    return Err(ExchangeError::Conflict(format!(
                        "case {case_id} already has a request"
                    )));
                }
            }
            (Some((role, _, _)), MessageKind::Answer) => {
                if CaseRole::from_i16(*role) != Some(CaseRole::Requester) {
                    return Err(ExchangeError::Conflict(format!(
                        "case {case_id}: an answer to a request we did not send"
                    )));
                }
                in_reply_to = body
                    .as_ref()
                    .and_then(|b| b.get("in_reply_to"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            (Some(_), MessageKind::Attachment) => {}
            (None, MessageKind::Answer) => {
                return Err(ExchangeError::NotFound(format!(
                    "case {case_id} is not known here"
                )));
            }
            (None, MessageKind::Request) => {
                // A new case from its request: one insert with the final
                // values (not a placeholder updated at once, which touched
                // every index of the table twice).
                if let Some(r) = &request {
                    diesel::insert_into(cases::table)
                        .values((
                            cases::id.eq(&case_id),
                            cases::role.eq(CaseRole::Responder.to_i16()),
                            cases::counterpart.eq(&from),
                            cases::created_at.eq(now),
                            r.values(now),
                        ))
                        .execute_direct(conn)?;
                }
            }
            (None, _) => {
                // A new case from an attachment that came before the request.
                diesel::insert_into(cases::table)
                    .values((
                        cases::id.eq(&case_id),
                        cases::role.eq(CaseRole::Responder.to_i16()),
                        cases::counterpart.eq(&from),
                        cases::template.eq(""),
                        cases::template_version.eq(0),
                        cases::state.eq(CaseState::Draft.to_i16()),
                        cases::priority.eq("routine"),
                        cases::subject.eq("(waiting for the request)"),
                        cases::policy.eq(AnswerPolicy::Officer.to_i16()),
                        cases::created_at.eq(now),
                        cases::updated_at.eq(now),
                    ))
                    .execute_direct(conn)?;
            }
        }
        diesel::insert_into(messages::table)
            .values((
                messages::message_id.eq(&message_id),
                messages::from_party.eq(&from),
                messages::to_party.eq(&to),
                messages::case_id.eq(&case_id),
                messages::direction.eq(Direction::In.to_i16()),
                messages::kind.eq(kind.to_i16()),
                messages::template.eq(h.template.as_ref().map(|t| t.name.clone())),
                messages::content_type.eq(&h.content_type),
                messages::body.eq(&arrived.body),
                messages::body_sha256.eq(body_sha256),
                messages::envelope.eq(Some(&arrived.envelope[..])),
                messages::envelope_sha256.eq(Some(hex::encode(digest))),
                messages::receipt.eq(Some(receipt)),
                messages::state.eq(MessageState::Received.to_i16()),
                messages::in_reply_to.eq(in_reply_to.as_deref()),
                messages::created_at.eq(i64::try_from(h.routing.created.0).unwrap_or(i64::MAX)),
                messages::delivered_at.eq(Some(now)),
            ))
            .execute_direct(conn)?;
        let peer = format!("peer:{from}");
        let mut automatic = false;
        let mut answered = false;
        let mut handed = None;
        match (kind, &request) {
            (MessageKind::Request, Some(r)) => {
                automatic = r.policy == AnswerPolicy::Automatic;
                if existing.is_some() {
                    // The placeholder its attachments made.
                    diesel::update(cases::table.find(&case_id))
                        .set(r.values(now))
                        .execute_direct(conn)?;
                }
                audit_row(
                    conn,
                    &case_id,
                    now,
                    &peer,
                    "request received",
                    json!({"message_id": message_id, "template": r.template, "policy": r.policy}),
                )?;
                if let Some(p) = answer.filter(|p| automatic && p.case_id == case_id) {
                    // In its own savepoint: a failure leaves the request to
                    // the automatic answerer's pass.
                    match store_answer_claimed(conn, p, claim) {
                        Ok((_, due)) => {
                            answered = true;
                            automatic = false;
                            handed = due;
                        }
                        Err(e) => {
                            tracing::warn!(%case_id, error = %e, "answer prepared on arrival not stored; left to the automatic answerer")
                        }
                    }
                }
            }
            (MessageKind::Answer, _) => {
                let body = body.as_ref().unwrap_or(&Value::Null);
                let missing = missing_attachments(conn, &case_id, &from, body)?;
                if missing == 0 {
                    apply_answer(conn, &case_id, &peer, &message_id, body, now)?;
                } else {
                    // The case is answered when its results are here too.
                    audit_row(
                        conn,
                        &case_id,
                        now,
                        &peer,
                        "answer received, waiting for its attachments",
                        json!({"message_id": message_id, "attachments_missing": missing}),
                    )?;
                }
            }
            _ => {
                automatic = true;
                audit_row(
                    conn,
                    &case_id,
                    now,
                    &peer,
                    "attachment received",
                    json!({"message_id": message_id, "media_type": h.content_type, "size": arrived.body.len()}),
                )?;
                if let Some((role, _, _)) = &existing
                    && CaseRole::from_i16(*role) == Some(CaseRole::Requester)
                {
                    answer_completed(conn, &case_id, &from, &peer, now)?;
                }
            }
        }
        Ok(ArrivalOutcome {
            receipt: receipt.clone(),
            duplicate: false,
            case_id: case_id.clone(),
            automatic,
            answered,
            handed,
        })
    })
}

/// The attachments a body refers to (`codes_attachment`,
/// `results_attachment`, `attachments`): message id and SHA-256 of each.
fn attachment_refs(body: &Value) -> Vec<(&str, &str)> {
    let single = ["codes_attachment", "results_attachment"]
        .into_iter()
        .filter_map(|k| body.get(k));
    let listed = body
        .get("attachments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    single
        .chain(listed)
        .filter_map(|r| Some((r.get("message_id")?.as_str()?, r.get("sha256")?.as_str()?)))
        .collect()
}

/// How many of the attachments `body` refers to have not arrived from
/// `from` in case `case_id` (with the content the reference names).
fn missing_attachments(
    conn: &mut DbConnection,
    case_id: &str,
    from: &str,
    body: &Value,
) -> QueryResult<usize> {
    let mut missing = 0;
    for (message_id, sha256) in attachment_refs(body) {
        let here: i64 = messages::table
            .filter(messages::from_party.eq(from))
            .filter(messages::message_id.eq(message_id))
            .filter(messages::case_id.eq(case_id))
            .filter(messages::kind.eq(MessageKind::Attachment.to_i16()))
            .filter(messages::body_sha256.eq(sha256))
            .count()
            .get_result_direct(conn)?;
        if here == 0 {
            missing += 1;
        }
    }
    Ok(missing)
}

/// Marks the case answered with the outcome of answer `message_id`.
fn apply_answer(
    conn: &mut DbConnection,
    case_id: &str,
    actor: &str,
    message_id: &str,
    body: &Value,
    now: i64,
) -> QueryResult<()> {
    let outcome = body
        .get("outcome")
        .and_then(Value::as_str)
        .unwrap_or("full")
        .to_owned();
    let state = answered_state(&outcome);
    CaseAnswered {
        case: case_id,
        state: state.to_i16(),
        outcome: &outcome,
        at: now,
    }
    .execute_direct(conn)?;
    audit_row(
        conn,
        case_id,
        now,
        actor,
        "answer received",
        json!({"message_id": message_id, "outcome": outcome}),
    )
}

/// After an attachment arrived in a case we asked in: if an answer received
/// earlier was waiting for it (and for nothing else), the case is answered
/// now.
fn answer_completed(
    conn: &mut DbConnection,
    case_id: &str,
    from: &str,
    actor: &str,
    now: i64,
) -> QueryResult<()> {
    let (outcome, state): (Option<String>, i16) = cases::table
        .find(case_id)
        .select((cases::outcome, cases::state))
        .first_direct(conn)?;
    if outcome.is_some() || state == CaseState::Closed.to_i16() {
        return Ok(()); // answered already
    }
    let answer: Option<(String, Vec<u8>)> = messages::table
        .filter(messages::case_id.eq(case_id))
        .filter(messages::kind.eq(MessageKind::Answer.to_i16()))
        .filter(messages::direction.eq(Direction::In.to_i16()))
        .order(messages::seq.desc())
        .select((messages::message_id, messages::body))
        .first_direct(conn)
        .optional()?;
    let Some((message_id, bytes)) = answer else {
        return Ok(());
    };
    let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(());
    };
    if missing_attachments(conn, case_id, from, &body)? == 0 {
        apply_answer(conn, case_id, actor, &message_id, &body, now)?;
    }
    Ok(())
}

/// What an arriving request sets on its case.
#[derive(Debug, Clone)]
struct RequestFacts {
    template: String,
    version: i32,
    policy: AnswerPolicy,
    priority: String,
    due_date: Option<String>,
    subject: String,
}

impl RequestFacts {
    fn of(h: &SignedHeader, body: &Value, settings: &ExchangeSettings) -> RequestFacts {
        let template = h
            .template
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        let policy = settings.policy_for(&template);
        RequestFacts {
            version: i32::from(h.template.as_ref().map(|t| t.version).unwrap_or(1)),
            policy,
            priority: body
                .get("priority")
                .and_then(Value::as_str)
                .unwrap_or("routine")
                .to_owned(),
            due_date: body
                .get("due_date")
                .and_then(Value::as_str)
                .map(str::to_owned),
            subject: subject_of(&template, body),
            template,
        }
    }

    /// The case columns it sets, as of `now`.
    #[allow(clippy::type_complexity)]
    fn values(
        &self,
        now: i64,
    ) -> (
        diesel::dsl::Eq<cases::template, &str>,
        diesel::dsl::Eq<cases::template_version, i32>,
        diesel::dsl::Eq<cases::state, i16>,
        diesel::dsl::Eq<cases::priority, &str>,
        diesel::dsl::Eq<cases::due_date, Option<&str>>,
        diesel::dsl::Eq<cases::subject, &str>,
        diesel::dsl::Eq<cases::policy, i16>,
        diesel::dsl::Eq<cases::updated_at, i64>,
    ) {
        (
            cases::template.eq(self.template.as_str()),
            cases::template_version.eq(self.version),
            cases::state.eq(CaseState::Delivered.to_i16()),
            cases::priority.eq(self.priority.as_str()),
            cases::due_date.eq(self.due_date.as_deref()),
            cases::subject.eq(self.subject.as_str()),
            cases::policy.eq(self.policy.to_i16()),
            cases::updated_at.eq(now),
        )
    }
}

/// The id of a case's request message.
fn request_id_of(conn: &mut DbConnection, case_id: &str) -> Result<String, ExchangeError> {
    messages::table
        .filter(messages::case_id.eq(case_id))
        .filter(messages::kind.eq(MessageKind::Request.to_i16()))
        .select(messages::message_id)
        .first_direct(conn)
        .optional()?
        .ok_or_else(|| ExchangeError::NotFound(format!("case {case_id} has no request yet")))
}

/// Case facts needed to act on it.
struct CaseFacts {
    role: CaseRole,
    counterpart: PartyCode,
    template: String,
    state: CaseState,
    policy: AnswerPolicy,
}

fn case_facts(conn: &mut DbConnection, case_id: &str) -> Result<CaseFacts, ExchangeError> {
    let row: Option<(i16, String, String, i16, i16)> = cases::table
        .find(case_id)
        .select((
            cases::role,
            cases::counterpart,
            cases::template,
            cases::state,
            cases::policy,
        ))
        .first_direct(conn)
        .optional()?;
    let (role, counterpart, template, state, policy) =
        row.ok_or_else(|| ExchangeError::NotFound(format!("no case {case_id}")))?;
    Ok(CaseFacts {
        role: CaseRole::from_i16(role).unwrap_or(CaseRole::Responder),
        counterpart: PartyCode::parse(&counterpart)
            .map_err(|e| ExchangeError::Invalid(format!("stored counterpart: {e}")))?,
        template,
        state: CaseState::from_i16(state).unwrap_or(CaseState::Draft),
        policy: AnswerPolicy::from_i16(policy).unwrap_or(AnswerPolicy::Officer),
    })
}

fn state_for_outcome(body: &Value) -> (CaseState, String) {
    let outcome = body
        .get("outcome")
        .and_then(Value::as_str)
        .unwrap_or("full")
        .to_owned();
    (answered_state(&outcome), outcome)
}

/// The state of a case answered with `outcome` (`full`, `partial` or
/// `declined`; anything else counts as full).
pub(crate) fn answered_state(outcome: &str) -> CaseState {
    match outcome {
        "partial" => CaseState::AnsweredPartial,
        "declined" => CaseState::Declined,
        _ => CaseState::AnsweredFull,
    }
}

/// An answer checked and (unless it waits for approval) sealed with its
/// attachments, ready for [`store_answer`]: the signing, sealing and schema
/// work is done before, and outside, the database's single writer.
pub struct PreparedAnswer {
    case_id: String,
    author: Option<i64>,
    actor: String,
    two_person: bool,
    request_id: String,
    attachments: Vec<SealedMessage>,
    answer: SealedMessage,
    state: CaseState,
    outcome: String,
    now: i64,
    lifetime: Duration,
}

impl PreparedAnswer {
    /// The case answered.
    pub fn case_id(&self) -> &str {
        &self.case_id
    }

    /// The Party the answer goes to.
    pub fn to(&self) -> PartyCode {
        self.answer.draft.to
    }
}

/// Whether the case can be answered now, by an officer (`by_officer`) or
/// automatically.
fn check_answerable(
    case: &CaseFacts,
    case_id: &str,
    by_officer: bool,
) -> Result<(), ExchangeError> {
    if case.role != CaseRole::Responder {
        return Err(ExchangeError::Conflict(
            "only a request received can be answered".into(),
        ));
    }
    if !matches!(case.state, CaseState::Delivered | CaseState::Read) {
        return Err(ExchangeError::Conflict(format!(
            "case {case_id} is {}; it cannot be answered now",
            case.state
        )));
    }
    if !by_officer && case.policy != AnswerPolicy::Automatic {
        return Err(ExchangeError::Forbidden(
            "this template is answered by officers".into(),
        ));
    }
    Ok(())
}

/// Answering a request we received, first step (`user` is `None` for an
/// automatic answer): checks the answer against the case (read only),
/// validates it against the template and seals it with its attachments.
/// Under the two-person policy an officer's answer is sealed only when it is
/// approved. [`store_answer`] checks the case again when it stores it.
#[allow(clippy::too_many_arguments)]
pub fn prepare_answer(
    conn: &mut DbConnection,
    sealer: &dyn Sealer,
    settings: &ExchangeSettings,
    user: Option<&User>,
    case_id: &str,
    body: Value,
    attachments: Vec<NewAttachment>,
    now: i64,
) -> Result<PreparedAnswer, ExchangeError> {
    if let Some(u) = user
        && !u.has(Role::Officer)
    {
        return Err(ExchangeError::Forbidden(
            "answering needs the officer role".into(),
        ));
    }
    check_attachments(&attachments)?;
    let case = case_facts(conn, case_id)?;
    check_answerable(&case, case_id, user.is_some())?;
    let request_id = request_id_of(conn, case_id)?;
    let to = AnswerTo {
        case_id,
        counterpart: case.counterpart,
        template: &case.template,
        policy: case.policy,
        request_id,
    };
    seal_answer(sealer, settings, user, to, body, attachments, now)
}

/// The automatic answer to a request that is arriving now and is not stored
/// yet (`header` is its verified header): sealed like [`prepare_answer`]'s,
/// for [`record_arrival`] to store in the transaction that records the
/// request. The caller has checked that the request's template is under the
/// automatic policy.
pub fn prepare_answer_on_arrival(
    sealer: &dyn Sealer,
    settings: &ExchangeSettings,
    header: &SignedHeader,
    body: Value,
    attachments: Vec<NewAttachment>,
    now: i64,
) -> Result<PreparedAnswer, ExchangeError> {
    check_attachments(&attachments)?;
    let template = header
        .template
        .as_ref()
        .filter(|t| t.part == Part::Request)
        .ok_or_else(|| ExchangeError::Invalid("only a request can be answered".into()))?;
    let case_id = header.case_id.to_string();
    let to = AnswerTo {
        case_id: &case_id,
        counterpart: header.routing.from,
        template: &template.name,
        policy: AnswerPolicy::Automatic,
        request_id: header.routing.message_id.to_string(),
    };
    seal_answer(sealer, settings, None, to, body, attachments, now)
}

/// The case an answer is for, as [`seal_answer`] needs it.
struct AnswerTo<'a> {
    case_id: &'a str,
    counterpart: PartyCode,
    template: &'a str,
    policy: AnswerPolicy,
    request_id: String,
}

/// Validates an answer against its template and seals it with its
/// attachments (an officer's answer under the two-person policy is sealed
/// when it is approved).
fn seal_answer(
    sealer: &dyn Sealer,
    settings: &ExchangeSettings,
    user: Option<&User>,
    to: AnswerTo<'_>,
    body: Value,
    attachments: Vec<NewAttachment>,
    now: i64,
) -> Result<PreparedAnswer, ExchangeError> {
    let AnswerTo {
        case_id,
        counterpart,
        template,
        policy,
        request_id,
    } = to;
    let Value::Object(mut fields) = body else {
        return Err(ExchangeError::Invalid(
            "the answer body must be a JSON object".into(),
        ));
    };
    fields.insert("in_reply_to".into(), json!(request_id));
    let case_uuid = Uuid::parse_str(case_id)
        .map_err(|_| ExchangeError::Invalid(format!("case id {case_id:?}")))?;
    let two_person = policy == AnswerPolicy::TwoPerson && user.is_some();
    if two_person && !attachments.is_empty() {
        return Err(ExchangeError::Invalid(
            "under the two-person policy, attach files after approval".into(),
        ));
    }
    let (sealed, refs) =
        seal_attachments(sealer, settings, counterpart, case_uuid, attachments, now)?;
    let (body, validated, d) = template_message(
        sealer,
        settings,
        (counterpart, case_uuid),
        (template, Part::Answer),
        fields,
        refs,
        now,
    )?;
    // An answer awaiting approval is sealed when it is approved.
    let envelope = if two_person {
        Vec::new()
    } else {
        sealer
            .seal_validated(&d, &validated)
            .map_err(ExchangeError::Seal)?
    };
    let bytes = validated.into_bytes();
    let (state, outcome) = state_for_outcome(&body);
    Ok(PreparedAnswer {
        case_id: case_id.to_owned(),
        author: user.map(|u| u.id),
        actor: actor_of(user),
        two_person,
        request_id,
        attachments: sealed,
        answer: SealedMessage {
            draft: d,
            bytes,
            envelope,
        },
        state,
        outcome,
        now,
        lifetime: lifetime(settings),
    })
}

/// Stores a prepared answer in one transaction, after checking that the case
/// can still be answered (another officer or instance may have answered it
/// meanwhile). Returns the answer's message id.
pub fn store_answer(conn: &mut DbConnection, p: &PreparedAnswer) -> Result<String, ExchangeError> {
    store_answer_claimed(conn, p, None).map(|(message_id, _)| message_id)
}

/// [`store_answer`], with the answer's outbox row claimed by `claim` when
/// it is sent now and has no attachments; returns the message for the
/// claiming worker too.
pub fn store_answer_claimed(
    conn: &mut DbConnection,
    p: &PreparedAnswer,
    claim: Option<&QueueClaim>,
) -> Result<(String, Option<Due>), ExchangeError> {
    let claim = claim.filter(|_| p.attachments.is_empty() && !p.two_person);
    let case_id = p.case_id.as_str();
    write_transaction(conn, |conn| {
        let case = case_facts(conn, case_id)?;
        check_answerable(&case, case_id, p.author.is_some())?;
        if (case.policy == AnswerPolicy::TwoPerson && p.author.is_some()) != p.two_person {
            return Err(ExchangeError::Conflict(format!(
                "case {case_id}: its answer policy changed"
            )));
        }
        let a = &p.answer;
        let message_id = a.draft.message_id.to_string();
        let mut due = None;
        if p.two_person {
            insert_message(
                conn,
                &a.draft,
                MessageKind::Answer,
                &a.bytes,
                None,
                MessageState::AwaitingApproval,
                Some(&p.request_id),
                p.author,
                p.now,
                p.lifetime,
                None,
            )?;
            diesel::update(cases::table.find(case_id))
                .set((
                    cases::state.eq(CaseState::AwaitingApproval.to_i16()),
                    cases::updated_at.eq(p.now),
                ))
                .execute_direct(conn)?;
            audit_row(
                conn,
                case_id,
                p.now,
                &p.actor,
                "answer written, awaiting approval",
                json!({"message_id": message_id, "outcome": p.outcome}),
            )?;
        } else {
            store_attachments(conn, &p.attachments, p.author, p.now, p.lifetime)?;
            let seq = insert_message(
                conn,
                &a.draft,
                MessageKind::Answer,
                &a.bytes,
                Some(&a.envelope),
                MessageState::Queued,
                Some(&p.request_id),
                p.author,
                p.now,
                p.lifetime,
                claim,
            )?;
            due = claim.map(|_| handed(seq, a));
            CaseAnswered {
                case: case_id,
                state: p.state.to_i16(),
                outcome: &p.outcome,
                at: p.now,
            }
            .execute_direct(conn)?;
            audit_row(
                conn,
                case_id,
                p.now,
                &p.actor,
                "answer sent",
                json!({"message_id": message_id, "outcome": p.outcome}),
            )?;
        }
        Ok((message_id, due))
    })
}

/// Leaves a request that the automatic policy cannot answer to officers:
/// its policy becomes `officer` and its history says why. Returns false (and
/// changes nothing) when the case is no longer waiting for an automatic answer.
pub fn automatic_answer_impossible(
    conn: &mut DbConnection,
    case_id: &str,
    why: &str,
    now: i64,
) -> Result<bool, ExchangeError> {
    write_transaction(conn, |conn| {
        let updated = diesel::update(
            cases::table
                .find(case_id)
                .filter(cases::policy.eq(AnswerPolicy::Automatic.to_i16()))
                .filter(cases::state.eq(CaseState::Delivered.to_i16())),
        )
        .set((
            cases::policy.eq(AnswerPolicy::Officer.to_i16()),
            cases::updated_at.eq(now),
        ))
        .execute_direct(conn)?;
        if updated == 0 {
            return Ok(false);
        }
        audit_row(
            conn,
            case_id,
            now,
            "node",
            "automatic answer impossible; left for an officer",
            json!({"reason": why}),
        )?;
        Ok(true)
    })
}

/// Approves the answer waiting in a case (two-person policy): the approver
/// must hold the approver role and must not be the answer's author.
pub fn approve(
    conn: &mut DbConnection,
    sealer: &dyn Sealer,
    settings: &ExchangeSettings,
    approver: &User,
    case_id: &str,
    now: i64,
) -> Result<String, ExchangeError> {
    if !approver.has(Role::Approver) {
        return Err(ExchangeError::Forbidden(
            "approving needs the approver role".into(),
        ));
    }
    write_transaction(conn, |conn| {
        let case = case_facts(conn, case_id)?;
        if case.state != CaseState::AwaitingApproval {
            return Err(ExchangeError::Conflict(format!(
                "case {case_id} has no answer awaiting approval"
            )));
        }
        let row: (i64, String, Option<i64>, Vec<u8>, i64) = messages::table
            .filter(messages::case_id.eq(case_id))
            .filter(messages::state.eq(MessageState::AwaitingApproval.to_i16()))
            .select((
                messages::seq,
                messages::message_id,
                messages::author,
                messages::body,
                messages::created_at,
            ))
            .first_direct(conn)
            .optional()?
            .ok_or_else(|| {
                ExchangeError::NotFound(format!("case {case_id} has no answer awaiting approval"))
            })?;
        let (seq, message_id, author, bytes, created) = row;
        if author == Some(approver.id) {
            return Err(ExchangeError::Forbidden(
                "the answer's author cannot also approve it".into(),
            ));
        }
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ExchangeError::Invalid(format!("stored answer: {e}")))?;
        let mut d = MessageDraft::new(
            sealer.us(),
            case.counterpart,
            Uuid::parse_str(case_id).map_err(|_| ExchangeError::Invalid("case id".into()))?,
            "application/json",
            unix(now),
            lifetime(settings),
        );
        d.message_id = Uuid::parse_str(&message_id)
            .map_err(|_| ExchangeError::Invalid("message id".into()))?;
        // The message keeps its id; it is dated when sealed, i.e. now.
        let _ = created;
        d.template = Some(TemplateRef {
            name: case.template.clone(),
            version: 1,
            part: Part::Answer,
        });
        let envelope = sealer.seal(&d, &bytes).map_err(ExchangeError::Seal)?;
        diesel::update(messages::table.find(seq))
            .set((
                messages::envelope.eq(Some(&envelope)),
                messages::envelope_sha256.eq(Some(sha256_hex(&envelope))),
                messages::state.eq(MessageState::Queued.to_i16()),
                messages::approved_by.eq(Some(approver.id)),
            ))
            .execute_direct(conn)?;
        queue(
            conn,
            seq,
            case.counterpart.as_str(),
            now,
            lifetime(settings),
            None,
        )?;
        let (state, outcome) = state_for_outcome(&body);
        diesel::update(cases::table.find(case_id))
            .set((
                cases::state.eq(state.to_i16()),
                cases::outcome.eq(Some(&outcome)),
                cases::updated_at.eq(now),
            ))
            .execute_direct(conn)?;
        audit_row(
            conn,
            case_id,
            now,
            &actor_of(Some(approver)),
            "answer approved and sent",
            json!({"message_id": message_id}),
        )?;
        Ok(message_id)
    })
}

/// Marks a received request as read the first time an officer opens it.
pub fn mark_read(
    conn: &mut DbConnection,
    user: &User,
    case_id: &str,
    now: i64,
) -> Result<(), ExchangeError> {
    let changed = diesel::update(
        cases::table
            .filter(cases::id.eq(case_id))
            .filter(cases::role.eq(CaseRole::Responder.to_i16()))
            .filter(cases::state.eq(CaseState::Delivered.to_i16())),
    )
    .set((
        cases::state.eq(CaseState::Read.to_i16()),
        cases::updated_at.eq(now),
    ))
    .execute_direct(conn)?;
    if changed > 0 {
        audit_row(
            conn,
            case_id,
            now,
            &actor_of(Some(user)),
            "opened",
            json!({}),
        )?;
    }
    Ok(())
}

/// Closes a case.
pub fn close(
    conn: &mut DbConnection,
    user: &User,
    case_id: &str,
    now: i64,
) -> Result<(), ExchangeError> {
    if !user.has(Role::Officer) {
        return Err(ExchangeError::Forbidden(
            "closing a case needs the officer role".into(),
        ));
    }
    write_transaction(conn, |conn| {
        let case = case_facts(conn, case_id)?;
        if case.state == CaseState::Closed {
            return Err(ExchangeError::Conflict(format!(
                "case {case_id} is closed already"
            )));
        }
        diesel::update(cases::table.find(case_id))
            .set((
                cases::state.eq(CaseState::Closed.to_i16()),
                cases::updated_at.eq(now),
            ))
            .execute_direct(conn)?;
        audit_row(
            conn,
            case_id,
            now,
            &actor_of(Some(user)),
            "closed",
            json!({"previous_state": case.state}),
        )?;
        Ok(())
    })
}

/// A case in a list.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    /// Case id.
    pub id: String,
    /// Our side.
    pub role: CaseRole,
    /// The other Party.
    pub counterpart: String,
    /// Template.
    pub template: String,
    /// State.
    pub state: CaseState,
    /// Priority.
    pub priority: String,
    /// Due date.
    pub due_date: Option<String>,
    /// Short description.
    pub subject: String,
    /// Answer policy (for requests received).
    pub policy: AnswerPolicy,
    /// Outcome once answered.
    pub outcome: Option<String>,
    /// Why it failed, if it did.
    pub failure: Option<String>,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

type CaseRow = (
    String,
    i16,
    String,
    String,
    i16,
    String,
    Option<String>,
    String,
    i16,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

fn summary(
    (
        id,
        role,
        counterpart,
        template,
        state,
        priority,
        due_date,
        subject,
        policy,
        outcome,
        failure,
        created_at,
        updated_at,
    ): CaseRow,
) -> CaseSummary {
    CaseSummary {
        id,
        role: CaseRole::from_i16(role).unwrap_or(CaseRole::Responder),
        counterpart,
        template,
        state: CaseState::from_i16(state).unwrap_or(CaseState::Draft),
        priority,
        due_date,
        subject,
        policy: AnswerPolicy::from_i16(policy).unwrap_or(AnswerPolicy::Officer),
        outcome,
        failure,
        created_at,
        updated_at,
    }
}

macro_rules! case_columns {
    () => {
        (
            cases::id,
            cases::role,
            cases::counterpart,
            cases::template,
            cases::state,
            cases::priority,
            cases::due_date,
            cases::subject,
            cases::policy,
            cases::outcome,
            cases::failure,
            cases::created_at,
            cases::updated_at,
        )
    };
}

/// Filters for a case list.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFilter {
    /// Only this state.
    pub state: Option<CaseState>,
    /// Only this role (`requester`: we asked; `responder`: we were asked).
    pub role: Option<CaseRole>,
    /// Only this template.
    pub template: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Cases, most recently changed first.
pub fn list_cases(conn: &mut DbConnection, filter: &CaseFilter) -> QueryResult<Vec<CaseSummary>> {
    let mut q = cases::table.select(case_columns!()).into_boxed();
    if let Some(s) = filter.state {
        q = q.filter(cases::state.eq(s.to_i16()));
    }
    if let Some(r) = filter.role {
        q = q.filter(cases::role.eq(r.to_i16()));
    }
    if let Some(t) = &filter.template {
        q = q.filter(cases::template.eq(t.clone()));
    }
    let rows: Vec<CaseRow> = q
        .filter(cases::template.ne(""))
        .order(cases::updated_at.desc())
        .limit(filter.limit.unwrap_or(100).clamp(1, 1000))
        .load(conn)?;
    Ok(rows.into_iter().map(summary).collect())
}

/// One message of a case, for officers.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// Message id.
    pub message_id: String,
    /// Sender.
    pub from: String,
    /// Recipient.
    pub to: String,
    /// `out` or `in`.
    pub direction: &'static str,
    /// Kind.
    pub kind: MessageKind,
    /// Template, for requests and answers.
    pub template: Option<String>,
    /// Media type.
    pub content_type: String,
    /// Body size in bytes.
    pub size: usize,
    /// SHA-256 of the body.
    pub body_sha256: String,
    /// The body, for JSON messages up to 16 MiB (attachments are downloaded).
    pub body: Option<Value>,
    /// State.
    pub state: MessageState,
    /// Which message it answers.
    pub in_reply_to: Option<String>,
    /// Signed receipt (base64), the evidence of delivery.
    pub receipt: Option<String>,
    /// SHA-256 of the envelope as sent or received.
    pub envelope_sha256: Option<String>,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Delivered or received (Unix ms).
    pub delivered_at: Option<i64>,
}

/// One audit entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// When (Unix ms).
    pub at: i64,
    /// Who: `user:NAME`, `node` or `peer:CODE`.
    pub actor: String,
    /// What.
    pub action: String,
    /// Details.
    pub detail: Value,
}

/// A case with its messages and history.
#[derive(Debug, Clone, Serialize)]
pub struct CaseDetail {
    /// The case.
    #[serde(flatten)]
    pub case: CaseSummary,
    /// Its messages, oldest first.
    pub messages: Vec<MessageView>,
    /// Its audit trail, oldest first.
    pub history: Vec<AuditEntry>,
}

type MessageRow = (
    String,
    String,
    String,
    i16,
    i16,
    Option<String>,
    String,
    Option<Vec<u8>>,
    i64,
    String,
    i16,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
    i64,
    Option<i64>,
);

/// Largest JSON body shown inline in a case's detail, in bytes.
const SHOWN_BODY_MAX: usize = 16 << 20;

/// A case with messages and history; `None` if there is no such case.
pub fn case_detail(conn: &mut DbConnection, case_id: &str) -> QueryResult<Option<CaseDetail>> {
    use base64::Engine as _;
    let row: Option<CaseRow> = cases::table
        .find(case_id)
        .select(case_columns!())
        .first_direct(conn)
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let rows: Vec<MessageRow> = messages::table
        .filter(messages::case_id.eq(case_id))
        .order(messages::seq)
        .select((
            messages::message_id,
            messages::from_party,
            messages::to_party,
            messages::direction,
            messages::kind,
            messages::template,
            messages::content_type,
            // Only JSON bodies are shown: an attachment of many megabytes is
            // not read for its size.
            diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Binary>>(&format!(
                "CASE WHEN content_type = 'application/json' AND length(body) <= {SHOWN_BODY_MAX} THEN body END"
            )),
            diesel::dsl::sql::<diesel::sql_types::BigInt>("CAST(length(body) AS BIGINT)"),
            messages::body_sha256,
            messages::state,
            messages::in_reply_to,
            messages::receipt,
            messages::envelope_sha256,
            messages::created_at,
            messages::delivered_at,
        ))
        .load_direct(conn)?;
    let messages = rows
        .into_iter()
        .map(
            |(
                message_id,
                from,
                to,
                direction,
                kind,
                template,
                content_type,
                body,
                size,
                body_sha256,
                state,
                in_reply_to,
                receipt,
                envelope_sha256,
                created_at,
                delivered_at,
            )| {
                let shown = body.and_then(|b| serde_json::from_slice(&b).ok());
                MessageView {
                    message_id,
                    from,
                    to,
                    direction: Direction::from_i16(direction)
                        .unwrap_or(Direction::Out)
                        .as_str(),
                    kind: MessageKind::from_i16(kind).unwrap_or(MessageKind::Attachment),
                    template,
                    content_type,
                    size: usize::try_from(size).unwrap_or(0),
                    body_sha256,
                    body: shown,
                    state: MessageState::from_i16(state).unwrap_or(MessageState::Received),
                    in_reply_to,
                    receipt: receipt.map(|r| base64::engine::general_purpose::STANDARD.encode(r)),
                    envelope_sha256,
                    created_at,
                    delivered_at,
                }
            },
        )
        .collect();
    let history: Vec<(i64, String, String, String)> = audit::table
        .filter(audit::case_id.eq(case_id))
        .order((audit::at, audit::id))
        .select((audit::at, audit::actor, audit::action, audit::detail))
        .load_direct(conn)?;
    Ok(Some(CaseDetail {
        case: summary(row),
        messages,
        history: history
            .into_iter()
            .map(|(at, actor, action, detail)| AuditEntry {
                at,
                actor,
                action,
                detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
            })
            .collect(),
    }))
}

/// A message's body (for downloading attachments and results): content type and bytes.
pub fn message_body(
    conn: &mut DbConnection,
    case_id: &str,
    message_id: &str,
) -> QueryResult<Option<(String, Vec<u8>)>> {
    messages::table
        .filter(messages::case_id.eq(case_id))
        .filter(messages::message_id.eq(message_id))
        .select((messages::content_type, messages::body))
        .first_direct(conn)
        .optional()
}
