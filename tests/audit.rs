//! `auditsink` end to end: real pipelines → auditsink → real Zenoh sessions on 127.0.0.1 → the
//! test store (tests/store.rs), which verifies every chain and acknowledges.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gst::prelude::*;
use veil_e2e::store::{TestStore, free_port};
use veil_wire::{Kind, Record};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veil-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The shipped device configuration, pointed at `endpoint`.
fn device_config(dir: &Path, shipped: &str, endpoint: &str) -> PathBuf {
    let text = std::fs::read_to_string(veil_e2e::repo_path(&format!("configs/zenoh/{shipped}")))
        .unwrap()
        .replace("tcp/127.0.0.1:7447", endpoint)
        .replace("tls/127.0.0.1:7448", endpoint);
    let path = dir.join(shipped);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs a pipeline to EOS; returns its element messages.
fn run(description: &str) -> Vec<gst::Structure> {
    veil_e2e::init();
    let pipeline = gst::parse::launch(description).unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut messages = Vec::new();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Element(e) => messages.extend(e.structure().map(|s| s.to_owned())),
            gst::MessageView::Error(e) => panic!("{} ({:?})", e.error(), e.debug()),
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    messages
}

fn last_queued(messages: &[gst::Structure]) -> u64 {
    messages
        .iter()
        .filter(|s| s.name() == gstveilaudit::MSG_QUEUED)
        .filter_map(|s| s.get::<u64>("last").ok())
        .max()
        .unwrap_or(0)
}

/// `frames` frames at 10 fps, one aggregator window per second of stream time.
fn synthetic(frames: u32, pace_us: u32, sink: &str) -> String {
    format!(
        "videotestsrc num-buffers={frames} pattern=black ! video/x-raw,width=64,height=48,framerate=10/1 ! \
         identity sleep-time={pace_us} ! aggregator window=1 start-time=2026-11-23T10:00:00Z ! {sink}"
    )
}

#[test]
fn a_real_pipeline_delivers_every_record_in_order_verified_and_signed() {
    let dir = temp_dir("e2e");
    let store = TestStore::start();
    let config = device_config(&dir, "device-tcp.json5", &store.endpoint);
    let model = veil_tools::assets::require("models/nanodet-m.onnx");
    let media = veil_tools::assets::require("media/vtest.avi");
    let messages = run(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! \
         inferfilter decoder=nanodet model={} keep-labels=person threshold=0.3 ! \
         identity eos-after=60 ! aggregator window=1 start-time=2026-11-23T10:00:00Z ! \
         auditsink tenant=acme site=hq device=cam-1 stream=door detections=true \
         zenoh-config={} spool-dir={} checkpoint-interval=4",
        media.display(),
        model.display(),
        config.display(),
        dir.join("spool").display()
    ));
    let last = last_queued(&messages);
    let eos = messages
        .iter()
        .find(|s| s.name() == gstveilaudit::MSG_EOS)
        .unwrap();
    assert!(eos.get::<bool>("complete").unwrap(), "{eos}");
    assert_eq!(eos.get::<u64>("acknowledged").unwrap(), last);

    let received = store.stop();
    let received = received.lock().unwrap();
    assert_eq!(received.units.len(), 1);
    let unit = received.units.values().next().unwrap();
    assert!(unit.error.is_none(), "{:?}", unit.error);
    assert_eq!(unit.conflicts, 0);
    // Every record that was queued arrived, in one verified chain, and the last checkpoint
    // (the final record) signs everything before it.
    assert_eq!(unit.verified_upto(), last);
    assert_eq!(unit.records.len() as u64, last);
    assert_eq!(unit.verifier.state().signed_upto, last - 1);
    let key =
        veil_wire::DeviceKey::load_or_create(&dir.join("spool/acme/cam-1/device.key")).unwrap();
    assert_eq!(
        unit.verifier.state().key.as_deref(),
        Some(key.public_hex().as_str())
    );

    let kinds = unit.kinds();
    // Every window the aggregator closed is a record, in order.
    let windows: Vec<&gst::Structure> = messages
        .iter()
        .filter(|s| s.name() == "veil-metrics-window")
        .collect();
    assert!(windows.len() >= 6, "{} windows", windows.len());
    let metrics: Vec<&Record> = unit
        .records
        .values()
        .filter(|r| r.kind == Kind::Metrics)
        .collect();
    assert_eq!(metrics.len(), windows.len(), "{kinds:?}");
    for (record, window) in metrics.iter().zip(&windows) {
        assert_eq!(
            record.body["window_start"],
            window.get::<&str>("window-start").unwrap()
        );
    }
    assert!(
        kinds.get(&Kind::Checkpoint).copied().unwrap_or(0) >= 2,
        "{kinds:?}"
    );
    // The configuration record names the model and its SHA-256.
    let config_record = unit
        .records
        .values()
        .find(|r| r.kind == Kind::Config)
        .unwrap();
    let files = config_record.body["files"].as_array().unwrap();
    let model_entry = files.iter().find(|f| f["property"] == "model").unwrap();
    let model_sha = veil_wire::record::sha256_hex(&std::fs::read(&model).unwrap());
    assert_eq!(model_entry["sha256"], model_sha.as_str());

    // Per-frame detections: outside the chain, never with a track id.
    assert!(
        received.detections.len() >= 50,
        "{}",
        received.detections.len()
    );
    let persons: usize = received
        .detections
        .iter()
        .map(|d| d.body["objects"].as_array().unwrap().len())
        .sum();
    assert!(persons > 60, "{persons} boxes");
    for d in &received.detections {
        let text = serde_json::to_string(&d.body).unwrap();
        assert!(
            !text.contains("object_id") && !text.contains("\"id\""),
            "{text}"
        );
    }

    // Tampering with what arrived is caught, naming the record.
    let mut records: Vec<Record> = unit.records.values().cloned().collect();
    records[2].body["tampered"] = serde_json::json!(true);
    let mut verifier = veil_wire::ChainVerifier::new();
    let err = records
        .iter()
        .try_for_each(|r| verifier.push(r))
        .unwrap_err();
    assert_eq!(err.seq, 3);
    std::fs::remove_dir_all(&dir).unwrap();
}
