// SPDX-License-Identifier: MIT OR Apache-2.0
//! The record: one JSON object per published message.
//!
//! ```json
//! {"v":1,"tenant":"acme","site":"store-12","device":"cam-3","stream":"entrance","seq":42,
//!  "capture_time":"2026-11-23T10:01:00.000000000Z","pts":60000000000,"kind":"metrics",
//!  "body":{...},"prev":"<64 hex>","hash":"<64 hex>"}
//! ```
//!
//! `hash` = lowercase hex SHA-256 of the RFC 8785 (JCS) canonical JSON of the record with the
//! `hash` member removed — `prev` included, so each record commits to the whole chain before it.
//! Chained records (every kind but `detections`) number from 1 per chain unit; the first one's
//! `prev` is [`GENESIS`]. `detections` records are best-effort, outside the chain, with a
//! sequence of their own and `prev` null. `pts` is in nanoseconds, null when unknown or beyond
//! 2^53 − 1 (JSON numbers are exact only up to there).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::names::{NameError, Names};

pub const WIRE_VERSION: u32 = 1;
/// `prev` of a chain's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Largest integer a JSON number carries exactly (and RFC 8785 accepts).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An aggregator window (`veil-metrics-window`).
    Metrics,
    /// Any other event from the elements upstream.
    Event,
    /// Per-frame boxes without track ids; best-effort, outside the chain.
    Detections,
    /// Something about the record stream itself: spool overflow, restarts, chain breaks.
    Integrity,
    /// Signed chain head.
    Checkpoint,
    /// What the device runs: element settings, model files and their SHA-256.
    Config,
    /// Reserved for the industrial modes.
    Inspection,
    Compliance,
    Image,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Metrics,
        Kind::Event,
        Kind::Detections,
        Kind::Integrity,
        Kind::Checkpoint,
        Kind::Config,
        Kind::Inspection,
        Kind::Compliance,
        Kind::Image,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Metrics => "metrics",
            Kind::Event => "event",
            Kind::Detections => "detections",
            Kind::Integrity => "integrity",
            Kind::Checkpoint => "checkpoint",
            Kind::Config => "config",
            Kind::Inspection => "inspection",
            Kind::Compliance => "compliance",
            Kind::Image => "image",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Whether records of this kind are in the hash chain (and delivered reliably).
    pub fn chained(self) -> bool {
        self != Kind::Detections
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not a record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported wire version {0} (this build reads {WIRE_VERSION})")]
    Version(u32),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("capture_time {0:?} is not an RFC 3339 UTC time")]
    Time(String),
    #[error("{field} is not 64 lowercase hex digits")]
    Digest { field: &'static str },
    #[error("a {kind} record must {rule}")]
    Shape {
        kind: &'static str,
        rule: &'static str,
    },
    #[error("{0} is beyond 2^53 - 1")]
    Unsafe(&'static str),
    #[error("canonical JSON failed: {0}")]
    Canonical(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub v: u32,
    pub tenant: String,
    pub site: String,
    pub device: String,
    pub stream: String,
    pub seq: u64,
    pub capture_time: String,
    pub pts: Option<u64>,
    pub kind: Kind,
    pub body: serde_json::Value,
    pub prev: Option<String>,
    pub hash: String,
}

fn is_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub use crate::time::{format_time, parse_time};

/// RFC 8785 canonical JSON of a value.
pub fn canonical_json(value: &serde_json::Value) -> Result<Vec<u8>, RecordError> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| RecordError::Canonical(e.to_string()))
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Record {
    /// A record with its hash computed. `prev` is `None` for kinds outside the chain.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        names: &Names,
        seq: u64,
        capture_ns: u64,
        pts: Option<u64>,
        kind: Kind,
        body: serde_json::Value,
        prev: Option<String>,
    ) -> Result<Record, RecordError> {
        let mut record = Record {
            v: WIRE_VERSION,
            tenant: names.tenant.clone(),
            site: names.site.clone(),
            device: names.device.clone(),
            stream: names.stream.clone(),
            seq,
            capture_time: format_time(capture_ns),
            pts: pts.filter(|&p| p <= MAX_SAFE_INTEGER),
            kind,
            body,
            prev,
            hash: String::new(),
        };
        record.hash = record.compute_hash()?;
        record.validate()?;
        Ok(record)
    }

    /// The exact bytes that are hashed: canonical JSON of the record without `hash`.
    pub fn hashed_bytes(&self) -> Result<Vec<u8>, RecordError> {
        // The record's fields by reference (no copy of the body); the canonicalizer orders them.
        #[derive(Serialize)]
        struct Hashed<'a> {
            v: u32,
            tenant: &'a str,
            site: &'a str,
            device: &'a str,
            stream: &'a str,
            seq: u64,
            capture_time: &'a str,
            pts: Option<u64>,
            kind: Kind,
            body: &'a serde_json::Value,
            prev: &'a Option<String>,
        }
        let view = Hashed {
            v: self.v,
            tenant: &self.tenant,
            site: &self.site,
            device: &self.device,
            stream: &self.stream,
            seq: self.seq,
            capture_time: &self.capture_time,
            pts: self.pts,
            kind: self.kind,
            body: &self.body,
            prev: &self.prev,
        };
        serde_json_canonicalizer::to_vec(&view).map_err(|e| RecordError::Canonical(e.to_string()))
    }

    pub fn compute_hash(&self) -> Result<String, RecordError> {
        Ok(sha256_hex(&self.hashed_bytes()?))
    }

    /// Decodes and validates a published payload (the hash is checked by the chain verifier,
    /// which can then name the record).
    pub fn from_slice(bytes: &[u8]) -> Result<Record, RecordError> {
        let record: Record = serde_json::from_slice(bytes)?;
        record.validate()?;
        Ok(record)
    }

    pub fn to_vec(&self) -> Vec<u8> {
        // A Record holds only strings, integers and a JSON value: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn names(&self) -> Result<Names, NameError> {
        Names::new(&self.tenant, &self.site, &self.device, &self.stream)
    }

    pub fn key_expr(&self) -> String {
        format!(
            "veil/{}/{}/{}/{}/{}",
            self.tenant,
            self.site,
            self.device,
            self.stream,
            self.kind.as_str()
        )
    }

    pub fn validate(&self) -> Result<(), RecordError> {
        if self.v != WIRE_VERSION {
            return Err(RecordError::Version(self.v));
        }
        self.names()?;
        if parse_time(&self.capture_time).is_none() || !self.capture_time.ends_with('Z') {
            return Err(RecordError::Time(self.capture_time.clone()));
        }
        if self.seq == 0 {
            return Err(RecordError::Shape {
                kind: self.kind.as_str(),
                rule: "have seq >= 1",
            });
        }
        if self.seq > MAX_SAFE_INTEGER {
            return Err(RecordError::Unsafe("seq"));
        }
        if self.pts.is_some_and(|p| p > MAX_SAFE_INTEGER) {
            return Err(RecordError::Unsafe("pts"));
        }
        if !is_digest(&self.hash) {
            return Err(RecordError::Digest { field: "hash" });
        }
        match (&self.prev, self.kind.chained()) {
            (Some(prev), true) if is_digest(prev) => {}
            (Some(_), true) => return Err(RecordError::Digest { field: "prev" }),
            (None, true) => {
                return Err(RecordError::Shape {
                    kind: self.kind.as_str(),
                    rule: "carry prev",
                });
            }
            (Some(_), false) => {
                return Err(RecordError::Shape {
                    kind: self.kind.as_str(),
                    rule: "have a null prev (it is outside the chain)",
                });
            }
            (None, false) => {}
        }
        if !self.body.is_object() {
            return Err(RecordError::Shape {
                kind: self.kind.as_str(),
                rule: "have an object body",
            });
        }
        Ok(())
    }
}

/// The store's acknowledgement, published on [`Names::ack_key`]: every chained record up to and
/// including `seq` is durably stored. The sink service signs it and binds it to the record:
/// `hash` is the acknowledged record's `hash`, `signature` the store key's Ed25519 signature
/// (hex) of the RFC 8785 JSON of `{v, tenant, site, device, stream, seq, hash}`
/// ([`crate::DeviceKey::sign_ack`], [`Ack::verify`]); a device given the store's public key
/// accepts nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub v: u32,
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Ack {
    /// An unsigned acknowledgement (test stores; devices without a store key accept it).
    pub fn new(seq: u64) -> Ack {
        Ack {
            v: WIRE_VERSION,
            seq,
            hash: None,
            signature: None,
        }
    }

    /// What the store's signature covers.
    pub fn signed_bytes(names: &Names, seq: u64, hash: &str) -> Vec<u8> {
        let value = serde_json::json!({
            "v": WIRE_VERSION, "tenant": names.tenant, "site": names.site,
            "device": names.device, "stream": names.stream, "seq": seq, "hash": hash,
        });
        canonical_json(&value).unwrap_or_default()
    }

    /// Checks that the store key signed this acknowledgement for this chain unit; returns the
    /// record hash it vouches for (to compare with the spooled record's).
    pub fn verify(
        &self,
        names: &Names,
        store_key: &ed25519_dalek::VerifyingKey,
    ) -> Result<&str, &'static str> {
        let hash = self.hash.as_deref().ok_or("unsigned acknowledgement")?;
        let sig: [u8; 64] = self
            .signature
            .as_deref()
            .and_then(|s| hex::decode(s).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or("unsigned acknowledgement")?;
        store_key
            .verify_strict(
                &Ack::signed_bytes(names, self.seq, hash),
                &ed25519_dalek::Signature::from_bytes(&sig),
            )
            .map_err(|_| "signature does not verify with the store key")?;
        Ok(hash)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Ack> {
        serde_json::from_slice::<Ack>(bytes)
            .ok()
            .filter(|a| a.v == WIRE_VERSION)
    }

    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> Names {
        Names::new("acme", "store-12", "cam-3", "entrance").unwrap()
    }

    /// A signed acknowledgement verifies for its unit, sequence number and hash with the store
    /// key only; every other variation is refused.
    #[test]
    fn acknowledgements_verify_only_as_signed() {
        let store = crate::DeviceKey::from_seed([5; 32]);
        let public = crate::checkpoint::parse_public_key(&store.public_hex()).unwrap();
        let hash = "ab".repeat(32);
        let ack = store.sign_ack(&names(), 7, &hash);
        let wire = Ack::from_slice(&ack.to_vec()).unwrap();
        assert_eq!(wire.verify(&names(), &public), Ok(hash.as_str()));
        let mut later = wire.clone();
        later.seq = 8;
        assert!(later.verify(&names(), &public).is_err());
        let mut other_hash = wire.clone();
        other_hash.hash = Some("cd".repeat(32));
        assert!(other_hash.verify(&names(), &public).is_err());
        let other_unit = Names::new("acme", "store-12", "cam-4", "entrance").unwrap();
        assert!(wire.verify(&other_unit, &public).is_err());
        let other_key = crate::DeviceKey::from_seed([6; 32]).sign_ack(&names(), 7, &hash);
        assert!(other_key.verify(&names(), &public).is_err());
        assert_eq!(
            Ack::new(7).verify(&names(), &public),
            Err("unsigned acknowledgement")
        );
        // The unsigned form is still read (test stores, devices without a store key).
        assert_eq!(Ack::from_slice(br#"{"v":1,"seq":3}"#), Some(Ack::new(3)));
    }

    #[test]
    fn hash_is_sha256_of_canonical_json_without_hash() {
        let r = Record::new(
            &names(),
            1,
            1_795_000_000_123_000_000,
            Some(40_000_000),
            Kind::Metrics,
            json!({"z": 1.5, "a": [1, 2], "é": "ü"}),
            Some(GENESIS.into()),
        )
        .unwrap();
        let bytes = String::from_utf8(r.hashed_bytes().unwrap()).unwrap();
        // Members sorted, no whitespace, no hash member.
        assert!(bytes.starts_with(r#"{"body":{"a":[1,2],"z":1.5,"é":"ü"},"capture_time":"#));
        assert!(!bytes.contains("\"hash\""));
        assert_eq!(r.hash, sha256_hex(bytes.as_bytes()));
        // Decoding the published bytes gives the same record and the same hash.
        let back = Record::from_slice(&r.to_vec()).unwrap();
        assert_eq!(back.compute_hash().unwrap(), r.hash);
    }

    #[test]
    fn malformed_records_are_refused_with_a_reason() {
        let good = Record::new(
            &names(),
            3,
            0,
            None,
            Kind::Event,
            json!({}),
            Some(GENESIS.into()),
        )
        .unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&good.to_vec()).unwrap();
        let cases: Vec<(&str, serde_json::Value)> = vec![
            ("v", json!(2)),
            ("tenant", json!("a/b")),
            ("capture_time", json!("yesterday")),
            ("prev", json!("xyz")),
            ("prev", json!(null)),
            ("body", json!([1])),
            ("seq", json!(0)),
            ("seq", json!(-1)),
            ("kind", json!("video")),
        ];
        for (field, bad) in cases {
            let saved = v[field].clone();
            v[field] = bad.clone();
            let err = Record::from_slice(&serde_json::to_vec(&v).unwrap());
            assert!(err.is_err(), "{field} = {bad} accepted");
            v[field] = saved;
        }
        v["extra"] = json!(1);
        assert!(Record::from_slice(&serde_json::to_vec(&v).unwrap()).is_err());
        assert!(Record::from_slice(b"\xff\x00garbage").is_err());
    }

    #[test]
    fn detections_stay_outside_the_chain() {
        let r = Record::new(&names(), 1, 0, None, Kind::Detections, json!({}), None).unwrap();
        assert_eq!(r.prev, None);
        assert!(
            Record::new(
                &names(),
                1,
                0,
                None,
                Kind::Detections,
                json!({}),
                Some(GENESIS.into())
            )
            .is_err()
        );
    }

    #[test]
    fn pts_beyond_json_precision_becomes_null() {
        let r = Record::new(
            &names(),
            1,
            0,
            Some(MAX_SAFE_INTEGER + 1),
            Kind::Event,
            json!({}),
            Some(GENESIS.into()),
        )
        .unwrap();
        assert_eq!(r.pts, None);
    }

    #[test]
    fn times_are_utc_nanoseconds() {
        assert_eq!(format_time(1_500_000_000), "1970-01-01T00:00:01.500000000Z");
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    /// The JSON Schema in schema/ and this code describe the same record.
    #[test]
    fn the_published_schema_matches_the_code() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schema/record.schema.json"
        ))
        .unwrap();
        let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let record = Record::new(
            &Names::new("t", "s", "d", "x").unwrap(),
            1,
            0,
            None,
            Kind::Event,
            serde_json::json!({}),
            Some(GENESIS.into()),
        )
        .unwrap();
        let value = serde_json::to_value(&record).unwrap();
        let fields: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let (mut a, mut b) = (required.clone(), fields);
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
        let kinds: Vec<&str> = schema["properties"]["kind"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(kinds, Kind::ALL.map(Kind::as_str).to_vec());
        let checkpoint: Vec<&str> = schema["$defs"]["checkpoint"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let cp = crate::DeviceKey::from_seed([1; 32]).sign_checkpoint("t", "d", "x", 1, GENESIS);
        let cp_value = serde_json::to_value(cp).unwrap();
        let mut cp_fields: Vec<&str> = cp_value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut cp_required = checkpoint;
        cp_fields.sort_unstable();
        cp_required.sort_unstable();
        assert_eq!(cp_required, cp_fields);
    }
}
