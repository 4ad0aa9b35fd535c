//! Federation: this node's identity, the peers it may talk to (from the
//! verified directory), sealing for the outbox, receiving over mutual TLS
//! 1.3, and delivering the outbox to peers.
//!
//! The wire format is `gsp-federation`'s; this module does the I/O around
//! it. Not for: anything an officer sees (that is `exchange` and `web`).

pub mod answer_in_response;
pub mod arrival;
pub mod delivery;
pub mod identity;
pub mod instance;
pub mod peer_limits;
pub mod peers;
pub mod receipt_batch;
pub mod sealer;
pub mod server;
pub mod wake;
pub mod workers;

pub use identity::NodeIdentity;
pub use peers::{Peer, Peers};
pub use sealer::NodeSealer;

use std::sync::Arc;

/// What a node needs to take part in federation: its identity and its view
/// of the directory.
pub struct Federation {
    /// Our keys.
    pub identity: NodeIdentity,
    /// The directory.
    pub peers: Arc<dyn Peers>,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Federation {
    /// A sealer for messages from this node.
    pub fn sealer(&self) -> NodeSealer<'_> {
        NodeSealer {
            identity: &self.identity,
            peers: self.peers.as_ref(),
        }
    }
}
