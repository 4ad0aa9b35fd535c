//! The end-to-end test harness for GSP.
//!
//! Starts real `gsp` processes (nodes, and later the directory) on loopback with
//! generated keys, against SQLite or PostgreSQL, and gives tests a handle to drive
//! them. It is a test support crate, not part of the product.
