// SPDX-License-Identifier: MIT OR Apache-2.0
//! Retention per kind: a sweeper deletes records older than their kind's limit. A chained
//! record's index entry keeps its hash (a tombstone), so what remains still verifies; leading
//! tombstones are folded into the unit's cut state.

use std::collections::BTreeMap;
use std::time::Duration;

use veil_wire::Kind;

use crate::store::{Entry, Store, seq_key, series_prefix};

/// Deletes what is older than its kind's limit at `now_ns`; returns how many records.
pub fn sweep(store: &Store, keep: &BTreeMap<Kind, Duration>, now_ns: u64) -> anyhow::Result<u64> {
    let mut deleted = 0;
    for tenant in store.tenants() {
        let records = store.tree("records", &tenant)?;
        let index = store.tree("index", &tenant)?;
        for (_, _, state) in store.units(&tenant)? {
            let unit = store.unit_of(&tenant, &state);
            let mut cut = store.cut(&tenant, &unit)?;
            for (&kind, age) in keep {
                let cutoff = now_ns.saturating_sub(age.as_nanos() as u64);
                let prefix = series_prefix(&unit, kind.as_str());
                let mut end = prefix.clone();
                end.extend_from_slice(&cutoff.to_be_bytes());
                for item in records.range(prefix.clone()..end) {
                    let (key, _) = item?;
                    let seq = u64::from_be_bytes(key[key.len() - 8..].try_into()?);
                    if kind.chained() {
                        let ikey = seq_key(&unit, seq);
                        if let Some(entry) = index.get(&ikey)?.and_then(|v| Entry::decode(&v)) {
                            index.insert(ikey, Entry::Deleted(entry.hash()).encode())?;
                        }
                    }
                    records.remove(key)?;
                    deleted += 1;
                }
            }
            // Fold leading tombstones into the cut: verification resumes after them. The state
            // is saved before the tombstones go, so a crash in between leaves both consistent.
            let mut leading = Vec::new();
            for item in index.scan_prefix(unit) {
                let (key, value) = item?;
                let Some(Entry::Deleted(hash)) = Entry::decode(&value) else {
                    break;
                };
                let seq = u64::from_be_bytes(key[key.len() - 8..].try_into()?);
                cut.next_seq = seq + 1;
                cut.head = hex::encode(hash);
                cut.key.clone_from(&state.chain.key);
                leading.push(key);
            }
            if !leading.is_empty() {
                store.set_cut(&tenant, &unit, &cut)?;
                for key in leading {
                    index.remove(key)?;
                }
            }
        }
    }
    store.flush()?;
    Ok(deleted)
}
