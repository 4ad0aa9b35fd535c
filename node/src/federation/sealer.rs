//! Sealing messages from this node to a peer: our signing key and the
//! peer's current encryption key from the directory. Refuses when the
//! directory copy has expired (fail closed) or the peer is unknown.

use super::{NodeIdentity, Peers};
use crate::exchange::store::Sealer;
use gsp_federation::{EncryptionPublicKey, MessageDraft, PartyCode, ValidatedBody};

/// Seals with this node's identity for peers in the directory.
pub struct NodeSealer<'a> {
    /// Our keys.
    pub identity: &'a NodeIdentity,
    /// The directory.
    pub peers: &'a dyn Peers,
}

impl NodeSealer<'_> {
    /// The recipient's current encryption key, if it may be sealed to now.
    fn recipient(&self, draft: &MessageDraft) -> Result<EncryptionPublicKey, String> {
        self.peers
            .usable(i64::try_from(draft.created.0).unwrap_or(i64::MAX))?;
        let peer = self
            .peers
            .peer(draft.to)
            .ok_or_else(|| format!("{} has no node in the directory", draft.to.as_str()))?;
        if let Some(t) = &draft.template
            && !peer.templates.is_empty()
            && !peer.templates.contains(&t.name)
        {
            return Err(format!(
                "{}'s node does not accept {} messages",
                draft.to.as_str(),
                t.name
            ));
        }
        Ok(peer.encryption_key.1)
    }
}

impl Sealer for NodeSealer<'_> {
    fn us(&self) -> PartyCode {
        self.identity.party
    }

    fn seal(&self, draft: &MessageDraft, body: &[u8]) -> Result<Vec<u8>, String> {
        let recipient = self.recipient(draft)?;
        gsp_federation::seal(draft, body, &self.identity.signing_key, &recipient)
            .map_err(|e| e.to_string())
    }

    fn seal_validated(
        &self,
        draft: &MessageDraft,
        body: &ValidatedBody,
    ) -> Result<Vec<u8>, String> {
        let recipient = self.recipient(draft)?;
        gsp_federation::seal_validated(draft, body, &self.identity.signing_key, &recipient)
            .map_err(|e| e.to_string())
    }
}
