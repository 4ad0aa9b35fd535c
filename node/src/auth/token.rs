//! Bearer tokens: random, shown once, kept only as their SHA-256 — the
//! officers' sessions and the `/metrics` token.

use base64::Engine as _;
use ring::rand::SecureRandom as _;

/// A new random token: 32 bytes from the system's generator, base64url.
/// `None` if the generator fails.
pub fn new_token() -> Option<String> {
    let mut raw = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut raw).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// The SHA-256 of a token, as stored and configured.
pub fn token_sha256(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn tokens_are_fresh_and_their_digests_fixed() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(
            hex::encode(token_sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
