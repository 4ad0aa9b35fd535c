//! Party-to-Party exchanges: cases made from templates, their messages and
//! attachments, answer policies, the durable outbox and the audit trail.
//!
//! Everything here is database work on one connection, done in the same
//! transaction as the change it records (a queued message and its outbox row,
//! a received message and its receipt). Sending and receiving over the
//! network is `federation`'s job; this module only prepares and records.

pub mod answers;
pub mod auto;
pub mod export;
pub mod kept;
pub mod model;
pub mod orphans;
pub mod outbox;
pub mod store;
