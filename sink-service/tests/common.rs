// SPDX-License-Identifier: MIT OR Apache-2.0
//! Shared by the sink-service tests: a store in a temp dir, and devices' chains built with the
//! wire crate (the same records `auditsink` publishes).

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use veil_sink_service::config::{Limits, TrustConfig};
use veil_sink_service::crypto::SecretKey;
use veil_sink_service::ingest::Ingest;
use veil_sink_service::store::Store;
use veil_wire::Record;

pub use veil_testkit::service::temp;

pub fn store(dir: &std::path::Path) -> Arc<Store> {
    let kek = dir.join("kek");
    if !kek.exists() {
        SecretKey::generate().unwrap().save(&kek).unwrap();
    }
    Arc::new(Store::open(&dir.join("store"), &kek).unwrap())
}

/// Ingest that trusts each device's first key (`tofu`, the lab setting): these tests are about
/// storage, chains and the API; enrollment has tests of its own.
pub fn ingest(store: &Arc<Store>) -> Ingest {
    let trust = TrustConfig {
        mode: veil_sink_service::config::TrustMode::Tofu,
        ..TrustConfig::default()
    };
    Ingest::new(store.clone(), trust, Limits::default())
}

#[allow(unused_imports)]
pub use veil_sink_service::synthetic::Device;

pub fn take_all(ingest: &mut Ingest, records: &[Record]) {
    for r in records {
        ingest.take(&r.key_expr(), &r.to_vec()).unwrap();
    }
    ingest.commit().unwrap();
}

#[allow(unused_imports)]
pub use veil_testkit::service::{Service, configs};

pub fn sink_service(config: &Path, args: &[&str]) -> std::process::Output {
    veil_testkit::service::run(env!("CARGO_BIN_EXE_sink-service"), config, args)
}

/// Starts `serve`, waits for its "ready" line and keeps reading its output (echoed to stderr).
pub fn serve(config: &Path) -> Service {
    veil_testkit::service::serve(env!("CARGO_BIN_EXE_sink-service"), config)
}

/// Publishes each chain from its own session and thread, as devices do (congestion control
/// Block: nothing dropped); returns the sessions once every put is done.
pub fn publish_in_parallel(
    chains: Vec<Vec<(String, Vec<u8>)>>,
    sessions: Vec<zenoh::Session>,
) -> Vec<zenoh::Session> {
    use zenoh::Wait;
    let senders: Vec<_> = chains
        .into_iter()
        .zip(sessions)
        .map(|(chain, session)| {
            std::thread::spawn(move || {
                for (key, payload) in chain {
                    session
                        .put(key, payload)
                        .congestion_control(zenoh::qos::CongestionControl::Block)
                        .wait()
                        .unwrap();
                }
                session
            })
        })
        .collect();
    senders.into_iter().map(|t| t.join().unwrap()).collect()
}
