// SPDX-License-Identifier: MIT OR Apache-2.0
//! Verifying one chain unit's records in order.
//!
//! The verifier holds the chain's state between records ([`ChainState`], small and
//! serializable, so a store can keep it at a retention cut and go on verifying from there).
//! Each record must: hash to its `hash`, be the next sequence number, point with `prev` at the
//! previous record's hash, belong to the same chain unit; a checkpoint must also vouch for that
//! previous record with a valid signature by the chain's key (pinned, or the first key seen).

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, parse_public_key};
use crate::names::ChainUnit;
use crate::record::{GENESIS, Kind, Record};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainState {
    /// Sequence number the next record must have.
    pub next_seq: u64,
    /// Hash of the last verified record ([`GENESIS`] before the first).
    pub head: String,
    /// The device key the checkpoints are signed with, once seen or pinned (hex).
    pub key: Option<String>,
    /// Sequence number of the last record a verified checkpoint covers.
    pub signed_upto: u64,
}

impl Default for ChainState {
    fn default() -> Self {
        ChainState {
            next_seq: 1,
            head: GENESIS.into(),
            key: None,
            signed_upto: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {seq}: {reason}")]
pub struct VerifyError {
    pub seq: u64,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct ChainVerifier {
    unit: Option<ChainUnit>,
    state: ChainState,
}

impl ChainVerifier {
    pub fn new() -> Self {
        ChainVerifier {
            unit: None,
            state: ChainState::default(),
        }
    }

    /// Accepts checkpoints only when signed by this key (64 hex digits).
    pub fn with_pinned_key(key: &str) -> Self {
        ChainVerifier {
            unit: None,
            state: ChainState {
                key: Some(key.to_owned()),
                ..ChainState::default()
            },
        }
    }

    /// Goes on from a saved state (e.g. the chain state kept at a retention cut).
    pub fn resume(unit: ChainUnit, state: ChainState) -> Self {
        ChainVerifier {
            unit: Some(unit),
            state,
        }
    }

    pub fn state(&self) -> &ChainState {
        &self.state
    }

    /// Checks `record` as the next one; on success it becomes the head.
    pub fn push(&mut self, record: &Record) -> Result<(), VerifyError> {
        let fail = |reason: String| VerifyError {
            seq: record.seq,
            reason,
        };
        if !record.kind.chained() {
            return Err(fail(format!(
                "{} records are outside the chain",
                record.kind.as_str()
            )));
        }
        let unit = ChainUnit {
            tenant: record.tenant.clone(),
            device: record.device.clone(),
            stream: record.stream.clone(),
        };
        if let Some(expected) = &self.unit
            && *expected != unit
        {
            return Err(fail(format!("belongs to {unit}, not to {expected}")));
        }
        match record.compute_hash() {
            Ok(h) if h == record.hash => {}
            Ok(_) => return Err(fail("hash does not match the record's content".into())),
            Err(e) => return Err(fail(e.to_string())),
        }
        if record.seq != self.state.next_seq {
            let what = if record.seq > self.state.next_seq {
                format!(
                    "gap: expected {}, records {}..{} missing",
                    self.state.next_seq,
                    self.state.next_seq,
                    record.seq - 1
                )
            } else {
                format!("out of order or repeated: expected {}", self.state.next_seq)
            };
            return Err(fail(what));
        }
        if record.prev.as_deref() != Some(self.state.head.as_str()) {
            return Err(fail("prev is not the hash of the previous record".into()));
        }
        if record.kind == Kind::Checkpoint {
            self.check_checkpoint(record, &unit).map_err(fail)?;
        }
        self.unit = Some(unit);
        self.state.next_seq = record.seq + 1;
        self.state.head = record.hash.clone();
        Ok(())
    }

    /// Goes on past a record known only by its hash (deleted by retention, or set aside): the
    /// next record must point at `hash`.
    pub fn skip(&mut self, seq: u64, hash: &str) -> Result<(), VerifyError> {
        if seq != self.state.next_seq {
            return Err(VerifyError {
                seq,
                reason: format!("expected {}", self.state.next_seq),
            });
        }
        self.state.next_seq = seq + 1;
        self.state.head = hash.to_owned();
        Ok(())
    }

    fn check_checkpoint(&mut self, record: &Record, unit: &ChainUnit) -> Result<(), String> {
        let cp: Checkpoint = serde_json::from_value(record.body.clone())
            .map_err(|e| format!("checkpoint body: {e}"))?;
        if cp.tenant != unit.tenant || cp.device != unit.device || cp.stream != unit.stream {
            return Err("checkpoint names another chain unit".into());
        }
        if cp.seq + 1 != record.seq || Some(&cp.head) != record.prev.as_ref() {
            return Err("checkpoint does not vouch for the record before it".into());
        }
        cp.verify()?;
        match &self.state.key {
            Some(key) if parse_public_key(key)? != parse_public_key(&cp.public_key)? => {
                return Err("checkpoint signed by another key than the chain's".into());
            }
            Some(_) => {}
            None => self.state.key = Some(cp.public_key.clone()),
        }
        self.state.signed_upto = cp.seq;
        Ok(())
    }
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::DeviceKey;
    use crate::names::Names;
    use serde_json::json;

    /// A chain of `n` records with a checkpoint after every third.
    fn chain(n: u64, key: &DeviceKey) -> Vec<Record> {
        let names = Names::new("acme", "s", "cam", "main").unwrap();
        let mut out: Vec<Record> = Vec::new();
        let mut head = GENESIS.to_string();
        for seq in 1..=n {
            let (kind, body) = if seq % 4 == 0 {
                let cp = key.sign_checkpoint("acme", "cam", "main", seq - 1, &head);
                (Kind::Checkpoint, serde_json::to_value(cp).unwrap())
            } else {
                (Kind::Metrics, json!({"n": seq}))
            };
            let r =
                Record::new(&names, seq, seq * 1000, Some(seq), kind, body, Some(head)).unwrap();
            head = r.hash.clone();
            out.push(r);
        }
        out
    }

    fn verify_all(records: &[Record], v: &mut ChainVerifier) -> Result<(), VerifyError> {
        records.iter().try_for_each(|r| v.push(r))
    }

    #[test]
    fn an_intact_chain_verifies_and_is_signed() {
        let key = DeviceKey::from_seed([1; 32]);
        let mut v = ChainVerifier::with_pinned_key(&key.public_hex());
        verify_all(&chain(12, &key), &mut v).unwrap();
        assert_eq!(v.state().next_seq, 13);
        assert_eq!(v.state().signed_upto, 11);
    }

    #[test]
    fn altered_removed_or_reordered_records_fail_naming_the_sequence() {
        let key = DeviceKey::from_seed([1; 32]);
        let good = chain(10, &key);

        let mut altered = good.clone();
        altered[4].body = json!({"n": 999});
        let err = verify_all(&altered, &mut ChainVerifier::new()).unwrap_err();
        assert_eq!(err.seq, 5);
        assert!(err.reason.contains("hash"), "{err}");

        // Re-hashing the altered record does not help: the next one's prev no longer matches.
        altered[4].hash = altered[4].compute_hash().unwrap();
        let err = verify_all(&altered, &mut ChainVerifier::new()).unwrap_err();
        assert_eq!(err.seq, 6);

        let mut removed = good.clone();
        removed.remove(6);
        let err = verify_all(&removed, &mut ChainVerifier::new()).unwrap_err();
        assert_eq!(err.seq, 8);
        assert!(err.to_string().contains("gap: expected 7"), "{err}");

        let mut reordered = good.clone();
        reordered.swap(2, 3);
        let err = verify_all(&reordered, &mut ChainVerifier::new()).unwrap_err();
        assert_eq!(err.seq, 4);
    }

    #[test]
    fn checkpoints_by_another_key_or_forged_fail() {
        let key = DeviceKey::from_seed([1; 32]);
        let other = DeviceKey::from_seed([2; 32]);
        let mut v = ChainVerifier::with_pinned_key(&other.public_hex());
        let err = verify_all(&chain(5, &key), &mut v).unwrap_err();
        assert_eq!(err.seq, 4);
        assert!(err.reason.contains("another key"), "{err}");

        // A checkpoint whose signature was made over other content.
        let mut forged = chain(5, &key);
        let mut cp: Checkpoint = serde_json::from_value(forged[3].body.clone()).unwrap();
        cp.seq = 2;
        cp.signature = key
            .sign_checkpoint("acme", "cam", "main", 2, &cp.head)
            .signature;
        cp.seq = 3;
        forged[3].body = serde_json::to_value(cp).unwrap();
        forged[3].hash = forged[3].compute_hash().unwrap();
        let err = verify_all(&forged[..4], &mut ChainVerifier::new()).unwrap_err();
        assert_eq!(
            (err.seq, err.reason.as_str()),
            (4, "bad checkpoint signature")
        );
    }

    #[test]
    fn verification_resumes_from_a_saved_state() {
        let key = DeviceKey::from_seed([1; 32]);
        let records = chain(9, &key);
        let mut first = ChainVerifier::new();
        verify_all(&records[..5], &mut first).unwrap();
        let unit = records[0].names().unwrap().unit();
        let mut second = ChainVerifier::resume(unit, first.state().clone());
        verify_all(&records[5..], &mut second).unwrap();
        // A record of another chain unit is refused.
        let stranger = Names::new("acme", "s", "cam", "side").unwrap();
        let r = Record::new(
            &stranger,
            10,
            0,
            None,
            Kind::Event,
            json!({}),
            Some(second.state().head.clone()),
        )
        .unwrap();
        assert!(second.push(&r).unwrap_err().reason.contains("belongs to"));
    }
}
