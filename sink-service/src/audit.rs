// SPDX-License-Identifier: MIT OR Apache-2.0
//! The service's own audit log: who did what, from where, with which outcome — authentications,
//! key operations, exports, webhook and configuration changes.
//!
//! Entries are hash-chained like the device records (`hash` = SHA-256 of the RFC 8785 JSON of
//! the entry without `hash`, `prev` = the previous entry's hash), sealed with the service's data
//! key in the tree `audit/.service` under their sequence number, and checked by `verify`.
//! Retention deletes the oldest entries and keeps the last deleted one's hash as the cut, so the
//! rest still verifies. The SIEM forwarders (`siem`) read the log from a cursor of their own.

use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use veil_wire::GENESIS;
use veil_wire::record::{canonical_json, format_time, sha256_hex};

use crate::store::{SERVICE_TENANT, Store, now_ns};

const TREE: &str = "audit";
const CUT: &[u8] = b"audit-cut";

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub v: u32,
    pub seq: u64,
    pub time: String,
    /// `key:<id>` (an API key), `cli` (the command line), `service`, or `anonymous`.
    pub actor: String,
    /// The tenant acted on, when known.
    pub tenant: Option<String>,
    pub source_ip: Option<String>,
    /// `auth.success`, `auth.failure`, `key.create`, `key.rotate`, `key.revoke`, `export`,
    /// `webhook.create`, `webhook.delete`, `integrity.acknowledge`, `config.load`,
    /// `rate.limited`, `audit.sweep`.
    pub action: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    pub detail: Value,
    pub prev: String,
    pub hash: String,
}

impl AuditEntry {
    pub fn compute_hash(&self) -> anyhow::Result<String> {
        let mut value = serde_json::to_value(self)?;
        if let Some(map) = value.as_object_mut() {
            map.remove("hash");
        }
        Ok(sha256_hex(
            &canonical_json(&value).map_err(|e| anyhow::anyhow!("{e}"))?,
        ))
    }
}

/// What an action is, before it gets its place in the chain.
#[derive(Debug, Clone)]
pub struct Action<'a> {
    pub actor: &'a str,
    pub tenant: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub action: &'a str,
    pub outcome: &'a str,
    pub detail: Value,
}

/// Where the chain stands after the last entry deleted by retention.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cut {
    /// The last deleted entry's seq (0: none deleted).
    pub seq: u64,
    pub hash: String,
}

/// The appender: one chain for the whole service.
pub struct AuditLog {
    head: Mutex<(u64, String)>,
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

impl AuditLog {
    /// Picks the chain up where the store left it.
    pub fn open(store: &Store) -> anyhow::Result<AuditLog> {
        let tree = store.tree(TREE, SERVICE_TENANT)?;
        let head = match tree.last()? {
            Some((k, _)) => {
                let bytes = store
                    .get(SERVICE_TENANT, TREE, &k)?
                    .context("the last audit entry is missing")?;
                let last: AuditEntry =
                    serde_json::from_slice(&bytes).context("the last audit entry")?;
                (last.seq, last.hash)
            }
            None => {
                let cut = cut(store)?;
                let hash = if cut.seq == 0 {
                    GENESIS.to_owned()
                } else {
                    cut.hash
                };
                (cut.seq, hash)
            }
        };
        Ok(AuditLog {
            head: Mutex::new(head),
        })
    }

    /// The sequence number of the newest entry (0: none yet).
    pub fn head_seq(&self) -> u64 {
        self.head.lock().map(|h| h.0).unwrap_or(0)
    }

    /// Appends an entry (durable at the store's next flush; `flush` for the important ones).
    pub fn record(&self, store: &Store, action: Action<'_>) -> anyhow::Result<AuditEntry> {
        let mut head = self
            .head
            .lock()
            .map_err(|_| anyhow::anyhow!("audit log poisoned"))?;
        let mut entry = AuditEntry {
            v: 1,
            seq: head.0 + 1,
            time: format_time(now_ns()),
            actor: action.actor.to_owned(),
            tenant: action.tenant.map(str::to_owned),
            source_ip: action.source_ip.map(str::to_owned),
            action: action.action.to_owned(),
            outcome: action.outcome.to_owned(),
            detail: action.detail,
            prev: head.1.clone(),
            hash: String::new(),
        };
        entry.hash = entry.compute_hash()?;
        store.put(
            SERVICE_TENANT,
            TREE,
            &key(entry.seq),
            &serde_json::to_vec(&entry)?,
        )?;
        *head = (entry.seq, entry.hash.clone());
        Ok(entry)
    }

    /// Appends and logs a failure to append (the action itself goes on: an audit log that
    /// cannot be written is reported on stderr, not turned into a denial of service).
    pub fn note(&self, store: &Store, action: Action<'_>) {
        if let Err(e) = self.record(store, action) {
            tracing::error!("audit log: {e:#}");
        }
    }
}

pub fn cut(store: &Store) -> anyhow::Result<Cut> {
    match store.get(SERVICE_TENANT, "meta-sealed", CUT)? {
        Some(v) => Ok(serde_json::from_slice(&v)?),
        None => Ok(Cut::default()),
    }
}

/// Entries with `seq > after`, at most `limit`, optionally only one tenant's.
pub fn entries(
    store: &Store,
    after: u64,
    limit: usize,
    tenant: Option<&str>,
) -> anyhow::Result<Vec<AuditEntry>> {
    let tree = store.tree(TREE, SERVICE_TENANT)?;
    let mut out = Vec::new();
    for item in tree.range(key(after.saturating_add(1))..) {
        if out.len() >= limit {
            break;
        }
        let (k, _) = item?;
        let Some(bytes) = store.get(SERVICE_TENANT, TREE, &k)? else {
            continue;
        };
        let entry: AuditEntry = serde_json::from_slice(&bytes)?;
        if tenant.is_none_or(|t| entry.tenant.as_deref() == Some(t)) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// What `verify` says about the audit log.
#[derive(Debug, Default, Serialize)]
pub struct AuditReport {
    pub entries: u64,
    /// The last entry deleted by retention (the chain is verified from there).
    pub cut: u64,
    pub errors: Vec<String>,
}

/// Checks every entry: it opens (not altered, not moved), lies under its own seq, has the
/// right hash, and follows the one before it.
pub fn verify(store: &Store) -> anyhow::Result<AuditReport> {
    let cut = cut(store)?;
    let mut report = AuditReport {
        cut: cut.seq,
        ..Default::default()
    };
    let (mut expect_seq, mut prev) = if cut.seq == 0 {
        (1, GENESIS.to_owned())
    } else {
        (cut.seq + 1, cut.hash)
    };
    let tree = store.tree(TREE, SERVICE_TENANT)?;
    for item in tree.iter() {
        let (k, sealed) = item?;
        let at = crate::store::key_seq(&k);
        if at <= cut.seq {
            // Deleted by retention, the crash came between the cut and the removal.
            continue;
        }
        let Some(bytes) = store.open_value(SERVICE_TENANT, TREE, &k, &sealed)? else {
            report.errors.push(format!(
                "audit log seq {at}: does not decrypt (altered or moved)"
            ));
            return Ok(report);
        };
        let entry: AuditEntry = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                report
                    .errors
                    .push(format!("audit log seq {at}: not an entry: {e}"));
                return Ok(report);
            }
        };
        report.entries += 1;
        let problem = if entry.seq != at || entry.seq != expect_seq {
            Some(format!("expected seq {expect_seq}, found {}", entry.seq))
        } else if entry.prev != prev {
            Some("prev does not match the entry before".to_owned())
        } else if entry.compute_hash()? != entry.hash {
            Some("hash does not match its content (altered)".to_owned())
        } else {
            None
        };
        if let Some(p) = problem {
            report.errors.push(format!("audit log seq {at}: {p}"));
            return Ok(report);
        }
        expect_seq = entry.seq + 1;
        prev = entry.hash;
    }
    Ok(report)
}

/// Deletes entries older than `older_than_ns` (capture of `time`), oldest first, moving the cut.
/// Entries a SIEM forwarder has not sent yet are kept.
pub fn sweep(store: &Store, older_than_ns: u64, keep_from_seq: u64) -> anyhow::Result<u64> {
    let tree = store.tree(TREE, SERVICE_TENANT)?;
    let mut last: Option<AuditEntry> = None;
    let mut n = 0;
    for item in tree.iter() {
        let (k, _) = item?;
        let Some(bytes) = store.get(SERVICE_TENANT, TREE, &k)? else {
            break;
        };
        let entry: AuditEntry = serde_json::from_slice(&bytes)?;
        let time = veil_wire::record::parse_time(&entry.time).unwrap_or(u64::MAX);
        if time >= older_than_ns || entry.seq >= keep_from_seq {
            break;
        }
        // The cut first: a crash in between leaves an entry before the cut, which verify skips.
        let cut = Cut {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
        store.put(
            SERVICE_TENANT,
            "meta-sealed",
            CUT,
            &serde_json::to_vec(&cut)?,
        )?;
        tree.remove(&k)?;
        n += 1;
        last = Some(entry);
    }
    if last.is_some() {
        store.flush()?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, prev: &str) -> AuditEntry {
        let mut e = AuditEntry {
            v: 1,
            seq,
            time: "2026-11-23T10:00:00.000000000Z".into(),
            actor: "key:0123456789abcdef".into(),
            tenant: Some("acme".into()),
            source_ip: Some("127.0.0.1".into()),
            action: "export".into(),
            outcome: "success".into(),
            detail: serde_json::json!({"kind": "metrics"}),
            prev: prev.into(),
            hash: String::new(),
        };
        e.hash = e.compute_hash().unwrap();
        e
    }

    #[test]
    fn the_hash_covers_every_field_but_itself() {
        let e = entry(1, GENESIS);
        assert_eq!(e.hash.len(), 64);
        let mut other = e.clone();
        other.outcome = "failure".into();
        assert_ne!(other.compute_hash().unwrap(), e.hash);
        let mut other = e.clone();
        other.prev = entry(9, GENESIS).hash;
        assert_ne!(other.compute_hash().unwrap(), e.hash);
        let mut same = e.clone();
        same.hash = "x".into();
        assert_eq!(same.compute_hash().unwrap(), e.hash);
    }
}
