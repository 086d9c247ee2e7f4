// SPDX-License-Identifier: MIT OR Apache-2.0
//! `auditsink` end to end: real pipelines → auditsink → real Zenoh sessions on 127.0.0.1 → the
//! test store (tests/store.rs), which verifies every chain and acknowledges.

use std::path::{Path, PathBuf};
use std::time::Duration;

use veil_e2e::store::TestStore;
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

/// Runs a pipeline to EOS; returns its element messages and warnings.
fn run(description: &str) -> Vec<gst::Structure> {
    veil_e2e::run_to_eos(description, 120)
}

fn last_queued(messages: &[gst::Structure]) -> u64 {
    veil_e2e::audit_outcome(messages).0
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
    let key = veil_wire::DeviceKey::load_or_create(
        &veil_wire::spool_dirs::device_dir(&dir.join("spool"), "acme", "cam-1").join("device.key"),
    )
    .unwrap();
    assert_eq!(
        unit.verifier.state().key.as_deref(),
        Some(key.public_hex().as_str())
    );

    // The spool's files hold the records sealed: no name and no body field in their bytes nor
    // in any file or directory name, while the records the store received carry both (the
    // control).
    let mut raw = Vec::new();
    let mut folders = vec![dir.join("spool")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            raw.extend(path.file_name().unwrap().as_encoded_bytes());
            if path.is_dir() {
                folders.push(path);
            } else {
                raw.extend(std::fs::read(&path).unwrap());
            }
        }
    }
    let sent = unit
        .records
        .values()
        .map(|r| String::from_utf8(r.to_vec()).unwrap())
        .collect::<String>();
    for secret in ["acme", "cam-1", "door", "window_start"] {
        assert!(
            sent.contains(secret),
            "the control: {secret} not in the records"
        );
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is readable in the spool's files ({} bytes)",
            raw.len()
        );
    }

    let kinds = unit.kinds();
    // Every window the aggregator closed is a record, in order.
    let windows: Vec<&gst::Structure> = messages
        .iter()
        .filter(|s| s.name() == veil_wire::EventKind::Window.name())
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

fn unit_summary(store_received: &veil_e2e::store::Received) -> (u64, usize, u64, bool) {
    let unit = store_received
        .units
        .values()
        .next()
        .expect("one chain unit");
    (
        unit.verified_upto(),
        unit.records.len(),
        unit.conflicts,
        unit.error.is_none(),
    )
}

#[test]
fn records_published_while_the_store_is_down_or_away_arrive_once_after_it_returns() {
    let dir = temp_dir("away");
    let endpoint = format!("tcp/127.0.0.1:{}", veil_e2e::store::free_port());
    let config = device_config(&dir, "device-tcp.json5", &endpoint);
    // 500 frames, 10 ms apart: 50 windows over about 5 s.
    let pipeline = synthetic(
        500,
        10_000,
        &format!(
            "auditsink tenant=acme device=cam-2 zenoh-config={} spool-dir={} checkpoint-interval=5 ack-timeout=300",
            config.display(),
            dir.join("spool").display()
        ),
    );
    // The device starts while its store is down, and spools.
    let device = std::thread::spawn(move || run(&pipeline));
    std::thread::sleep(Duration::from_millis(700));
    let store = TestStore::start_with(
        veil_e2e::store::listening_config(&endpoint),
        endpoint.clone(),
        Default::default(),
    );
    // Then the store goes away mid-stream, and comes back.
    assert!(store.wait_for(Duration::from_secs(20), |r| {
        r.units.values().any(|u| u.records.len() >= 5)
    }));
    let received = store.stop();
    let seen_before = received
        .lock()
        .unwrap()
        .units
        .values()
        .next()
        .unwrap()
        .records
        .len();
    std::thread::sleep(Duration::from_millis(1500));
    let store = TestStore::start_with(
        veil_e2e::store::listening_config(&endpoint),
        endpoint,
        received,
    );
    let messages = device.join().unwrap();
    let last = last_queued(&messages);
    let eos = messages
        .iter()
        .find(|s| s.name() == gstveilaudit::MSG_EOS)
        .unwrap();
    assert!(eos.get::<bool>("complete").unwrap(), "{eos}");

    let received = store.stop();
    let (upto, count, conflicts, ok) = unit_summary(&received.lock().unwrap());
    assert!(
        // The store left while the device still had records to send.
        seen_before < last as usize - 5,
        "the store went away too late: {seen_before} of {last}"
    );
    assert!(ok);
    assert_eq!((upto, count as u64, conflicts), (last, last, 0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn records_reported_queued_before_a_sigkill_arrive_after_the_restart() {
    use std::io::BufRead;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let dir = temp_dir("kill");
    let store = TestStore::start();
    let config = device_config(&dir, "device-tcp.json5", &store.endpoint);
    let sink = format!(
        "auditsink tenant=acme device=cam-3 zenoh-config={} spool-dir={} checkpoint-interval=7",
        config.display(),
        dir.join("spool").display()
    );
    let mut queued_before_kills = Vec::new();
    for round in 0..3 {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_veil-launch"))
            .arg(synthetic(100_000, 5_000, &sink))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let queued = Arc::new(AtomicU64::new(0));
        let stdout = child.stdout.take().unwrap();
        let seen = queued.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                // veil-audit-queued, first=(guint64)1, last=(guint64)5;
                if let Some(rest) = line.strip_prefix(gstveilaudit::MSG_QUEUED)
                    && let Some(n) = rest.split("last=(guint64)").nth(1)
                {
                    let n: String = n.chars().take_while(|c| c.is_ascii_digit()).collect();
                    seen.fetch_max(n.parse().unwrap_or(0), Ordering::AcqRel);
                }
            }
        });
        // Let it run long enough to queue something, then kill it at a random moment.
        let start = std::time::Instant::now();
        while queued.load(Ordering::Acquire) == 0 && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(veil_e2e::random_ms(100, 1500, round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let q = queued.load(Ordering::Acquire);
        assert!(q > 0, "round {round}: nothing queued");
        queued_before_kills.push(q);
    }
    // The restart: a short run to EOS on the same spool.
    let messages = run(&synthetic(20, 0, &sink));
    let eos = messages
        .iter()
        .find(|s| s.name() == gstveilaudit::MSG_EOS)
        .unwrap();
    assert!(eos.get::<bool>("complete").unwrap(), "{eos}");
    let last = last_queued(&messages);

    let received = store.stop();
    let (upto, count, conflicts, ok) = unit_summary(&received.lock().unwrap());
    // One chain across three kills: every record ever reported queued is there, verified.
    assert!(ok);
    assert_eq!((upto, count as u64, conflicts), (last, last, 0));
    assert!(
        queued_before_kills.windows(2).all(|w| w[0] < w[1]),
        "{queued_before_kills:?}"
    );
    assert!(queued_before_kills.iter().all(|&q| q <= upto));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A shipped configuration with its certificate paths and endpoint rewritten.
fn tls_config(
    dir: &Path,
    shipped: &str,
    endpoint: &str,
    certs: &Path,
    client: Option<&Path>,
) -> PathBuf {
    let mut text =
        std::fs::read_to_string(veil_e2e::repo_path(&format!("configs/zenoh/{shipped}")))
            .unwrap()
            .replace("tls/127.0.0.1:7448", endpoint);
    if let Some(client) = client {
        text = text
            .replace(
                "configs/certs/device.pem",
                &client.join("device.pem").display().to_string(),
            )
            .replace(
                "configs/certs/device-key.pem",
                &client.join("device-key.pem").display().to_string(),
            );
    }
    let text = text.replace("configs/certs/", &format!("{}/", certs.display()));
    let path = dir.join(format!(
        "{}-{shipped}",
        client.map_or(0, |c| c.as_os_str().len())
    ));
    std::fs::write(&path, text).unwrap();
    path
}

/// What a TLS client with this certificate hears from the listener after its handshake:
/// `Ok` when the listener accepted it (and waits for Zenoh to speak), else the TLS error.
fn tls_probe(port: u16, ca: &Path, client: &Path) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::io::Read;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(client.join("device.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(client.join("device-key.pem")).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let mut buf = [0u8; 64];
    match tls.read(&mut buf) {
        Ok(0) => Err("closed without a word".into()),
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn mutual_tls_delivers_and_a_device_without_a_valid_certificate_is_refused() {
    let dir = temp_dir("mtls");
    let certs = dir.join("certs");
    let rogue = dir.join("rogue");
    veil_tools::certs::generate(&certs, "Veil", &["device"]).unwrap();
    veil_tools::certs::generate(&rogue, "Rogue", &["device"]).unwrap();
    let port = veil_e2e::store::free_port();
    let endpoint = format!("tls/127.0.0.1:{port}");
    let service = tls_config(&dir, "service-mtls.json5", &endpoint, &certs, None);
    let store = TestStore::start_with(
        zenoh::Config::from_file(&service).unwrap(),
        endpoint.clone(),
        Default::default(),
    );
    let device = |name: &str, config: &Path, timeout_ms: u32| {
        run(&synthetic(
            30,
            0,
            &format!(
                "auditsink tenant=acme device={name} zenoh-config={} spool-dir={} eos-timeout={timeout_ms}",
                config.display(),
                dir.join("spool").display()
            ),
        ))
    };
    let eos = |messages: &[gst::Structure]| {
        let s = messages
            .iter()
            .find(|s| s.name() == gstveilaudit::MSG_EOS)
            .unwrap()
            .clone();
        (
            s.get::<bool>("complete").unwrap(),
            s.get::<u64>("acknowledged").unwrap(),
            last_queued(messages),
        )
    };
    // The element says so when it cannot reach the store.
    let refused = |messages: &[gst::Structure]| {
        messages.iter().any(|s| {
            s.name() == "warning"
                && s.get::<String>("text")
                    .unwrap()
                    .contains("cannot be reached")
        })
    };

    // The refusal itself, observed at the TLS layer: the listener accepts the device's
    // certificate and answers one of another CA with an alert.
    assert_eq!(tls_probe(port, &certs.join("ca.pem"), &certs), Ok(()));
    let refusal = tls_probe(port, &certs.join("ca.pem"), &rogue).unwrap_err();
    assert!(refusal.contains("alert"), "{refusal}");

    // Positive control: the device with its certificate delivers everything.
    let good = tls_config(&dir, "device-mtls.json5", &endpoint, &certs, None);
    let messages = device("cam-good", &good, 10_000);
    let (complete, acked, last) = eos(&messages);
    assert!(
        complete && acked == last && last > 3,
        "{complete} {acked} {last}"
    );
    assert!(!refused(&messages));

    // The same device with a certificate of another CA, and with none at all: nothing arrives.
    let forged = tls_config(&dir, "device-mtls.json5", &endpoint, &certs, Some(&rogue));
    let messages = device("cam-forged", &forged, 3_000);
    let (complete, acked, _) = eos(&messages);
    assert!(!complete && acked == 0 && refused(&messages));
    let anonymous = tls_config(&dir, "device-tls.json5", &endpoint, &certs, None);
    let messages = device("cam-anonymous", &anonymous, 3_000);
    let (complete, acked, _) = eos(&messages);
    assert!(!complete && acked == 0 && refused(&messages));
    let received = store.stop();
    let devices: Vec<String> = received
        .lock()
        .unwrap()
        .units
        .keys()
        .map(|u| u.device.clone())
        .collect();
    assert_eq!(devices, vec!["cam-good".to_string()]);

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_python_eclipse_zenoh_client_verifies_hashes_chain_and_signatures() {
    use std::io::BufRead;
    let dir = temp_dir("python");
    let store = TestStore::start();
    let mut client = std::process::Command::new(veil_e2e::python_client())
        .arg(veil_e2e::repo_path("examples/python/veil_subscribe.py"))
        .args(["--connect", &store.endpoint, "--idle", "3", "--summary"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(client.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");

    let config = device_config(&dir, "device-tcp.json5", &store.endpoint);
    let messages = run(&synthetic(
        100,
        0,
        &format!(
            "auditsink tenant=acme device=cam-py detections=true checkpoint-interval=5 zenoh-config={} spool-dir={}",
            config.display(),
            dir.join("spool").display()
        ),
    ));
    let last = last_queued(&messages);
    let summary: serde_json::Value = serde_json::from_str(&lines.last().unwrap().unwrap()).unwrap();
    assert!(client.wait().unwrap().success(), "{summary}");
    let chain = &summary["chains"]["acme/cam-py/default"];
    assert_eq!(chain["errors"], serde_json::json!([]), "{summary}");
    assert_eq!(chain["verified"], last, "{summary}");
    assert_eq!(chain["upto"], last);
    assert_eq!(chain["signed_upto"], last - 1);
    let key = veil_wire::DeviceKey::load_or_create(
        &veil_wire::spool_dirs::device_dir(&dir.join("spool"), "acme", "cam-py").join("device.key"),
    )
    .unwrap();
    assert_eq!(chain["public_key"], key.public_hex().as_str());
    // Best-effort, but nothing should be lost on loopback at this rate.
    assert!(summary["detections"].as_u64().unwrap() >= 95, "{summary}");
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
