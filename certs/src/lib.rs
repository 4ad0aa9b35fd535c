//! Party identity and node certificates for GSP.
//!
//! Makes and loads a Party's root identity key and a node's TLS certificate,
//! message-signing key and message-encryption key; rotates them with overlap and
//! prints fingerprints an operator can compare on paper. It does not speak any
//! network protocol.
