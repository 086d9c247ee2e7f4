// SPDX-License-Identifier: MIT OR Apache-2.0
//! Sink-service figures:
//!
//!     source scripts/lib.sh && cargo bench -p veil-sink-service --bench sink
//!
//! 1. Sustained ingest over Zenoh into a `sink-service serve` child: pre-built chains (a
//!    checkpoint every 100 records) published by one client with congestion control Block;
//!    records/s from the first put to the acknowledgement of the last, i.e. with decoding,
//!    validation, chain verification, signature checks, staging and promotion, AES-256-GCM, and
//!    durable (flushed) group commits.
//! 2. A 24-hour range query over one stream (the store's query path), p50/p99.
//! 3. Disk bytes per stored record.

#[path = "../tests/common.rs"]
mod common;

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use zenoh::Wait;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ingest_over_zenoh(n: u64) {
    let dir = common::temp("bench-ingest");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (config, _) = common::configs(&dir, port);
    veil_sink_service::crypto::SecretKey::generate()
        .unwrap()
        .save(&dir.join("kek"))
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sink-service"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().contains("ready"));

    // Four devices, n records in all.
    let devices = 4;
    let chains: Vec<Vec<(String, Vec<u8>)>> = (0..devices)
        .map(|d| {
            let mut dev = common::Device::new("bench", &format!("cam-{d}"), d as u8 + 1);
            let per = n / devices as u64;
            dev.records(per - per / 101, 100)
                .iter()
                .map(|r| (r.key_expr(), r.to_vec()))
                .collect()
        })
        .collect();
    let total: u64 = chains.iter().map(|c| c.len() as u64).sum();
    let bytes: usize = chains.iter().flatten().map(|(_, b)| b.len()).sum();

    let client = || {
        zenoh::open(veil_testkit::net::client_config(&format!(
            "tcp/127.0.0.1:{port}"
        )))
        .wait()
        .unwrap()
    };
    let session = client();
    let acked = Arc::new(AtomicU64::new(0));
    let seen = acked.clone();
    let last = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        u64,
    >::new()));
    let last2 = last.clone();
    let _sub = session
        .declare_subscriber("veil-ack/**")
        .callback(move |s| {
            if let Some(a) = veil_wire::Ack::from_slice(&s.payload().to_bytes()) {
                let mut m = last2.lock().unwrap();
                let e = m.entry(s.key_expr().to_string()).or_default();
                *e = (*e).max(a.seq);
                seen.store(m.values().sum(), Ordering::Release);
            }
        })
        .wait()
        .unwrap();
    // One session and thread per device, as devices are.
    let sessions: Vec<zenoh::Session> = (0..devices).map(|_| client()).collect();
    let start = Instant::now();
    let sessions = common::publish_in_parallel(chains, sessions);
    let sent = start.elapsed();
    while acked.load(Ordering::Acquire) < total && start.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let done = start.elapsed();
    assert_eq!(
        acked.load(Ordering::Acquire),
        total,
        "everything acknowledged"
    );
    println!(
        "ingest over Zenoh: {total} records ({:.0} bytes each) from {devices} devices acknowledged in {:.2} s = {:.0} records/s (sent in {:.2} s)",
        bytes as f64 / total as f64,
        done.as_secs_f64(),
        total as f64 / done.as_secs_f64(),
        sent.as_secs_f64()
    );
    drop(sessions);
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    let store_dir = dir.join("store");
    let size: u64 = walk(&store_dir);
    println!(
        "disk: {size} bytes for {total} records = {:.0} bytes per record (sled, after a clean stop)",
        size as f64 / total as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn range_queries(per_day: u64, label: &str) {
    let dir = common::temp(&format!("bench-range-{per_day}"));
    let store = common::store(&dir);
    let mut ingest = common::ingest(&store);
    // Two days of one stream, plus another stream alongside.
    let mut dev = common::Device::new("bench", "cam-1", 1);
    let mut other = common::Device::new("bench", "cam-2", 2);
    let step = 86_400 * 1_000_000_000 / per_day;
    let mut batch = Vec::new();
    for i in 0..2 * per_day {
        let mut r = dev.window(0);
        // Re-time the window (the chain helper spaces windows a minute apart).
        r.capture_time = veil_wire::record::format_time(1_795_428_000_000_000_000 + i * step);
        r.hash = r.compute_hash().unwrap();
        batch.push(r);
        if dev.since >= 100 {
            batch.push(dev.checkpoint());
        }
        if i % 10 == 0 {
            batch.push(other.window(i));
        }
    }
    // The re-timed records no longer chain: rebuild prev/hash in order.
    let mut head = veil_wire::GENESIS.to_string();
    for r in batch.iter_mut().filter(|r| r.device == "cam-1") {
        r.prev = Some(head.clone());
        if r.kind == veil_wire::Kind::Checkpoint {
            let mut cp: veil_wire::Checkpoint = serde_json::from_value(r.body.clone()).unwrap();
            cp = dev
                .key
                .sign_checkpoint(&cp.tenant, &cp.device, &cp.stream, r.seq - 1, &head);
            r.body = serde_json::to_value(cp).unwrap();
        }
        r.hash = r.compute_hash().unwrap();
        head = r.hash.clone();
    }
    batch.push(dev_close(&mut dev, &head));
    let t = Instant::now();
    common::take_all(&mut ingest, &batch);
    let took = t.elapsed();
    let ke = zenoh::key_expr::KeyExpr::try_from("veil/bench/hq/cam-1/door/metrics").unwrap();
    let day = veil_sink_service::query::Range {
        from: 1_795_428_000_000_000_000 + 12 * 3_600_000_000_000,
        to: 1_795_428_000_000_000_000 + 36 * 3_600_000_000_000,
        limit: usize::MAX,
    };
    let mut ms = Vec::new();
    let mut count = 0;
    for _ in 0..20 {
        let t = Instant::now();
        count =
            veil_sink_service::query::history(&store, &ke, day, Some("bench"), &|_, _, _, _| true)
                .unwrap()
                .len();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "24-hour range query, {label}: {count} records of {} stored, p50 {:.1} ms, p99 {:.1} ms (in-process ingest of {} records: {:.0} records/s)",
        batch.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        batch.len(),
        batch.len() as f64 / took.as_secs_f64()
    );
    drop(ingest);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn dev_close(dev: &mut common::Device, head: &str) -> veil_wire::Record {
    dev.head = head.to_owned();
    dev.checkpoint()
}

fn main() {
    ingest_over_zenoh(100_000);
    range_queries(1440, "one window per minute");
    range_queries(86_400, "one record per second");
}
