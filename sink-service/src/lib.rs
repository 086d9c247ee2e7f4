//! Veil's sink service: verifies, encrypts, stores and serves the records devices publish.
//!
//! Pure parts: [`crypto`] (AES-256-GCM, data keys wrapped by the KEK), [`store`] (sled layout),
//! [`ingest`] (validation, deduplication, chain verification, staging until a trusted
//! checkpoint, quarantine), [`verify`], [`retention`], [`backup`], [`query`], [`summary`];
//! the Zenoh glue is [`serve`].

pub mod backup;
pub mod config;
pub mod crypto;
pub mod ingest;
pub mod query;
pub mod retention;
pub mod serve;
pub mod store;
pub mod summary;
pub mod verify;
