//! The two headers of an envelope.
//!
//! The **routing header** travels in clear (it is the HPKE associated data):
//! message id, sender and recipient Parties, the recipient's encryption key id,
//! creation and expiry times. Relays, reverse proxies and the directory can see
//! it; nothing else about the message.
//!
//! The **signed header** travels encrypted. It starts with the protocol version
//! and the routing header's bytes, then adds what only the recipient may see:
//! the sender's signing key id, the case, the template, the content type and
//! the body's length and SHA-256. The sender's Ed25519 signature covers it.
//! Byte layouts: SPEC.md §4 and §5.

use crate::encoding::{DecodeError, Reader, put_str8};
use crate::keys::KeyId;
use crate::party::PartyCode;
use crate::templates::{Part, TemplateRef};
use crate::timestamp::UnixMillis;
use uuid::Uuid;

/// The longest lifetime (`expires - created`) a message may have: 30 days.
/// Receivers keep message ids this long (plus skew) to detect replays.
pub const MAX_LIFETIME_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// The routing header (SPEC.md §4): visible to relays, bound to the ciphertext
/// as HPKE associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingHeader {
    /// Unique per sender; a UUIDv7 (RFC 9562).
    pub message_id: Uuid,
    /// The sending Party.
    pub from: PartyCode,
    /// The receiving Party.
    pub to: PartyCode,
    /// Key id of the recipient encryption key the envelope is sealed to.
    pub recipient_key_id: KeyId,
    /// When the sender made the message.
    pub created: UnixMillis,
    /// After this instant the message must not be accepted.
    pub expires: UnixMillis,
}

impl RoutingHeader {
    /// Appends the header's bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.message_id.as_bytes());
        put_str8(out, self.from.as_bytes());
        put_str8(out, self.to.as_bytes());
        out.extend_from_slice(&self.recipient_key_id.0);
        out.extend_from_slice(&self.created.0.to_be_bytes());
        out.extend_from_slice(&self.expires.0.to_be_bytes());
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        self.encode_into(&mut out);
        out
    }

    /// Reads a routing header from the reader and checks its rules.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, String> {
        let id: [u8; 16] = r.array("message id").map_err(describe)?;
        let from = r.str8("from").map_err(describe)?;
        let from = PartyCode::from_bytes(from).ok_or("`from` is not a Party code")?;
        let to = r.str8("to").map_err(describe)?;
        let to = PartyCode::from_bytes(to).ok_or("`to` is not a Party code")?;
        let recipient_key_id = KeyId(r.array("recipient key id").map_err(describe)?);
        let created = UnixMillis(r.u64("created").map_err(describe)?);
        let expires = UnixMillis(r.u64("expires").map_err(describe)?);
        let header = Self {
            message_id: Uuid::from_bytes(id),
            from,
            to,
            recipient_key_id,
            created,
            expires,
        };
        header.check()?;
        Ok(header)
    }

    /// Parses exactly one routing header (no trailing bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader::new(bytes);
        let header = Self::read(&mut r)?;
        r.finish("bytes after the routing header")
            .map_err(describe)?;
        Ok(header)
    }

    /// The rules of SPEC.md §4.2 that do not depend on the clock.
    pub fn check(&self) -> Result<(), String> {
        if self.message_id.get_version_num() != 7
            || self.message_id.get_variant() != uuid::Variant::RFC4122
        {
            return Err("message id is not a UUIDv7".into());
        }
        if self.from == self.to {
            return Err("`from` and `to` are the same Party".into());
        }
        if self.expires <= self.created {
            return Err("`expires` is not after `created`".into());
        }
        if self.expires.0 - self.created.0 > MAX_LIFETIME_MS {
            return Err("lifetime (`expires` - `created`) is longer than 30 days".into());
        }
        Ok(())
    }
}

/// The signed header (SPEC.md §5): encrypted, covered by the sender's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeader {
    /// The protocol version (repeated here so the signature covers it).
    pub version: u16,
    /// The routing fields, which must equal the envelope's routing header.
    pub routing: RoutingHeader,
    /// Key id of the sender's message-signing key that made the signature.
    pub sender_key_id: KeyId,
    /// The case (thread) this message belongs to.
    pub case_id: Uuid,
    /// The template and part the body follows, if any.
    pub template: Option<TemplateRef>,
    /// The body's media type, for example `application/json`.
    pub content_type: String,
    /// Length of the body in bytes.
    pub body_len: u64,
    /// SHA-256 of the body.
    pub body_sha256: [u8; 32],
}

/// Longest template name.
pub const MAX_TEMPLATE_NAME: usize = 64;
/// Longest content type.
pub const MAX_CONTENT_TYPE: usize = 127;

impl SignedHeader {
    /// The header's bytes: exactly what the sender signs (after the domain string).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(&self.version.to_be_bytes());
        self.routing.encode_into(&mut out);
        out.extend_from_slice(&self.sender_key_id.0);
        out.extend_from_slice(self.case_id.as_bytes());
        match &self.template {
            Some(t) => {
                put_str8(&mut out, t.name.as_bytes());
                out.extend_from_slice(&t.version.to_be_bytes());
                out.push(t.part.wire_value());
            }
            None => {
                put_str8(&mut out, b"");
                out.extend_from_slice(&0u16.to_be_bytes());
                out.push(0);
            }
        }
        put_str8(&mut out, self.content_type.as_bytes());
        out.extend_from_slice(&self.body_len.to_be_bytes());
        out.extend_from_slice(&self.body_sha256);
        out
    }

    /// Parses a signed header and checks the rules of SPEC.md §5.2.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader::new(bytes);
        let version = r.u16("version").map_err(describe)?;
        let routing = RoutingHeader::read(&mut r)?;
        let sender_key_id = KeyId(r.array("sender key id").map_err(describe)?);
        let case_id = Uuid::from_bytes(r.array("case id").map_err(describe)?);
        let name = r.str8("template").map_err(describe)?;
        let template_version = r.u16("template version").map_err(describe)?;
        let part = r.u8("template part").map_err(describe)?;
        let content_type = r.str8("content type").map_err(describe)?;
        let body_len = r.u64("body length").map_err(describe)?;
        let body_sha256 = r.array("body sha256").map_err(describe)?;
        r.finish("bytes after the signed header")
            .map_err(describe)?;

        let template = match (name, template_version, part) {
            (b"", 0, 0) => None,
            (b"", _, _) => return Err("template version or part set without a template".into()),
            (name, version, part) => {
                let name = std::str::from_utf8(name).map_err(|_| "template name is not ASCII")?;
                let part = Part::from_wire(part).ok_or("template part is not 1 or 2")?;
                let t = TemplateRef {
                    name: name.to_owned(),
                    version,
                    part,
                };
                t.check()?;
                Some(t)
            }
        };
        let content_type = std::str::from_utf8(content_type)
            .map_err(|_| "content type is not ASCII")?
            .to_owned();
        check_content_type(&content_type)?;
        Ok(Self {
            version,
            routing,
            sender_key_id,
            case_id,
            template,
            content_type,
            body_len,
            body_sha256,
        })
    }
}

/// A content type is 1 to 127 bytes of printable ASCII (0x21..=0x7E, or a space).
pub fn check_content_type(ct: &str) -> Result<(), String> {
    if ct.is_empty() || ct.len() > MAX_CONTENT_TYPE {
        return Err("content type must be 1 to 127 bytes".into());
    }
    if !ct.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err("content type must be printable ASCII".into());
    }
    Ok(())
}

fn describe(e: DecodeError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> RoutingHeader {
        RoutingHeader {
            message_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
            from: PartyCode::parse("FRA").unwrap(),
            to: PartyCode::parse("KEN").unwrap(),
            recipient_key_id: KeyId([1, 2, 3, 4, 5, 6, 7, 8]),
            created: UnixMillis(1_800_000_000_000),
            expires: UnixMillis(1_800_000_000_000 + 86_400_000),
        }
    }

    #[test]
    fn routing_header_round_trips() {
        let h = sample();
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), 16 + 4 + 4 + 8 + 8 + 8);
        assert_eq!(RoutingHeader::from_bytes(&bytes).unwrap(), h);
        for cut in 0..bytes.len() {
            assert!(RoutingHeader::from_bytes(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn routing_header_rules() {
        let mut h = sample();
        h.message_id = Uuid::from_u128(1);
        assert!(h.check().unwrap_err().contains("UUIDv7"));
        let mut h = sample();
        h.expires = h.created;
        assert!(h.check().is_err());
        let mut h = sample();
        h.expires = UnixMillis(h.created.0 + MAX_LIFETIME_MS + 1);
        assert!(h.check().is_err());
        let mut h = sample();
        h.to = h.from;
        assert!(h.check().is_err());
    }

    #[test]
    fn signed_header_round_trips() {
        let sh = SignedHeader {
            version: 1,
            routing: sample(),
            sender_key_id: KeyId([9; 8]),
            case_id: Uuid::from_u128(42),
            template: Some(TemplateRef {
                name: "uid-verification".into(),
                version: 1,
                part: Part::Request,
            }),
            content_type: "application/json".into(),
            body_len: 5,
            body_sha256: [7; 32],
        };
        assert_eq!(SignedHeader::from_bytes(&sh.to_bytes()).unwrap(), sh);
        let none = SignedHeader {
            template: None,
            ..sh
        };
        assert_eq!(SignedHeader::from_bytes(&none.to_bytes()).unwrap(), none);
    }
}
