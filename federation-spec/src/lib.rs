//! The GSP federation wire format.
//!
//! This crate holds the protocol's serde types and the code that seals and opens
//! message envelopes. It knows nothing of HTTP or databases: the node crate does
//! the I/O, this crate says what the bytes mean. The normative text is
//! `federation-spec/SPEC.md`; the test vectors in `federation-spec/vectors/` pin it.
