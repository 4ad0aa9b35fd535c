//! Federation: this node's identity, the peers it may talk to (from the
//! verified directory), sealing for the outbox, receiving over mutual TLS
//! 1.3, and delivering the outbox to peers.
//!
//! The wire format is `gsp-federation`'s; this module does the I/O around
//! it. Not for: anything an officer sees (that is `exchange` and `web`).

pub mod identity;
pub mod peers;
pub mod sealer;

pub use identity::NodeIdentity;
pub use peers::{Peer, Peers};
pub use sealer::NodeSealer;
