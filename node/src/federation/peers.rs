//! What federation needs to know about other Parties' nodes: who a TLS
//! certificate belongs to, where to send, which keys to seal to and verify
//! with. The verified directory provides it; tests may provide their own.

use gsp_federation::{EncryptionPublicKey, KeyId, PartyCode, SenderKey};

/// One peer node, as the verified directory describes it now.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its Party.
    pub party: PartyCode,
    /// Its federation URLs (`https://host:port`), in order of preference.
    pub urls: Vec<String>,
    /// SHA-256 of the SubjectPublicKeyInfo of each TLS certificate it may
    /// present (more than one during a rotation).
    pub tls_pins: Vec<[u8; 32]>,
    /// Its current message-encryption key and that key's id.
    pub encryption_key: (KeyId, EncryptionPublicKey),
    /// Templates it accepts.
    pub templates: Vec<String>,
}

/// The directory as federation sees it.
pub trait Peers: Send + Sync {
    /// `Ok` while the directory copy is valid; otherwise why federation must stop.
    fn usable(&self, now_ms: i64) -> Result<(), String>;
    /// The Party whose node presents a TLS certificate with this SPKI pin.
    fn party_for_pin(&self, spki_sha256: &[u8; 32]) -> Option<PartyCode>;
    /// A Party's node.
    fn peer(&self, party: PartyCode) -> Option<Peer>;
    /// A Party's message-signing keys with their validity windows.
    fn signing_keys(&self, party: PartyCode) -> Vec<SenderKey>;
    /// Our latest accepted checkpoint, as carried in message headers.
    fn checkpoint(&self) -> Option<String>;
    /// Notes a checkpoint a peer sent; flags it when inconsistent with ours.
    fn observe_checkpoint(&self, from: PartyCode, checkpoint: &str);
}

/// Adapts a [`Peers`] to the envelope's key lookup.
pub struct SenderKeysOf<'a>(pub &'a dyn Peers);

impl gsp_federation::SenderKeys for SenderKeysOf<'_> {
    fn signing_keys(&self, party: PartyCode) -> Vec<SenderKey> {
        self.0.signing_keys(party)
    }
}
