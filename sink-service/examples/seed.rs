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
//! 2026-11-23T10:00Z (audience figures that vary with the hour, two zones), a checkpoint every
//! 100 windows, and one integrity event.

use std::path::PathBuf;
use std::sync::Arc;

use veil_sink_service::config::Config;
use veil_sink_service::store::Store;
use veil_wire::event::{DwellBand, IntegrityEvent, MetricsWindow, ZoneMetrics};
use veil_wire::time::format_time;

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
    // The synthetic device is enrolled like a real one (the default trust mode asks for it).
    if config.trust.mode == veil_sink_service::config::TrustMode::Enrolled
        && veil_sink_service::devices::get(&store, &tenant, "cam-1")?.is_none()
    {
        veil_sink_service::devices::enroll(
            &store,
            &tenant,
            "cam-1",
            None,
            &device.key.public_hex(),
            veil_sink_service::store::now_ns(),
        )?;
    }
    let minutes = days * 1440;
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
        records.push(device.window_with(minute, serde_json::to_value(&window)?));
        if device.since >= 100 || minute + 1 == minutes {
            records.push(device.checkpoint());
        }
    }
    for r in &records {
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
