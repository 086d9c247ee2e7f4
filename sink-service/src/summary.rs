// SPDX-License-Identifier: MIT OR Apache-2.0
//! A readable summary of what is stored: per stream, the records by kind, the audience windows
//! added up, the models that ran, and the integrity status.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Deserialize;
use veil_wire::event::{DwellBand, MetricsWindow};
use veil_wire::{Kind, Record};

use crate::store::{Store, UnitState, is_valid, key_seq, series_prefix};

/// The valid records of one series.
fn stored(
    store: &Store,
    tenant: &str,
    state: &UnitState,
    kind: Kind,
) -> anyhow::Result<Vec<Record>> {
    let mut out = Vec::new();
    let prefix = series_prefix(&store.unit_of(tenant, state), kind.as_str());
    for item in store.tree("records", tenant)?.scan_prefix(prefix) {
        let (key, _) = item?;
        if !is_valid(kind, key_seq(&key), Some(state)) {
            continue;
        }
        if let Some(bytes) = store.get(tenant, "records", &key)? {
            out.push(Record::from_slice(&bytes)?);
        }
    }
    Ok(out)
}

pub fn summary(store: &Store) -> anyhow::Result<String> {
    let mut out = String::new();
    for tenant in store.tenants() {
        for (device, stream, state) in store.units(&tenant)? {
            let site = &state.site;
            writeln!(
                out,
                "tenant {tenant} · site {site} · device {device} · stream {stream}"
            )?;
            let mut counts = BTreeMap::new();
            for kind in Kind::ALL {
                let n = stored(store, &tenant, &state, kind)?.len();
                if n > 0 {
                    counts.insert(kind.as_str(), n);
                }
            }
            writeln!(
                out,
                "  records: {} (chain at {}, signed up to {}): {counts:?}",
                counts.values().sum::<usize>(),
                state.chain.next_seq - 1,
                state.chain.signed_upto
            )?;
            let windows = stored(store, &tenant, &state, Kind::Metrics)?;
            if let (Some(first), Some(last)) = (windows.first(), windows.last()) {
                let (mut ots, mut watchers, mut attention, mut events) =
                    (0u64, 0u64, 0.0f64, 0usize);
                let mut bands: BTreeMap<String, u64> = BTreeMap::new();
                let mut zones: BTreeMap<String, u64> = BTreeMap::new();
                let mut lines: BTreeMap<String, (u64, u64)> = BTreeMap::new();
                for w in windows
                    .iter()
                    .filter_map(|w| MetricsWindow::deserialize(&w.body).ok())
                {
                    ots += w.opportunities_to_see as u64;
                    watchers += w.watchers as u64;
                    attention += w.attention_time_s;
                    events += w.attention_events.len();
                    for (band, n) in &w.dwell_bands {
                        *bands.entry(band.clone()).or_default() += *n as u64;
                    }
                    for (zone, z) in &w.zones {
                        *zones.entry(zone.clone()).or_default() += z.visitors as u64;
                    }
                    for (line, l) in &w.lines {
                        let e = lines.entry(line.clone()).or_default();
                        e.0 += l.forward as u64;
                        e.1 += l.backward as u64;
                    }
                }
                writeln!(
                    out,
                    "  windows: {} from {} to {}",
                    windows.len(),
                    first.body["window_start"].as_str().unwrap_or("?"),
                    last.body["window_end"].as_str().unwrap_or("?")
                )?;
                writeln!(
                    out,
                    "  opportunities to see: {ots}, watchers: {watchers}, attention events: {events} ({attention:.1} s)"
                )?;
                let bands: Vec<String> = DwellBand::ALL
                    .iter()
                    .map(|b| {
                        format!(
                            "{} {}",
                            b.label(),
                            bands.get(b.label()).copied().unwrap_or(0)
                        )
                    })
                    .collect();
                writeln!(out, "  dwell bands: {}", bands.join(", "))?;
                if !zones.is_empty() {
                    writeln!(
                        out,
                        "  zone visitors: {}",
                        zones
                            .iter()
                            .map(|(z, n)| format!("{z} {n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )?;
                }
                if !lines.is_empty() {
                    writeln!(
                        out,
                        "  line crossings (forward/backward): {}",
                        lines
                            .iter()
                            .map(|(l, (f, b))| format!("{l} {f}/{b}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )?;
                }
            }
            if let Some(config) = stored(store, &tenant, &state, Kind::Config)?.last() {
                for f in config.body["files"].as_array().into_iter().flatten() {
                    let sha = f["sha256"].as_str().unwrap_or("");
                    writeln!(
                        out,
                        "  ran {} = {} (sha256 {}…)",
                        f["property"].as_str().unwrap_or("?"),
                        f["path"]
                            .as_str()
                            .unwrap_or("?")
                            .rsplit('/')
                            .next()
                            .unwrap_or(""),
                        &sha[..sha.len().min(16)]
                    )?;
                }
            }
        }
    }
    let report = crate::verify::verify(store)?;
    writeln!(
        out,
        "integrity: {} — {} valid records, {} waiting for a checkpoint, {} deleted by retention, {} set aside, {} integrity events, {} quarantined",
        if report.ok() { "verified" } else { "FAILED" },
        report.records,
        report.staged,
        report.deleted,
        report.set_aside,
        report.integrity_events,
        report.quarantined
    )?;
    for e in &report.errors {
        writeln!(out, "  error: {e}")?;
    }
    Ok(out)
}
