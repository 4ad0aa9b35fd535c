//! The message envelope: `seal` (sign, then encrypt) and `open` (every check,
//! in the order SPEC.md §7 gives).
//!
//! Layout (SPEC.md §6), all integers big-endian:
//!
//! ```text
//! magic "GSPE" (4) | version (2) | header_len (2) | routing header
//! | enc (32) | ct_len (4) | HPKE ciphertext of:
//!     signature (64) | signed_header_len (2) | signed header | body
//! ```
//!
//! The HPKE associated data is everything before `enc`, so relays can read
//! the routing header and nobody can alter it. This module does no I/O and
//! keeps no state; replay detection is delegated to a [`SeenIds`].

use crate::encoding::{DecodeError, Reader};
use crate::error::{OpenError, SealError};
use crate::header::{PROTOCOL_VERSION, RoutingHeader, SignedHeader, check_content_type};
use crate::keys::{
    EncryptionPublicKey, HpkeKem, KeyId, RecipientKey, SenderKey, SigningKey, domain,
};
use crate::party::PartyCode;
use crate::replay::SeenIds;
use crate::templates::{self, TemplateRef, ValidatedBody};
use crate::timestamp::UnixMillis;
use hpke::aead::AeadTag;
use hpke::inout::InOutBuf;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// The HPKE AEAD of protocol version 1: AES-256-GCM (SPEC.md §2.2 says
/// why), with ring's implementation in `hpke`'s AEAD slot for speed.
pub type HpkeAead = crate::aead_ring::RingAes256Gcm;
/// The HPKE KDF of protocol version 1.
pub type HpkeKdf = hpke::kdf::HkdfSha256;

/// The four bytes every envelope starts with: ASCII `GSPE`.
pub const MAGIC: [u8; 4] = *b"GSPE";
/// Length of the HPKE encapsulated key (`Nenc` of DHKEM(X25519)).
pub const ENC_LEN: usize = 32;
/// Length of the AEAD tag (`Nt`).
pub const TAG_LEN: usize = 16;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Largest routing header.
pub const MAX_ROUTING_HEADER: usize = 1024;
/// Largest signed header.
pub const MAX_SIGNED_HEADER: usize = 1024;
/// Largest body: 64 MiB.
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// Largest envelope: the largest body plus 4 KiB for headers and framing.
/// Receivers may set a lower limit ([`OpenContext::max_envelope`]).
pub const MAX_ENVELOPE: usize = MAX_BODY + 4096;
/// The largest clock skew allowance `open` applies (SPEC.md §7.1): a larger
/// value in [`OpenContext::skew`] is reduced to this.
pub const MAX_SKEW: Duration = Duration::from_secs(3600);
/// Body bytes copied and hashed at a time while sealing (fits in L2 cache).
const HASH_CHUNK: usize = 64 * 1024;
/// Byte offset of the routing header.
const HEADER_OFFSET: usize = 8;

/// Everything about a message except its body and the keys: what the sender
/// fills in before sealing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDraft {
    /// Unique per sender; a UUIDv7.
    pub message_id: Uuid,
    /// The sending Party (us).
    pub from: PartyCode,
    /// The receiving Party.
    pub to: PartyCode,
    /// When the message was made.
    pub created: UnixMillis,
    /// When it stops being acceptable (at most 30 days after `created`).
    pub expires: UnixMillis,
    /// The case (thread) it belongs to.
    pub case_id: Uuid,
    /// The template and part the body follows, if any.
    pub template: Option<TemplateRef>,
    /// The body's media type.
    pub content_type: String,
}

impl MessageDraft {
    /// A draft made now (by the caller's clock) with a fresh UUIDv7 id that
    /// expires after `lifetime`.
    pub fn new(
        from: PartyCode,
        to: PartyCode,
        case_id: Uuid,
        content_type: impl Into<String>,
        now: UnixMillis,
        lifetime: Duration,
    ) -> Self {
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            now.0 / 1000,
            u32::try_from((now.0 % 1000) * 1_000_000).unwrap_or(0),
        );
        Self {
            message_id: Uuid::new_v7(ts),
            from,
            to,
            created: now,
            expires: now.saturating_add(lifetime),
            case_id,
            template: None,
            content_type: content_type.into(),
        }
    }
}

/// Seals `body` from `signer` to `recipient`: builds the signed header, signs
/// it, and encrypts signature, header and body with HPKE.
///
/// The body is validated against its template when the draft names one and
/// the content type is `application/json`.
pub fn seal(
    draft: &MessageDraft,
    body: &[u8],
    signer: &SigningKey,
    recipient: &EncryptionPublicKey,
) -> Result<Vec<u8>, SealError> {
    let ikm_e = random_ikm()?;
    seal_with_ikm(
        draft,
        body,
        signer,
        recipient,
        &ikm_e,
        &DangerTamper::default(),
    )
}

/// Seals a body this crate validated and serialized ([`ValidatedBody`]) without
/// parsing and validating it again: the draft must name the same template and
/// say `application/json`. Otherwise as [`seal`].
pub fn seal_validated(
    draft: &MessageDraft,
    body: &ValidatedBody,
    signer: &SigningKey,
    recipient: &EncryptionPublicKey,
) -> Result<Vec<u8>, SealError> {
    if draft.template.as_ref() != Some(body.template()) {
        return Err(SealError::InvalidDraft(
            "the draft names another template than the one the body was validated against".into(),
        ));
    }
    if draft.content_type != templates::JSON_CONTENT_TYPE {
        return Err(SealError::InvalidDraft(
            templates::TemplateError::NotJsonContentType(draft.content_type.clone()).to_string(),
        ));
    }
    let ikm_e = random_ikm()?;
    let validated = DangerTamper {
        skip_body_validation: true,
        ..DangerTamper::default()
    };
    seal_with_ikm(draft, body.bytes(), signer, recipient, &ikm_e, &validated)
}

/// A change made to the signed header or signature after signing.
#[doc(hidden)]
pub type AfterSigning = dyn Fn(&mut SignedHeader, &mut [u8; 64]);

/// Deliberate deviations from a correct seal, for building rejection test
/// vectors. Every field defaults to "no deviation".
#[doc(hidden)]
#[derive(Default)]
pub struct DangerTamper<'a> {
    /// Changes the signed header before it is signed.
    pub before_signing: Option<&'a dyn Fn(&mut SignedHeader)>,
    /// Changes the signed header or signature after signing.
    pub after_signing: Option<&'a AfterSigning>,
    /// Skips template validation of the body.
    pub skip_body_validation: bool,
}

/// Seals with a caller-chosen HPKE ephemeral input keying material and,
/// optionally, deliberate defects.
///
/// **Danger**: reusing `ikm_e` for two messages reuses the AEAD key and
/// destroys confidentiality. This exists only so the test-vector generator
/// can produce reproducible envelopes (and deliberately broken ones); nodes
/// call [`seal`].
#[doc(hidden)]
pub fn danger_seal_with_ikm(
    draft: &MessageDraft,
    body: &[u8],
    signer: &SigningKey,
    recipient: &EncryptionPublicKey,
    ikm_e: &[u8; 32],
    tamper: &DangerTamper<'_>,
) -> Result<Vec<u8>, SealError> {
    seal_with_ikm(draft, body, signer, recipient, ikm_e, tamper)
}

fn seal_with_ikm(
    draft: &MessageDraft,
    body: &[u8],
    signer: &SigningKey,
    recipient: &EncryptionPublicKey,
    ikm_e: &[u8; 32],
    tamper: &DangerTamper<'_>,
) -> Result<Vec<u8>, SealError> {
    if body.len() > MAX_BODY {
        return Err(SealError::TooLarge {
            size: body.len(),
            limit: MAX_BODY,
        });
    }
    check_content_type(&draft.content_type).map_err(SealError::InvalidDraft)?;
    if let Some(t) = &draft.template {
        t.check().map_err(SealError::InvalidDraft)?;
    }
    if !tamper.skip_body_validation {
        templates::validate_body(draft.template.as_ref(), &draft.content_type, body)
            .map_err(SealError::InvalidBody)?;
    }

    let routing = RoutingHeader {
        message_id: draft.message_id,
        from: draft.from,
        to: draft.to,
        recipient_key_id: recipient.key_id(),
        created: draft.created,
        expires: draft.expires,
    };
    routing.check().map_err(SealError::InvalidDraft)?;
    let mut signed = SignedHeader {
        version: PROTOCOL_VERSION,
        routing,
        sender_key_id: signer.key_id(),
        case_id: draft.case_id,
        template: draft.template.clone(),
        content_type: draft.content_type.clone(),
        body_len: body.len() as u64,
        body_sha256: [0; 32],
    };
    let routing_bytes = routing.to_bytes();
    let header_len = u16::try_from(routing_bytes.len())
        .map_err(|_| SealError::InvalidDraft("routing header too long".into()))?;
    let pk = recipient
        .hpke_public()
        .map_err(|_| SealError::BadRecipientKey)?;
    let mut rng = IkmRng {
        ikm: *ikm_e,
        pos: 0,
    };
    let (enc, mut ctx) = hpke::setup_sender_with_rng::<HpkeAead, HpkeKdf, HpkeKem>(
        &OpModeS::Base,
        &pk,
        domain::HPKE_INFO,
        &mut rng,
    )
    .map_err(|_| SealError::Crypto("HPKE encapsulation failed"))?;

    // One allocation of the final size. The body is copied into it once, and
    // hashed chunk by chunk while each chunk is still in cache, so the body
    // is read from memory once for both; the signature and signed header are
    // then written into the space reserved in front of it, and everything is
    // encrypted in place.
    let aad_len = HEADER_OFFSET + routing_bytes.len();
    let reserved = SIGNATURE_LEN + 2 + signed.to_bytes().len();
    let mut out = Vec::with_capacity(aad_len + ENC_LEN + 4 + reserved + body.len() + TAG_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    out.extend_from_slice(&header_len.to_be_bytes());
    out.extend_from_slice(&routing_bytes);
    out.extend_from_slice(&enc.to_bytes());
    let ct_len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let pt_start = out.len();
    out.resize(pt_start + reserved, 0);
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    for chunk in body.chunks(HASH_CHUNK) {
        out.extend_from_slice(chunk);
        hasher.update(chunk);
    }
    signed.body_sha256.copy_from_slice(hasher.finish().as_ref());

    if let Some(before) = tamper.before_signing {
        before(&mut signed);
    }
    let mut signed_bytes = signed.to_bytes();
    let mut signature = signer.sign(domain::MESSAGE_SIGNATURE, &signed_bytes);
    if let Some(after) = tamper.after_signing {
        after(&mut signed, &mut signature);
        signed_bytes = signed.to_bytes();
    }
    let signed_len = u16::try_from(signed_bytes.len())
        .ok()
        .filter(|l| usize::from(*l) <= MAX_SIGNED_HEADER)
        .ok_or_else(|| SealError::InvalidDraft("signed header longer than 1024 bytes".into()))?;
    let mut front = Vec::with_capacity(SIGNATURE_LEN + 2 + signed_bytes.len());
    front.extend_from_slice(&signature);
    front.extend_from_slice(&signed_len.to_be_bytes());
    front.extend_from_slice(&signed_bytes);
    if front.len() == reserved {
        if let Some(slot) = out.get_mut(pt_start..pt_start + reserved) {
            slot.copy_from_slice(&front);
        }
    } else {
        // Only a deliberately tampered header (test vectors) changes length.
        out.splice(pt_start..pt_start + reserved, front);
    }
    let ct_len = u32::try_from(out.len() - pt_start + TAG_LEN)
        .map_err(|_| SealError::InvalidDraft("message too long".into()))?;
    if let Some(slot) = out.get_mut(ct_len_at..ct_len_at + 4) {
        slot.copy_from_slice(&ct_len.to_be_bytes());
    }

    let (head, plaintext) = out.split_at_mut(pt_start);
    let aad = head.get(..aad_len).unwrap_or_default();
    let tag = ctx
        .seal_inout_detached(InOutBuf::from(plaintext), aad)
        .map_err(|_| SealError::Crypto("HPKE seal failed"))?;
    out.extend_from_slice(&tag.to_bytes());
    Ok(out)
}

/// An envelope whose framing and routing header have been parsed, but which
/// has not been decrypted or authenticated. Anything read from it is
/// attacker-controlled until [`open`] succeeds.
#[derive(Debug, Clone, Copy)]
pub struct ParsedEnvelope<'a> {
    /// The routing header (checked for syntax only).
    pub routing: RoutingHeader,
    aad: &'a [u8],
    enc: &'a [u8],
    ciphertext: &'a [u8],
    tag: &'a [u8],
}

/// Parses framing and routing header: checks 1 to 3 of SPEC.md §7.1 (size,
/// version, header). Relays and the node use it to read the routing header
/// before deciding anything; it proves nothing about who sent the envelope.
pub fn parse(envelope: &[u8], max_envelope: usize) -> Result<ParsedEnvelope<'_>, OpenError> {
    let limit = max_envelope.min(MAX_ENVELOPE);
    if envelope.len() > limit {
        return Err(OpenError::TooLarge {
            size: envelope.len(),
            limit,
        });
    }
    let mut r = Reader::new(envelope);
    let magic: [u8; 4] = r
        .array("envelope shorter than its magic number")
        .map_err(OpenError::MalformedEnvelope)?;
    if magic != MAGIC {
        return Err(OpenError::MalformedEnvelope(DecodeError {
            what: "magic number is not `GSPE`",
            offset: 0,
        }));
    }
    let version = r
        .u16("envelope ends inside `version`")
        .map_err(OpenError::MalformedEnvelope)?;
    if version != PROTOCOL_VERSION {
        return Err(OpenError::UnknownVersion(version));
    }
    let header_len = r
        .u16("envelope ends inside `header_len`")
        .map_err(OpenError::MalformedEnvelope)?;
    if usize::from(header_len) > MAX_ROUTING_HEADER {
        return Err(OpenError::MalformedHeader(
            "routing header longer than 1024 bytes".into(),
        ));
    }
    let header_bytes = r
        .take(
            usize::from(header_len),
            "envelope ends inside the routing header",
        )
        .map_err(OpenError::MalformedEnvelope)?;
    let routing = RoutingHeader::from_bytes(header_bytes).map_err(OpenError::MalformedHeader)?;
    let aad_len = r.position();
    let enc = r
        .take(ENC_LEN, "envelope ends inside `enc`")
        .map_err(OpenError::MalformedEnvelope)?;
    let ct_len = r
        .u32("envelope ends inside `ct_len`")
        .map_err(OpenError::MalformedEnvelope)?;
    let ct_len = usize::try_from(ct_len).unwrap_or(usize::MAX);
    if r.remaining() != ct_len {
        return Err(OpenError::MalformedEnvelope(
            r.error("`ct_len` does not match the bytes that follow"),
        ));
    }
    if ct_len < TAG_LEN + SIGNATURE_LEN + 2 {
        return Err(OpenError::MalformedEnvelope(
            r.error("ciphertext too short to hold a signature and a tag"),
        ));
    }
    let ct_and_tag = r.rest();
    let (ciphertext, tag) = ct_and_tag.split_at(ct_len - TAG_LEN);
    Ok(ParsedEnvelope {
        routing,
        aad: envelope.get(..aad_len).unwrap_or_default(),
        enc,
        ciphertext,
        tag,
    })
}

/// A source of senders' published signing keys: the node's verified copy of
/// the directory.
pub trait SenderKeys {
    /// Every signing key `party` publishes (current and overlapping previous
    /// ones) with their validity windows; empty if the Party is unknown.
    fn signing_keys(&self, party: PartyCode) -> Vec<SenderKey>;
}

impl SenderKeys for HashMap<PartyCode, Vec<SenderKey>> {
    fn signing_keys(&self, party: PartyCode) -> Vec<SenderKey> {
        self.get(&party).cloned().unwrap_or_default()
    }
}

impl SenderKeys for BTreeMap<PartyCode, Vec<SenderKey>> {
    fn signing_keys(&self, party: PartyCode) -> Vec<SenderKey> {
        self.get(&party).cloned().unwrap_or_default()
    }
}

/// What `open` needs to know about us, the sender and the clock.
#[derive(Clone, Copy)]
pub struct OpenContext<'a> {
    /// Our Party code.
    pub us: PartyCode,
    /// Our message-encryption keys: the current one and any overlapping
    /// previous ones. The routing header's key id selects one.
    pub our_keys: &'a [RecipientKey],
    /// The senders' published signing keys.
    pub sender_keys: &'a dyn SenderKeys,
    /// The replay store.
    pub seen: &'a dyn SeenIds,
    /// Our clock.
    pub now: UnixMillis,
    /// Allowed clock difference between sender and us (SPEC.md recommends 5 minutes).
    pub skew: Duration,
    /// Our envelope size limit; at most [`MAX_ENVELOPE`].
    pub max_envelope: usize,
}

/// A message that passed every check of `open`.
#[derive(Debug, Clone)]
pub struct OpenedMessage {
    /// The authenticated signed header (its routing fields equal the envelope's).
    pub header: SignedHeader,
    /// The sender's signature over the signed header, kept as evidence.
    pub signature: [u8; 64],
    plaintext: Vec<u8>,
    body_start: usize,
}

impl OpenedMessage {
    /// The body, authenticated.
    pub fn body(&self) -> &[u8] {
        self.plaintext.get(self.body_start..).unwrap_or_default()
    }

    /// The body as an owned buffer (moves the bytes down by the header's
    /// length; no second allocation).
    pub fn into_body(mut self) -> Vec<u8> {
        self.plaintext.drain(..self.body_start);
        self.plaintext
    }
}

/// Opens an envelope: every check of SPEC.md §7.1, in order, stopping at the
/// first failure. Never panics, whatever the bytes.
pub fn open(envelope: &[u8], ctx: &OpenContext<'_>) -> Result<OpenedMessage, OpenError> {
    let ctx = &OpenContext {
        skew: ctx.skew.min(MAX_SKEW),
        ..*ctx
    };
    // 1-3: size, version, header.
    let parsed = parse(envelope, ctx.max_envelope)?;
    let routing = parsed.routing;
    // 4: the recipient is us, and we hold the key it was sealed to.
    if routing.to != ctx.us {
        return Err(OpenError::WrongRecipient {
            to: routing.to,
            us: ctx.us,
        });
    }
    let our_key = ctx
        .our_keys
        .iter()
        .find(|k| {
            k.key.key_id() == routing.recipient_key_id && k.validity.contains(ctx.now, ctx.skew)
        })
        .ok_or(OpenError::UnknownRecipientKey(routing.recipient_key_id))?;
    // 5: freshness.
    if routing.created > ctx.now.saturating_add(ctx.skew) {
        return Err(OpenError::NotYetValid {
            created: routing.created,
            now: ctx.now,
        });
    }
    if ctx.now > routing.expires.saturating_add(ctx.skew) {
        return Err(OpenError::Expired {
            expires: routing.expires,
            now: ctx.now,
        });
    }
    // 6: HPKE open, decrypting straight from the envelope into a new buffer.
    let plaintext = hpke_open(&parsed, our_key)?;
    // 7: payload structure.
    let mut r = Reader::new(&plaintext);
    let malformed = |e: DecodeError| OpenError::MalformedPayload(e.to_string());
    let signature: [u8; 64] = r
        .array("payload ends inside the signature")
        .map_err(malformed)?;
    let signed_len = r
        .u16("payload ends inside `signed_header_len`")
        .map_err(malformed)?;
    if usize::from(signed_len) > MAX_SIGNED_HEADER {
        return Err(OpenError::MalformedPayload(
            "signed header longer than 1024 bytes".into(),
        ));
    }
    let signed_bytes = r
        .take(
            usize::from(signed_len),
            "payload ends inside the signed header",
        )
        .map_err(malformed)?;
    let header = SignedHeader::from_bytes(signed_bytes).map_err(OpenError::MalformedPayload)?;
    let body_start = r.position();
    let body = r.rest();
    // 8: the signature, by a signing key the sender publishes and that is valid now.
    let keys = ctx.sender_keys.signing_keys(routing.from);
    let key = keys
        .iter()
        .find(|k| k.key.key_id() == header.sender_key_id)
        .ok_or(OpenError::UnknownSigningKey {
            party: routing.from,
            key_id: header.sender_key_id,
        })?;
    if !key.validity.contains(ctx.now, ctx.skew) {
        return Err(OpenError::SigningKeyNotValid(header.sender_key_id));
    }
    key.key
        .verify(domain::MESSAGE_SIGNATURE, signed_bytes, &signature)
        .map_err(|_| {
            OpenError::BadSignature("the signature over the signed header does not verify")
        })?;
    if header.body_len != body.len() as u64 || !bool::from(sha256(body).ct_eq(&header.body_sha256))
    {
        return Err(OpenError::BadSignature(
            "the body is not the one the signed header describes",
        ));
    }
    // 9: the signed header equals the routing header.
    compare_headers(&header, &routing)?;
    // 10: replay.
    let keep_until = routing.expires.saturating_add(ctx.skew);
    match ctx
        .seen
        .first_sighting(routing.from, routing.message_id, keep_until)
    {
        Ok(true) => {}
        Ok(false) => return Err(OpenError::Replayed(routing.message_id, routing.from)),
        Err(e) => return Err(OpenError::Internal(e)),
    }
    // 11: template.
    templates::validate_body(header.template.as_ref(), &header.content_type, body)
        .map_err(OpenError::InvalidBody)?;
    Ok(OpenedMessage {
        header,
        signature,
        plaintext,
        body_start,
    })
}

fn hpke_open(parsed: &ParsedEnvelope<'_>, key: &RecipientKey) -> Result<Vec<u8>, OpenError> {
    let enc = <HpkeKem as hpke::Kem>::EncappedKey::from_bytes(parsed.enc)
        .map_err(|_| OpenError::DecryptFailed)?;
    let tag = AeadTag::<HpkeAead>::from_bytes(parsed.tag).map_err(|_| OpenError::DecryptFailed)?;
    let mut ctx = hpke::setup_receiver::<HpkeAead, HpkeKdf, HpkeKem>(
        &OpModeR::Base,
        key.key.hpke_secret(),
        &enc,
        domain::HPKE_INFO,
    )
    .map_err(|_| OpenError::DecryptFailed)?;
    let mut plaintext = vec![0u8; parsed.ciphertext.len()];
    let buf =
        InOutBuf::new(parsed.ciphertext, &mut plaintext).map_err(|_| OpenError::DecryptFailed)?;
    ctx.open_inout_detached(buf, parsed.aad, &tag)
        .map_err(|_| OpenError::DecryptFailed)?;
    Ok(plaintext)
}

fn compare_headers(signed: &SignedHeader, routing: &RoutingHeader) -> Result<(), OpenError> {
    let s = &signed.routing;
    let field = if signed.version != PROTOCOL_VERSION {
        "version"
    } else if s.message_id != routing.message_id {
        "message_id"
    } else if s.from != routing.from {
        "from"
    } else if s.to != routing.to {
        "to"
    } else if s.recipient_key_id != routing.recipient_key_id {
        "recipient_key_id"
    } else if s.created != routing.created {
        "created"
    } else if s.expires != routing.expires {
        "expires"
    } else {
        return Ok(());
    };
    Err(OpenError::HeaderMismatch(field))
}

/// SHA-256 of `bytes` (ring's implementation: it uses the SHA extensions
/// where the CPU has them).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The key id the routing header of `envelope` names, for callers that only
/// need to route it. Same as `parse(..)?.routing.recipient_key_id`.
pub fn recipient_key_id(envelope: &[u8]) -> Result<KeyId, OpenError> {
    Ok(parse(envelope, MAX_ENVELOPE)?.routing.recipient_key_id)
}

fn random_ikm() -> Result<[u8; 32], SealError> {
    use ring::rand::SecureRandom as _;
    let mut ikm = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut ikm)
        .map_err(|_| SealError::Crypto("system random generator failed"))?;
    Ok(ikm)
}

/// Hands HPKE a fixed 32-byte `ikmE` (RFC 9180 `DeriveKeyPair` input for the
/// ephemeral key), so the ephemeral key is `DeriveKeyPair(ikmE)` exactly as
/// the test vectors state it. The bytes repeat if more are asked for, which
/// the X25519 KEM never does.
struct IkmRng {
    ikm: [u8; 32],
    pos: usize,
}

impl hpke::rand_core::TryRng for IkmRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for byte in dst {
            *byte = self.ikm.get(self.pos % 32).copied().unwrap_or(0);
            self.pos = self.pos.wrapping_add(1);
        }
        Ok(())
    }
}

impl hpke::rand_core::TryCryptoRng for IkmRng {}
