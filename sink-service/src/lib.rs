// SPDX-License-Identifier: MIT OR Apache-2.0
//! Veil's sink service: verifies, encrypts, stores and serves the records devices publish.
//!
//! Pure parts: [`crypto`] (AES-256-GCM, data keys wrapped by the KEK), [`store`] (sled layout),
//! [`ingest`] (validation, deduplication, chain verification, staging until a trusted
//! checkpoint, quarantine), [`verify`], [`retention`], [`backup`], [`query`], [`summary`];
//! the Zenoh glue is [`serve`], with [`ownership`] (what a service stores when several share
//! the key space). The HTTPS API is [`api`], with the service's own [`audit`] log,
//! its forwarding to a SIEM ([`siem`]) and [`webhooks`].

pub mod api;
pub mod audit;
pub mod backup;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod devices;
pub mod federation;
pub mod ingest;
pub mod migrate;
pub mod notice;
pub mod ownership;
pub mod prometheus;
pub mod query;
pub mod replication;
pub mod retention;
pub mod serve;
pub mod siem;
pub mod stations;
pub mod store;
pub mod summary;
pub mod synthetic;
pub mod verify;
mod webhook_target;
pub mod webhooks;
