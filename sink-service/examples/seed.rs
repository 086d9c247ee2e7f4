// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fills a store with synthetic but real device chains — signed, verified and ingested like any
//! device's — for trying the API, its fuzzing (scripts/api-fuzz.sh) and its benchmark
//! (scripts/bench-api.sh). The store must not be in use.
//!
//!     cargo run -p veil-sink-service --example seed -- --config FILE [--tenant acme] [--days 1]
//!         [--certs DIR] [--zone NAME]
//!
//! `--certs DIR` also writes a development CA and a certificate for localhost/127.0.0.1 there
//! (as `veil-certs` does), for the API's TLS. `--zone NAME` adds a third zone of that name (zone
//! names are free text: the console's test names one with HTML in it).
//!
//! Per tenant: device `cam-1`, stream `door`, one metrics window a minute from
//! 2026-11-23T10:00Z (audience figures that vary with the hour, two zones, the flows between
//! them and a counting line), a checkpoint every 100 windows, and one integrity event; an
//! inspection station (`line-1`, stream `station`: a part every 30 min, every 7th NG with its
//! image, `examples/ng-part.jpg`) and an assembly station (`bench-1`, stream `assembly`: a work
//! cycle every 20 min, every 5th out of order).

use std::path::PathBuf;
use std::sync::Arc;

use veil_sink_service::config::Config;
use veil_sink_service::store::Store;
use veil_wire::event::{
    ComplianceCycle, CycleStatus, CycleStep, Decision, DwellBand, ImageRef, InspectionRecord,
    IntegrityEvent, LineCrossings, MetricsWindow, Reason, Swap, ZoneMetrics,
};
use veil_wire::{Kind, Record};

/// The JPEG of a part with a dark blob (made with ffmpeg's lavfi: a grey frame, a dark box).
const NG_JPEG: &[u8] = include_bytes!("ng-part.jpg");
use veil_wire::time::format_time;

/// The inspection and the assembly station's chains over `minutes`, and their devices' (name,
/// public key).
type Stations = (Vec<Record>, Vec<(String, String)>);

fn stations(tenant: &str, seed: u8, minutes: u64) -> anyhow::Result<Stations> {
    use veil_sink_service::synthetic::Device;
    let mut out = Vec::new();
    let mut line = Device::try_at(tenant, "hq", "line-1", seed.wrapping_add(1))?;
    line.names.stream = "station".into();
    let mut bench = Device::try_at(tenant, "hq", "bench-1", seed.wrapping_add(2))?;
    bench.names.stream = "assembly".into();
    let steps = ["pick", "fit", "screw", "check"];
    for minute in 0..minutes {
        let time = format_time(1_795_428_000_000_000_000 + minute * 60_000_000_000);
        if minute % 30 == 0 {
            let part = minute / 30 + 1;
            let ng = part % 7 == 0;
            let image = ng.then(|| ImageRef {
                sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(NG_JPEG)),
                bytes: NG_JPEG.len() as u64,
            });
            let record = InspectionRecord {
                version: 1,
                part,
                decision: if ng { Decision::Ng } else { Decision::Ok },
                reason: ng.then(|| Reason {
                    rule: "dark-blob".into(),
                    label: "ng".into(),
                    confidence: 0.9,
                    min_confidence: 0.6,
                }),
                time: time.clone(),
                image,
            };
            out.push(line.record_at(Kind::Inspection, minute, serde_json::to_value(&record)?));
            if ng {
                out.push(line.image(minute, part, NG_JPEG));
            }
        }
        if minute % 20 == 0 {
            let cycle = minute / 20 + 1;
            let swapped = cycle % 5 == 0;
            let mut order: Vec<&str> = steps.to_vec();
            if swapped {
                order.swap(1, 2);
            }
            let record = ComplianceCycle {
                version: 1,
                cycle,
                status: if swapped {
                    CycleStatus::OutOfOrder
                } else {
                    CycleStatus::InOrder
                },
                start: time.clone(),
                end: time.clone(),
                cycle_time_s: 48.0,
                steps: order
                    .iter()
                    .map(|s| CycleStep {
                        step: (*s).into(),
                        start: time.clone(),
                        end: time.clone(),
                        duration_s: 12.0,
                    })
                    .collect(),
                missing: Vec::new(),
                extra: Vec::new(),
                out_of_order: if swapped {
                    vec![Swap {
                        before: "screw".into(),
                        after: "fit".into(),
                    }]
                } else {
                    Vec::new()
                },
                timed_out: false,
            };
            out.push(bench.record_at(Kind::Compliance, minute, serde_json::to_value(&record)?));
        }
        for device in [&mut line, &mut bench] {
            if device.since >= 100 || minute + 1 == minutes {
                out.push(device.checkpoint());
            }
        }
    }
    let keys = [&line, &bench]
        .iter()
        .map(|d| (d.names.device.clone(), d.key.public_hex()))
        .collect();
    Ok((out, keys))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let config = Config::load(&PathBuf::from(
        flag("--config").unwrap_or_else(|| "configs/sink-service.toml".into()),
    ))?;
    let tenant = flag("--tenant").unwrap_or_else(|| "acme".into());
    let days: u64 = flag("--days").map(|d| d.parse()).transpose()?.unwrap_or(1);
    let extra_zone = flag("--zone");
    if let Some(dir) = flag("--certs") {
        veil_testkit::certs::generate(dir.as_ref(), "Veil development", &[])?;
    }
    let store = Arc::new(Store::open(&config.store.path, &config.store.kek_file)?);
    let mut ingest = veil_sink_service::ingest::Ingest::new(
        store.clone(),
        config.trust.clone(),
        config.limits.clone(),
    );
    let seed = tenant
        .bytes()
        .fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    let mut device = veil_sink_service::synthetic::Device::try_new(&tenant, "cam-1", seed)?;
    let minutes = days * 1440;
    let (stations, station_keys) = stations(&tenant, seed, minutes)?;
    // The synthetic devices are enrolled like real ones (the default trust mode asks for it).
    for (name, public) in
        std::iter::once(("cam-1".to_owned(), device.key.public_hex())).chain(station_keys)
    {
        if config.trust.mode == veil_sink_service::config::TrustMode::Enrolled
            && veil_sink_service::devices::get(&store, &tenant, &name)?.is_none()
        {
            veil_sink_service::devices::enroll(
                &store,
                &tenant,
                &name,
                None,
                &public,
                veil_sink_service::store::now_ns(),
            )?;
        }
    }
    let mut records = Vec::new();
    for minute in 0..minutes {
        // Busier around midday (UTC), quiet at night.
        let hour = (10 + minute / 60) % 24;
        let busy = if (8..20).contains(&hour) { 6 } else { 1 };
        let ots = (minute * 7 + 3) % (busy * 2 + 1);
        let start = 1_795_428_000_000_000_000 + minute * 60_000_000_000;
        let ots = ots as u32;
        let mut window = MetricsWindow {
            version: MetricsWindow::VERSION,
            window_start: format_time(start),
            window_end: format_time(start + 60_000_000_000),
            opportunities_to_see: ots,
            watchers: ots / 2,
            dwell_time_s: ots as f64 * 6.5,
            attention_time_s: (ots / 2) as f64 * 2.0,
            ..Default::default()
        };
        for band in DwellBand::ALL {
            let n = match band {
                DwellBand::UpTo5s => ots / 2,
                DwellBand::UpTo15s => ots - ots / 2,
                _ => 0,
            };
            window.dwell_bands.insert(band.label().into(), n);
        }
        let mut zones = vec![("entrance", 1), ("shelf", 2)];
        zones.extend(extra_zone.as_deref().map(|z| (z, 3)));
        for (zone, share) in zones {
            let zone_metrics = ZoneMetrics {
                occupancy_mean: ots as f64 / (3 * share) as f64,
                occupancy_max: ots / share,
                visitors: ots / share,
            };
            window.zones.insert(zone.into(), zone_metrics);
        }
        window.zone_flows.insert("entrance->shelf".into(), ots / 3);
        window.zone_flows.insert("shelf->entrance".into(), ots / 4);
        window.lines.insert(
            "door".into(),
            LineCrossings {
                forward: ots / 2,
                backward: ots / 3,
            },
        );
        records.push(device.window_with(minute, serde_json::to_value(&window)?));
        if device.since >= 100 || minute + 1 == minutes {
            records.push(device.checkpoint());
        }
    }
    for r in records.iter().chain(&stations) {
        ingest.take(&r.key_expr(), &r.to_vec())?;
    }
    ingest.commit()?;
    let gap = IntegrityEvent::Gap {
        device: "cam-1".into(),
        stream: "door".into(),
        seq: minutes + 1,
        reason: "synthetic: records missing (seeded for trying the API)".into(),
    };
    store.integrity_event(&tenant, gap.body())?;
    store.flush()?;
    println!(
        "seeded tenant {tenant}: {minutes} windows of device cam-1 into {}",
        config.store.path.display()
    );
    Ok(())
}
