// SPDX-License-Identifier: MIT OR Apache-2.0
//! Synthetic devices: real, signed hash chains built with the wire crate — the same records
//! `auditsink` publishes — for tests, benchmarks and demo data (`examples/seed.rs`).

use veil_wire::{DeviceKey, GENESIS, Kind, Names, Record};

/// A device's chain: metrics windows one minute apart, a checkpoint after every `every`, and
/// one at the end.
pub struct Device {
    pub names: Names,
    pub key: DeviceKey,
    pub seq: u64,
    pub head: String,
    pub since: u64,
}

impl Device {
    /// A device of site `hq`, stream `door`, its key derived from `seed`.
    ///
    /// Panics on an invalid tenant or device name (tests); see [`Device::try_new`].
    pub fn new(tenant: &str, device: &str, seed: u8) -> Device {
        Device::try_new(tenant, device, seed).expect("valid tenant and device names")
    }

    pub fn try_new(
        tenant: &str,
        device: &str,
        seed: u8,
    ) -> Result<Device, veil_wire::names::NameError> {
        Device::try_at(tenant, "hq", device, seed)
    }

    /// A device of site `site`, stream `door`, its key derived from `seed`.
    pub fn try_at(
        tenant: &str,
        site: &str,
        device: &str,
        seed: u8,
    ) -> Result<Device, veil_wire::names::NameError> {
        Ok(Device {
            names: Names::new(tenant, site, device, "door")?,
            key: DeviceKey::from_seed([seed; 32]),
            seq: 0,
            head: GENESIS.into(),
            since: 0,
        })
    }

    fn next(&mut self, kind: Kind, capture_ns: u64, body: serde_json::Value) -> Record {
        self.seq += 1;
        let r = Record::new(
            &self.names,
            self.seq,
            capture_ns,
            Some(self.seq),
            kind,
            body,
            Some(self.head.clone()),
        )
        .expect("records of valid names and JSON bodies");
        self.head = r.hash.clone();
        r
    }

    pub fn window(&mut self, minute: u64) -> Record {
        let start = 1_795_428_000_000_000_000 + minute * 60_000_000_000;
        self.window_with(
            minute,
            serde_json::json!({"version": 1, "window_start": veil_wire::record::format_time(start), "opportunities_to_see": minute % 7}),
        )
    }

    /// A window of minute `minute` (from 2026-11-23T10:00Z) with the given body.
    pub fn window_with(&mut self, minute: u64, body: serde_json::Value) -> Record {
        let start = 1_795_428_000_000_000_000 + minute * 60_000_000_000;
        self.since += 1;
        self.next(Kind::Metrics, start + 60_000_000_000, body)
    }

    /// A record of `kind` at minute `minute` (from 2026-11-23T10:00Z) with the given body.
    pub fn record_at(&mut self, kind: Kind, minute: u64, body: serde_json::Value) -> Record {
        let t = 1_795_428_000_000_000_000 + minute * 60_000_000_000;
        self.since += 1;
        self.next(kind, t, body)
    }

    /// An `image` record of minute `minute`, as the aggregator's image-retention makes one: the
    /// JPEG in base64 with its SHA-256.
    pub fn image(&mut self, minute: u64, part: u64, jpeg: &[u8]) -> Record {
        use base64::Engine;
        use sha2::Digest;
        let t = 1_795_428_000_000_000_000 + minute * 60_000_000_000;
        self.since += 1;
        let body = serde_json::json!({
            "version": 1, "part": part, "decision": "NG", "time": veil_wire::record::format_time(t),
            "format": "jpeg", "width": 0, "height": 0, "bytes": jpeg.len(),
            "sha256": hex::encode(sha2::Sha256::digest(jpeg)),
            "data": base64::engine::general_purpose::STANDARD.encode(jpeg),
        });
        self.next(Kind::Image, t, body)
    }

    pub fn checkpoint(&mut self) -> Record {
        let n = &self.names;
        let cp = self
            .key
            .sign_checkpoint(&n.tenant, &n.device, &n.stream, self.seq, &self.head);
        self.since = 0;
        self.next(
            Kind::Checkpoint,
            1_795_428_000_000_000_000,
            serde_json::to_value(cp).expect("a checkpoint is JSON"),
        )
    }

    /// `n` windows with a checkpoint after every `every` and at the end.
    pub fn records(&mut self, n: u64, every: u64) -> Vec<Record> {
        let mut out = Vec::new();
        for i in 0..n {
            out.push(self.window(i));
            if self.since >= every || i + 1 == n {
                out.push(self.checkpoint());
            }
        }
        out
    }
}
