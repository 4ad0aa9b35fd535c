//! This node's identity, loaded once at start-up from its key folder
//! (`gsp certs init` made it): Party code, message-signing key, the
//! message-encryption keys it accepts, and its TLS credentials.

use gsp_certs::{Identity, TlsCredentials};
use gsp_federation::{PartyCode, RecipientKey, SigningKey};
use std::path::{Path, PathBuf};

/// What a node needs of its own keys at run time.
pub struct NodeIdentity {
    /// Our Party.
    pub party: PartyCode,
    /// The key we sign messages and receipts with (the current one).
    pub signing_key: SigningKey,
    /// Our encryption keys: the current one and overlapping previous ones.
    pub encryption_keys: Vec<RecipientKey>,
    /// Our TLS certificate and key.
    pub tls: TlsCredentials,
    /// Where the keys live.
    pub dir: PathBuf,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("party", &self.party)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl NodeIdentity {
    /// The default key folder: `<data-dir>/keys`.
    pub fn default_dir(data_dir: &Path) -> PathBuf {
        data_dir.join("keys")
    }

    /// Loads the identity from `dir` (refusing key files others can read).
    pub fn load(dir: &Path) -> Result<NodeIdentity, String> {
        let identity = Identity::load(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(NodeIdentity {
            party: identity.doc.party,
            signing_key: identity.signing_key().map_err(|e| e.to_string())?,
            encryption_keys: identity.encryption_keys().map_err(|e| e.to_string())?,
            tls: identity.tls().map_err(|e| e.to_string())?,
            dir: dir.to_owned(),
        })
    }
}
