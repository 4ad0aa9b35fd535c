//! Questions asked of the data store: one code with its chain and history
//! (`trace`), many codes at once (`bulk`, for uid-verification requests), and
//! EPCIS 2.0 event queries (`events`).
//!
//! All functions here are blocking diesel calls on a connection; the web layer
//! runs them through `Database::run`.

pub mod bulk;
pub mod events;
mod lookup;
pub mod trace;

pub use lookup::{EventRow, FacilityInfo, MachineInfo, MasterCache, ProductInfo};

/// A query failure.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A parameter is malformed; the message names it.
    #[error("{0}")]
    BadRequest(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
}
