// SPDX-License-Identifier: MIT OR Apache-2.0
//! Re-checks the whole store: every sealed value opens where it lies (tenant, tree and key are
//! bound into its encryption), every record matches its key, and every chain verifies in
//! sequence order from its retention cut, across records deleted by retention.

use serde::Serialize;
use veil_wire::{ChainUnit, ChainVerifier, Record};

use crate::store::{Entry, Store, parse_record_key};

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub tenants: usize,
    pub units: usize,
    /// Valid records (the ones served), detections included.
    pub records: u64,
    /// Chained and verified, not yet vouched for by a checkpoint (not served).
    pub staged: u64,
    /// Deleted by retention (their hashes keep the chains verifiable).
    pub deleted: u64,
    /// Set aside: the chain held, the signing key was not the tenant's.
    pub set_aside: u64,
    pub integrity_events: u64,
    pub quarantined: u64,
    /// Records written after the last commit by a service that then crashed: not
    /// acknowledged, not valid, rewritten when the device sends them again.
    pub uncommitted: u64,
    /// Per chain unit (`tenant/device/stream`): the sequence number verified up to.
    pub chains: std::collections::BTreeMap<String, u64>,
    /// The service's own audit log (its hash chain).
    pub audit: crate::audit::AuditReport,
    pub errors: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

pub fn verify(store: &Store) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let tenants = store.registered_tenants().unwrap_or_else(|e| {
        report.errors.push(format!("the tenant registry: {e:#}"));
        store.tenants()
    });
    for tenant in tenants {
        check_tenant(store, &tenant, &mut report)?;
    }
    match store.quarantined() {
        Ok(q) => report.quarantined = q.len() as u64,
        Err(e) => report.errors.push(format!("quarantine: {e}")),
    }
    report.audit = crate::audit::verify(store)?;
    report.errors.extend(report.audit.errors.iter().cloned());
    Ok(report)
}

/// The checks of one tenant's records, chains and integrity events, for that tenant's admin
/// (over Zenoh): nothing of another tenant, the quarantine or the service's audit log (which
/// name other tenants) is in it.
pub fn verify_tenant(store: &Store, tenant: &str) -> anyhow::Result<Report> {
    let mut report = Report::default();
    if store.tenants().iter().any(|t| t == tenant) {
        check_tenant(store, tenant, &mut report)?;
    }
    Ok(report)
}

fn check_tenant(store: &Store, tenant: &str, report: &mut Report) -> anyhow::Result<()> {
    report.tenants += 1;
    check_records(store, tenant, report)?;
    for (device, stream, state) in store.units(tenant)? {
        report.units += 1;
        check_chain(store, tenant, &device, &stream, &state, report)?;
    }
    match store.events(tenant) {
        Ok(events) => report.integrity_events += events.len() as u64,
        Err(e) => report
            .errors
            .push(format!("{tenant}: integrity events: {e}")),
    }
    Ok(())
}

/// Whether a record is of the unit its key names: the unit's stored names, or, for a unit
/// without a chain state (per-frame boxes only), one of its device's chain epochs.
fn belongs(
    store: &Store,
    tenant: &str,
    r: &Record,
    unit: &crate::store::UnitId,
    state: Option<&crate::store::UnitState>,
) -> bool {
    match state {
        Some(s) => s.device == r.device && s.stream == r.stream,
        None => {
            let epochs = crate::devices::get(store, tenant, &r.device)
                .ok()
                .flatten()
                .map_or(0, |e| e.chain_epoch);
            (0..=epochs).any(|e| store.unit_id(tenant, &r.device, &r.stream, e) == *unit)
        }
    }
}

/// Every value of `records/<tenant>` opens and is the record its key says.
fn check_records(store: &Store, tenant: &str, report: &mut Report) -> anyhow::Result<()> {
    let states: std::collections::HashMap<crate::store::UnitId, crate::store::UnitState> = store
        .units(tenant)?
        .into_iter()
        .map(|(_, _, st)| (store.unit_of(tenant, &st), st))
        .collect();
    for item in store.tree("records", tenant)?.iter() {
        let (key, sealed) = item?;
        let Some(at) = parse_record_key(&key) else {
            report
                .errors
                .push(format!("{tenant}: a records key that is not one"));
            continue;
        };
        // The key names no stream: the unit's names, else its id.
        let unit_name = states.get(&at.unit).map_or_else(
            || hex::encode(at.unit),
            |s| format!("{}/{}/{}", s.site, s.device, s.stream),
        );
        let name = format!("{tenant}/{unit_name}/{} seq {}", at.kind, at.seq);
        let Some(plain) = store.open_value(tenant, "records", &key, &sealed)? else {
            report.errors.push(format!(
                "{name}: does not decrypt (altered, or moved from another tenant or key)"
            ));
            continue;
        };
        match Record::from_slice(&plain) {
            Ok(r)
                if r.tenant == tenant
                    && belongs(store, tenant, &r, &at.unit, states.get(&at.unit))
                    && r.kind.as_str() == at.kind
                    && r.seq == at.seq
                    && crate::ingest::capture_ns(&r) == at.capture_ns =>
            {
                let seq = at.seq;
                let state = states.get(&at.unit);
                if r.compute_hash().ok().as_deref() != Some(r.hash.as_str()) {
                    report
                        .errors
                        .push(format!("{name}: hash does not match the content"));
                } else if crate::store::is_valid(r.kind, seq, state) {
                    report.records += 1;
                } else {
                    report.staged += 1;
                }
            }
            Ok(_) => report
                .errors
                .push(format!("{name}: the record is not the one its key names")),
            Err(e) => report.errors.push(format!("{name}: {e}")),
        }
    }
    Ok(())
}

fn check_chain(
    store: &Store,
    tenant: &str,
    device: &str,
    stream: &str,
    state: &crate::store::UnitState,
    report: &mut Report,
) -> anyhow::Result<()> {
    let unit = ChainUnit {
        tenant: tenant.into(),
        device: device.into(),
        stream: stream.into(),
    };
    // A later chain epoch of the same stream is named with its number.
    let name = match state.epoch {
        0 => format!("{tenant}/{device}/{stream}"),
        n => format!("{tenant}/{device}/{stream}#{n}"),
    };
    let uid = store.unit_of(tenant, state);
    let mut verifier = ChainVerifier::resume(unit.clone(), store.cut(tenant, &uid)?);
    for item in store.tree("index", tenant)?.scan_prefix(uid) {
        let (key, value) = item?;
        let seq = crate::store::key_seq(&key);
        if seq >= state.chain.next_seq {
            // Written by a group a crash cut short, before its commit: never acknowledged, so
            // the device sends it again and it is taken (and rewritten) then.
            report.uncommitted += 1;
            continue;
        }
        let fail = |report: &mut Report, what: String| {
            report.errors.push(format!("{name} record {seq}: {what}"))
        };
        let Some(entry) = Entry::decode(&value) else {
            fail(report, "damaged index entry".into());
            return Ok(());
        };
        let record = match &entry {
            Entry::Live(_, rkey) => store.get(tenant, "records", rkey),
            Entry::Deleted(h) | Entry::Quarantined(h) => {
                if matches!(entry, Entry::Deleted(_)) {
                    report.deleted += 1;
                } else {
                    report.set_aside += 1;
                }
                if let Err(e) = verifier.skip(seq, &hex::encode(h)) {
                    fail(report, e.reason);
                    return Ok(());
                }
                continue;
            }
        };
        let record = match record {
            Ok(Some(bytes)) => Record::from_slice(&bytes).map_err(|e| e.to_string()),
            Ok(None) => Err("indexed but missing".to_string()),
            Err(e) => Err(e.to_string()),
        };
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                fail(report, e);
                return Ok(());
            }
        };
        if hex::encode(entry.hash()) != record.hash {
            fail(
                report,
                "the index and the record disagree on its hash".into(),
            );
            return Ok(());
        }
        // A re-key (`devices rekey`): its first checkpoint under the new key carries the chain
        // on.
        if record.kind == veil_wire::Kind::Checkpoint
            && let Some(change) = state.key_changes.iter().find(|c| {
                record.seq >= c.from_seq
                    && record.body.get("public_key").and_then(|k| k.as_str()) == Some(&c.key)
            })
            && verifier.state().key.as_deref() != Some(change.key.as_str())
        {
            let mut rekeyed = verifier.state().clone();
            rekeyed.key = Some(change.key.clone());
            verifier = ChainVerifier::resume(unit.clone(), rekeyed);
        }
        if let Err(e) = verifier.push(&record) {
            report.errors.push(format!("{name} {e}"));
            return Ok(());
        }
    }
    report
        .chains
        .insert(name.clone(), verifier.state().next_seq - 1);
    if verifier.state().next_seq != state.chain.next_seq {
        report.errors.push(format!(
            "{name}: the chain state says {} records, the index holds up to {}",
            state.chain.next_seq - 1,
            verifier.state().next_seq - 1
        ));
    }
    Ok(())
}
