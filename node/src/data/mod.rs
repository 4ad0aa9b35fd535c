//! The national tracking-and-tracing data store: the model (Art. 8.4.1 items
//! (a)–(j), the EU event vocabulary and EPCIS 2.0), import, the synthetic data
//! generator and queries. `MODEL.md` beside this file documents the model and
//! its mappings.

pub mod epcis;
pub mod import;
pub mod model;
pub mod query;
pub mod synthetic;
