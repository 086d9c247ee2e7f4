// SPDX-License-Identifier: MIT OR Apache-2.0
//! A small acknowledging store for the tests, until the sink service exists: a real Zenoh
//! session (peer, listening on 127.0.0.1) that subscribes to `veil/**`, keeps every chained
//! record once (by chain unit + sequence number), verifies each chain in order, and
//! acknowledges the highest contiguous verified sequence on `veil-ack/...` — the contract the
//! sink service implements for real.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use veil_wire::{Ack, ChainUnit, ChainVerifier, Kind, Names, Record, VerifyError};
use zenoh::Wait;

pub use crate::net::free_port;

/// Everything received for one chain unit.
#[derive(Default)]
pub struct Unit {
    pub records: BTreeMap<u64, Record>,
    pub verifier: ChainVerifier,
    /// First verification failure, if any (the chain stops being acknowledged there).
    pub error: Option<VerifyError>,
    /// Same sequence number received again with the same hash.
    pub duplicates: u64,
    /// Same sequence number with different content: must never happen.
    pub conflicts: u64,
    pub names: Option<Names>,
}

impl Unit {
    /// Highest sequence number such that every record up to it is here and verified.
    pub fn verified_upto(&self) -> u64 {
        self.verifier.state().next_seq - 1
    }

    pub fn kinds(&self) -> BTreeMap<Kind, usize> {
        let mut out = BTreeMap::new();
        for r in self.records.values() {
            *out.entry(r.kind).or_default() += 1;
        }
        out
    }
}

#[derive(Default)]
pub struct Received {
    pub units: BTreeMap<ChainUnit, Unit>,
    pub detections: Vec<Record>,
    pub malformed: u64,
    /// First arrival of each chained record: (seq, ns since the epoch), for latency figures.
    pub arrivals: Vec<(u64, u64)>,
}

impl Received {
    fn take(&mut self, record: Record) -> Option<(Names, u64)> {
        if !record.kind.chained() {
            self.detections.push(record);
            return None;
        }
        let names = record.names().ok()?;
        let unit = self.units.entry(names.unit()).or_default();
        unit.names.get_or_insert_with(|| names.clone());
        match unit.records.get(&record.seq) {
            Some(old) if old.hash == record.hash => unit.duplicates += 1,
            Some(_) => unit.conflicts += 1,
            None => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                self.arrivals.push((record.seq, now));
                unit.records.insert(record.seq, record);
            }
        }
        while unit.error.is_none() {
            let next = unit.verifier.state().next_seq;
            let Some(r) = unit.records.get(&next) else {
                break;
            };
            if let Err(e) = unit.verifier.push(r) {
                unit.error = Some(e);
            }
        }
        Some((names, unit.verified_upto()))
    }
}

pub struct TestStore {
    pub received: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub endpoint: String,
}

/// The Zenoh configuration of a store that listens on `endpoint` (e.g. `tcp/127.0.0.1:7447`).
pub fn listening_config(endpoint: &str) -> zenoh::Config {
    let mut c = zenoh::Config::default();
    for (k, v) in [
        ("mode", "\"peer\"".to_string()),
        ("listen/endpoints", format!("[\"{endpoint}\"]")),
        ("scouting/multicast/enabled", "false".into()),
    ] {
        c.insert_json5(k, &v).expect("store config");
    }
    c
}

impl TestStore {
    /// A store listening on a fresh port of 127.0.0.1 over plain TCP.
    pub fn start() -> TestStore {
        let endpoint = format!("tcp/127.0.0.1:{}", free_port());
        Self::start_with(listening_config(&endpoint), endpoint, Default::default())
    }

    /// Starts (again) with `config`, keeping what an earlier run received.
    pub fn start_with(
        config: zenoh::Config,
        endpoint: String,
        received: Arc<Mutex<Received>>,
    ) -> TestStore {
        let session = zenoh::open(config).wait().expect("store session");
        let subscriber = session
            .declare_subscriber("veil/**")
            .wait()
            .expect("subscribe veil/**");
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, received2) = (stop.clone(), received.clone());
        let thread = std::thread::spawn(move || {
            // Acknowledgements are grouped (at most one per unit every 2 ms), like a store's
            // group commit; the last one goes out as soon as the stream pauses.
            let mut due: BTreeMap<ChainUnit, (Names, u64)> = BTreeMap::new();
            let mut last_ack = Instant::now();
            while !stop2.load(Ordering::Acquire) {
                let sample = subscriber
                    .recv_timeout(Duration::from_millis(5))
                    .ok()
                    .flatten();
                if let Some(sample) = &sample {
                    match Record::from_slice(&sample.payload().to_bytes()) {
                        Ok(record) => {
                            if let Some((names, upto)) = received2.lock().unwrap().take(record)
                                && upto > 0
                            {
                                due.insert(names.unit(), (names, upto));
                            }
                        }
                        Err(_) => received2.lock().unwrap().malformed += 1,
                    }
                }
                if sample.is_none() || last_ack.elapsed() >= Duration::from_millis(2) {
                    for (_, (names, upto)) in std::mem::take(&mut due) {
                        let _ = session.put(names.ack_key(), Ack::new(upto).to_vec()).wait();
                    }
                    last_ack = Instant::now();
                }
            }
            drop(subscriber);
            let _ = session.close().wait();
        });
        TestStore {
            received,
            stop,
            thread: Some(thread),
            endpoint,
        }
    }

    /// Goes away (closes its session); what it received stays in the returned handle.
    pub fn stop(mut self) -> Arc<Mutex<Received>> {
        self.halt();
        self.received.clone()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Waits until `check` holds on what was received, or `timeout`.
    pub fn wait_for(&self, timeout: Duration, check: impl Fn(&Received) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check(&self.received.lock().unwrap()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        check(&self.received.lock().unwrap())
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        self.halt();
    }
}
