// SPDX-License-Identifier: MIT OR Apache-2.0
//! The service as a process: real `sink-service serve` children, real auditsink pipelines, real
//! Zenoh on 127.0.0.1, real sled files. Crash safety under SIGKILL, and history for a Python
//! client we did not write.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use zenoh::Wait;

#[path = "sink_common.rs"]
mod common;

use common::{configs, serve, sink_service, temp};

fn verify_report(config: &Path) -> serde_json::Value {
    let out = sink_service(config, &["verify"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    report
}

fn pipeline(frames: u32, pace_us: u32, device: &str, zenoh: &Path, spool: &Path) -> String {
    format!(
        "videotestsrc num-buffers={frames} pattern=black ! video/x-raw,width=64,height=48,framerate=10/1 ! \
         identity sleep-time={pace_us} ! aggregator window=1 start-time=2026-11-23T10:00:00Z ! \
         auditsink tenant=acme site=hq device={device} checkpoint-interval=5 eos-timeout=60000 ack-timeout=300 \
         zenoh-config={} spool-dir={}",
        zenoh.display(),
        spool.display()
    )
}

/// Runs a pipeline to EOS; returns the last queued sequence number and whether EOS was complete.
fn run(description: &str) -> (u64, bool) {
    veil_e2e::audit_outcome(&veil_e2e::run_to_eos(description, 300))
}

#[test]
fn serve_sigkilled_at_random_moments_keeps_everything_it_acknowledged() {
    let dir = temp("crash");
    let port = veil_e2e::store::free_port();
    let (config, device) = configs(&dir, port);
    assert!(sink_service(&config, &["keys", "init"]).status.success());
    let mut service = serve(&config);

    // Watch the acknowledgements the service sends, as the device sees them.
    let watcher = zenoh::open(veil_e2e::client_config(&format!("tcp/127.0.0.1:{port}")))
        .wait()
        .unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let seen = acked.clone();
    let _acks = watcher
        .declare_subscriber("veil-ack/**")
        .callback(move |s| {
            if let Some(a) = veil_wire::Ack::from_slice(&s.payload().to_bytes()) {
                seen.fetch_max(a.seq, Ordering::AcqRel);
            }
        })
        .wait()
        .unwrap();

    let description = pipeline(6000, 4000, "cam-crash", &device, &dir.join("spool"));
    let device_thread = std::thread::spawn(move || run(&description));
    let rounds = 50;
    let start = Instant::now();
    for round in 0..rounds {
        std::thread::sleep(veil_e2e::random_ms(30, 400, round));
        service.kill();
        let before_kill = acked.load(Ordering::Acquire);
        // Offline, while the service is down: everything acknowledged is there and verifies.
        let report = verify_report(&config);
        let upto = report["chains"]["acme/cam-crash/default"]
            .as_u64()
            .unwrap_or(0);
        assert!(
            upto >= before_kill,
            "round {round}: acknowledged {before_kill}, stored {upto}: {report}"
        );
        service = serve(&config);
    }
    let (last, complete) = device_thread.join().unwrap();
    assert!(complete, "the device's records were not all acknowledged");
    // Stop gracefully (SIGTERM) and check the whole store.
    assert!(service.stop());
    let report = verify_report(&config);
    assert_eq!(report["chains"]["acme/cam-crash/default"], last, "{report}");
    // Exactly once: the chain verified contiguously and every record is valid (the last one is
    // the device's closing checkpoint, so nothing waits for a signature).
    assert_eq!(report["records"], last, "{report}");
    assert_eq!(report["staged"], 0);
    eprintln!(
        "{rounds} kills in {:.0} s, {last} records",
        start.elapsed().as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_python_eclipse_zenoh_get_returns_the_stored_history() {
    let dir = temp("history");
    let port = veil_e2e::store::free_port();
    let (config, device) = configs(&dir, port);
    assert!(sink_service(&config, &["keys", "init"]).status.success());
    let service = serve(&config);
    // 2 minutes of stream time in one-second windows.
    let (last, complete) = run(&pipeline(1200, 0, "cam-py", &device, &dir.join("spool")));
    assert!(complete);

    let python = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(veil_e2e::python_client())
            .arg(veil_e2e::repo_path("examples/python/veil_history.py"))
            .args(["--connect", &format!("tcp/127.0.0.1:{port}")])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let all = python(&["--key", "veil/acme/**"]);
    assert_eq!(all["records"], last, "{all}");
    assert_eq!(all["errors"], serde_json::json!([]));
    // One minute of metrics windows: capture time (window end) in [10:00:30, 10:01:30).
    let minute = python(&[
        "--key",
        "veil/acme/hq/cam-py/default/metrics",
        "--from",
        "2026-11-23T10:00:30Z",
        "--to",
        "2026-11-23T10:01:30Z",
    ]);
    assert_eq!(minute["records"], 60, "{minute}");
    assert_eq!(minute["kinds"]["metrics"], 60);
    // Another tenant's key space holds nothing of acme's.
    assert_eq!(python(&["--key", "veil/beta/**"])["records"], 0);

    // Verification while serving, over Zenoh (sled is single-process).
    let out = sink_service(&config, &["verify"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another process"));
    let session = zenoh::open(veil_e2e::client_config(&format!("tcp/127.0.0.1:{port}")))
        .wait()
        .unwrap();
    let reply = session
        .get("veil-admin/sink/verify")
        .wait()
        .unwrap()
        .recv()
        .unwrap();
    drop(session);
    let report: serde_json::Value =
        serde_json::from_slice(&reply.result().unwrap().payload().to_bytes()).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["report"]["records"], last);
    assert!(service.stop());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn garbage_on_the_key_space_is_quarantined_while_a_device_keeps_storing() {
    let dir = temp("garbage");
    let port = veil_e2e::store::free_port();
    let (config, device) = configs(&dir, port);
    assert!(sink_service(&config, &["keys", "init"]).status.success());
    let service = serve(&config);
    let description = pipeline(600, 2000, "cam-ok", &device, &dir.join("spool"));
    let device_thread = std::thread::spawn(move || run(&description));

    // Another client sprays the key space meanwhile.
    let session = zenoh::open(veil_e2e::client_config(&format!("tcp/127.0.0.1:{port}")))
        .wait()
        .unwrap();
    let mut forged = serde_json::json!({"v":1,"tenant":"acme","site":"hq","device":"cam-ok","stream":"default",
        "seq":1,"capture_time":"2026-11-23T10:00:01.000000000Z","pts":null,"kind":"metrics","body":{},
        "prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"00"});
    let mut sent = 0;
    for i in 0..40u64 {
        let (key, payload): (&str, Vec<u8>) = match i % 5 {
            0 => (
                "veil/acme/hq/cam-x/default/metrics",
                b"\x00\x01 not json at all".to_vec(),
            ),
            1 => (
                "veil/acme/hq/cam-x/default/metrics",
                b"{\"v\":1,\"tenant\":".to_vec(),
            ),
            2 => ("veil/acme/hq/cam-x/default/metrics", vec![b' '; 17 << 20]),
            3 => (
                "veil/acme/hq/cam-x/default/event",
                b"{\"hello\":\"world\"}".to_vec(),
            ),
            _ => {
                // The honest device's name under another tenant.
                forged["seq"] = serde_json::json!(i);
                (
                    "veil/other/hq/cam-ok/default/metrics",
                    serde_json::to_vec(&forged).unwrap(),
                )
            }
        };
        session
            .put(key, payload)
            .congestion_control(zenoh::qos::CongestionControl::Block)
            .wait()
            .unwrap();
        sent += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let (last, complete) = device_thread.join().unwrap();
    assert!(complete);
    drop(session);
    assert!(
        service.stop(),
        "the service kept running and stopped cleanly"
    );
    let report = verify_report(&config);
    assert_eq!(report["chains"]["acme/cam-ok/default"], last, "{report}");
    assert_eq!(report["records"], last);
    assert_eq!(report["quarantined"], sent, "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}
