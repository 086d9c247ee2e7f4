// SPDX-License-Identifier: MIT OR Apache-2.0
//! `auditsink` throughput and latency on loopback, with the test store acknowledging.
//!
//!     source scripts/lib.sh && cargo bench -p veil-e2e --bench audit
//!
//! Throughput: metrics-window events (the aggregator's custom events) pushed into `auditsink` as
//! fast as it takes them, until the store acknowledged the last one. Latency: events at
//! 1,000/s; from the push of each event to the first arrival of its record at the subscriber
//! (spool append + group flush + Zenoh + the store's decoding), p50/p99.

use std::time::{Duration, Instant};

use veil_e2e::store::TestStore;
use veil_meta::events::{self, Event, MetricsWindow};
use veil_wire::Kind;

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn window(i: u64) -> gst::Event {
    let start = veil_wire::record::format_time(1_795_428_000_000_000_000 + i * 1_000_000_000);
    let w = MetricsWindow {
        version: 1,
        window_start: start.clone(),
        window_end: start,
        opportunities_to_see: (i % 17) as u32,
        watchers: (i % 5) as u32,
        dwell_time_s: i as f64 * 0.25,
        ..Default::default()
    };
    gst::event::CustomDownstream::new(events::to_structure(&Event::Window(w)))
}

fn harness(
    store: &TestStore,
    dir: &std::path::Path,
    flush_ms: u32,
    device: &str,
) -> gst_check::Harness {
    let config = dir.join("device.json5");
    std::fs::write(
        &config,
        std::fs::read_to_string(veil_e2e::repo_path("configs/zenoh/device-tcp.json5"))
            .unwrap()
            .replace("tcp/127.0.0.1:7447", &store.endpoint),
    )
    .unwrap();
    let mut h = gst_check::Harness::new_parse(&format!(
        "auditsink tenant=bench device={device} zenoh-config={} spool-dir={} flush-interval={flush_ms} eos-timeout=60000",
        config.display(),
        dir.join("spool").display()
    ));
    h.set_src_caps_str("video/x-raw,format=RGB,width=64,height=48,framerate=30/1");
    h.play();
    h
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn throughput(n: u64, flush_ms: u32) {
    let dir = std::env::temp_dir().join(format!("veil-bench-tp-{}-{flush_ms}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = TestStore::start();
    let mut h = harness(&store, &dir, flush_ms, "tp");
    let start = Instant::now();
    for i in 0..n {
        assert!(h.push_event(window(i)));
    }
    let enqueued = start.elapsed();
    assert!(h.push_event(gst::event::Eos::new()));
    let acked = start.elapsed();
    let received = store.stop();
    let r = received.lock().unwrap();
    let unit = r.units.values().next().unwrap();
    let metrics = unit.kinds().get(&Kind::Metrics).copied().unwrap_or(0) as u64;
    assert_eq!(metrics, n, "every record arrived");
    assert!(unit.error.is_none());
    println!(
        "throughput flush-interval={flush_ms}ms: {n} records (+{} checkpoints/config) acknowledged in {:.2} s = {:.0} records/s; streaming thread enqueued at {:.0} events/s ({:.1} µs/event)",
        unit.records.len() as u64 - n,
        acked.as_secs_f64(),
        n as f64 / acked.as_secs_f64(),
        n as f64 / enqueued.as_secs_f64(),
        enqueued.as_secs_f64() * 1e6 / n as f64,
    );
    drop(h);
    let _ = std::fs::remove_dir_all(&dir);
}

fn latency(rate: u64, seconds: u64, flush_ms: u32) {
    let dir =
        std::env::temp_dir().join(format!("veil-bench-lat-{}-{flush_ms}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = TestStore::start();
    let mut h = harness(&store, &dir, flush_ms, "lat");
    let n = rate * seconds;
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let mut sent = Vec::with_capacity(n as usize);
    let start = Instant::now();
    let mut push_us = Vec::with_capacity(n as usize);
    for i in 0..n {
        let due = start + period * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        sent.push(now_ns());
        let t = Instant::now();
        assert!(h.push_event(window(i)));
        push_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let received = store.stop();
    let r = received.lock().unwrap();
    let unit = r.units.values().next().unwrap();
    // Metrics records in sequence order are the events in push order.
    let arrival: std::collections::HashMap<u64, u64> = r.arrivals.iter().copied().collect();
    let mut lat: Vec<f64> = unit
        .records
        .values()
        .filter(|rec| rec.kind == Kind::Metrics)
        .zip(&sent)
        .map(|(rec, &t0)| (arrival[&rec.seq] as f64 - t0 as f64) / 1e6)
        .collect();
    assert_eq!(lat.len() as u64, n);
    lat.sort_by(f64::total_cmp);
    push_us.sort_by(f64::total_cmp);
    println!(
        "latency at {rate} records/s, flush-interval={flush_ms}ms, {n} records: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; streaming thread per event p50 {:.1} µs, p99 {:.1} µs",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1],
        percentile(&push_us, 0.5),
        percentile(&push_us, 0.99),
    );
    drop(h);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    veil_e2e::init();
    throughput(20_000, 20);
    latency(1_000, 10, 20);
    latency(1_000, 10, 0);
}
