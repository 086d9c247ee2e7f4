// SPDX-License-Identifier: MIT OR Apache-2.0
//! Veil's wire records, shared by `auditsink`, the sink service and any Rust client.
//!
//! A record is one JSON object (see [`Record`]); its `hash` is the SHA-256 of the RFC 8785
//! canonical JSON of the record without its `hash` member, and `prev` is the previous record's
//! `hash`, so the records of one chain unit (tenant, device, stream) form a hash chain. Every so
//! often the device appends a `checkpoint` record whose body is signed with its Ed25519 key.
//! `schema/record.schema.json` (at the repository root) is the same contract as a JSON Schema.

pub mod chain;
pub mod checkpoint;
pub mod event;
pub mod names;
pub mod record;
pub mod spool_dirs;
pub mod time;

pub use chain::{ChainState, ChainVerifier, VerifyError};
pub use checkpoint::{Checkpoint, DeviceKey};
/// An Ed25519 public key (device keys, the store's acknowledgement key).
pub use ed25519_dalek::VerifyingKey;
pub use event::{Event, EventKind};
pub use names::{ChainUnit, NameError, Names};
pub use record::{Ack, GENESIS, Kind, Record, RecordError, WIRE_VERSION};
