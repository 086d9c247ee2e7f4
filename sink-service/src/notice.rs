// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the store and ingest tell the webhooks about: collected by the store, then dispatched
//! by `webhooks` before each commit's flush. It sits below both, so neither imports the other
//! for it.

/// Something that may become webhook deliveries.
#[derive(Debug, Clone)]
pub enum Notice {
    /// The service stored an integrity event.
    Integrity {
        tenant: String,
        event: serde_json::Value,
    },
    /// Records `from..=to` of a chain unit became valid (a trusted checkpoint vouched for them).
    Valid {
        tenant: String,
        device: String,
        stream: String,
        /// The chain epoch ([`crate::store::Store::unit_id`]).
        epoch: u32,
        from: u64,
        to: u64,
    },
}
