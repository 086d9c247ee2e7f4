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

/// A free port, the service's and a device's configurations in `dir`, and the service's keys.
fn initialized(dir: &Path) -> (u16, std::path::PathBuf, std::path::PathBuf) {
    let port = veil_e2e::store::free_port();
    let (config, device) = configs(dir, port);
    assert!(sink_service(&config, &["keys", "init"]).status.success());
    (port, config, device)
}

/// A client of the service's mutual-TLS listener with `name`'s certificate
/// (configs/zenoh/device-mtls.json5 made local by `local`, retrying every 300 ms at most).
fn mtls_client(dir: &Path, local: &dyn Fn(&str) -> String, name: &str) -> std::path::PathBuf {
    let stem = veil_testkit::certs::device_file_stem(name);
    let text = std::fs::read_to_string(veil_e2e::repo_path("configs/zenoh/device-mtls.json5"))
        .unwrap()
        .replace(
            "configs/certs/device.pem",
            &format!("configs/certs/{stem}.pem"),
        )
        .replace(
            "configs/certs/device-key.pem",
            &format!("configs/certs/{stem}-key.pem"),
        )
        .replace("period_max_ms: 2000", "period_max_ms: 300");
    let path = dir.join(format!("{stem}.json5"));
    std::fs::write(&path, local(&text)).unwrap();
    path
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
    let (port, config, device) = initialized(&dir);
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
    let (port, config, device) = initialized(&dir);
    // The same API keys as the HTTPS API (made while no service holds the store).
    let scoped = |tenant: &str, role: &str, limits: &[&str]| -> String {
        let mut args = vec!["api-keys", "create", "--tenant", tenant, "--role", role];
        args.extend_from_slice(limits);
        let out = sink_service(&config, &args);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let key = |tenant: &str, role: &str| -> String { scoped(tenant, role, &[]) };
    let (acme, acme_admin, beta, beta_admin) = (
        key("acme", "operator"),
        key("acme", "admin"),
        key("beta", "operator"),
        key("beta", "admin"),
    );
    // Station-scoped keys of acme: the pipeline's own site, device and stream (controls), and
    // another site and device.
    let (hq, cam_py, lab, cam_1, lab_admin) = (
        scoped("acme", "operator", &["--site", "hq"]),
        scoped(
            "acme",
            "operator",
            &["--device", "cam-py", "--stream", "default"],
        ),
        scoped("acme", "operator", &["--site", "lab"]),
        scoped("acme", "operator", &["--site", "hq", "--device", "cam-1"]),
        scoped("acme", "admin", &["--site", "lab"]),
    );
    let service = serve(&config);
    // 2 minutes of stream time in one-second windows.
    let (last, complete) = run(&pipeline(1200, 0, "cam-py", &device, &dir.join("spool")));
    assert!(complete);

    // The PyPI eclipse-zenoh client, as anyone on the network could run it.
    let ask = |api_key: Option<&str>, args: &[&str]| -> (bool, serde_json::Value) {
        let mut command = Command::new(veil_e2e::python_client());
        command
            .arg(veil_e2e::repo_path("examples/python/veil_history.py"))
            .args(["--connect", &format!("tcp/127.0.0.1:{port}")])
            .args(args)
            .env_remove("VEIL_API_KEY");
        if let Some(k) = api_key {
            command.args(["--api-key", k]);
        }
        let out = command.output().unwrap();
        let answer = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.success(), answer)
    };
    let python = |args: &[&str]| -> serde_json::Value {
        let (ok, answer) = ask(Some(&acme), args);
        assert!(ok, "{answer}");
        answer
    };
    let all = python(&["--key", "veil/acme/**"]);
    assert_eq!(all["records"], last, "{all}");
    assert_eq!(all["errors"], serde_json::json!([]));
    // The attacker: no key, a made-up key, a revoked-looking key of the right shape: an error
    // reply and not one record, for acme's key space and for everything.
    let made_up = format!("veil_{}_{}", "0".repeat(16), "ab".repeat(32));
    for (credential, selector) in [
        (None, "veil/**"),
        (None, "veil/acme/**"),
        (Some("not a key"), "veil/**"),
        (Some(made_up.as_str()), "veil/acme/**"),
    ] {
        let (ok, answer) = ask(credential, &["--key", selector]);
        assert!(!ok, "{credential:?} {selector}: {answer}");
        assert_eq!(answer["records"], 0, "{credential:?} {selector}: {answer}");
        assert!(
            answer["errors"][0].as_str().unwrap_or("").contains("401"),
            "{answer}"
        );
    }
    // Tenant beta's valid key: acme's records are as absent as a tenant that does not exist,
    // also when it asks for everything (the positive control is acme's own key above).
    for selector in ["veil/acme/**", "veil/**", "veil/*/hq/**"] {
        let (ok, answer) = ask(Some(&beta), &["--key", selector]);
        assert!(ok, "{answer}");
        assert_eq!(answer["records"], 0, "beta asked {selector}: {answer}");
    }
    // A station-scoped key sees its stations only: all of the pipeline's records for the keys
    // that name its site or device, none for the others, whatever they ask for.
    for (scoped_key, expected) in [(&hq, last), (&cam_py, last), (&lab, 0), (&cam_1, 0)] {
        for selector in ["veil/**", "veil/acme/**", "veil/acme/hq/cam-py/default/**"] {
            let (ok, answer) = ask(Some(scoped_key), &["--key", selector]);
            assert!(ok, "{answer}");
            assert_eq!(answer["records"], expected, "{selector}: {answer}");
        }
    }
    let (ok, answer) = ask(Some(&lab_admin), &["--admin", "verify"]);
    assert!(!ok, "{answer}");
    assert!(
        answer["answers"][0]["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("403"),
        "{answer}"
    );
    let (_, absent) = ask(Some(&acme), &["--key", "veil/nobody/**"]);
    assert_eq!(absent["records"], 0);
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

    // Verification while serving, over Zenoh (sled is single-process): the admin scope only,
    // and only the key's tenant.
    let out = sink_service(&config, &["verify"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another process"));
    // Nor is the acknowledgement key rotated under a running service (it would go on signing
    // with a key no longer on disk); the same command on a stopped store is tested in
    // sink-service/tests/devices.rs.
    let out = sink_service(&config, &["keys", "rotate-ack"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another process"));
    assert!(!dir.join("ack.key.next").exists());
    for (credential, what) in [
        (None, "verify"),
        (Some(&acme), "verify"),
        (Some(&acme), "stats"),
    ] {
        let (ok, answer) = ask(credential.map(String::as_str), &["--admin", what]);
        assert!(!ok, "{what} with {credential:?}: {answer}");
        let error = answer["answers"][0]["error"].as_str().unwrap_or("");
        assert!(
            error.starts_with("401") || error.starts_with("403"),
            "{answer}"
        );
    }
    let (ok, answer) = ask(Some(&acme_admin), &["--admin", "verify"]);
    assert!(ok, "{answer}");
    let report = &answer["answers"][0]["ok"];
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["report"]["records"], last);
    assert!(
        report["report"]["chains"]["acme/cam-py/default"].is_u64(),
        "{report}"
    );
    let (ok, answer) = ask(Some(&beta_admin), &["--admin", "verify"]);
    assert!(ok, "{answer}");
    let report = &answer["answers"][0]["ok"]["report"];
    assert_eq!(
        report["records"], 0,
        "beta's admin sees acme's records: {report}"
    );
    assert_eq!(report["chains"], serde_json::json!({}), "{report}");
    let (ok, answer) = ask(Some(&acme_admin), &["--admin", "stats"]);
    assert!(
        ok && answer["answers"][0]["ok"]["received"].as_u64() > Some(0),
        "{answer}"
    );
    assert!(service.stop());
    // Every refusal is in the service's audit log, like the HTTPS API's.
    let audit = sink_service(&config, &["audit"]);
    let failures = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .filter(|l| l.contains("\"auth.failure\"") && l.contains("\"ZENOH\""))
        .count();
    assert!(
        failures >= 4,
        "{failures} Zenoh authentication failures logged"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn garbage_on_the_key_space_is_quarantined_while_a_device_keeps_storing() {
    let dir = temp("garbage");
    let (port, config, device) = initialized(&dir);
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

/// The attacker listens where the devices connect while the store is down, and answers every
/// record with forged acknowledgements: unsigned, signed by another key, signed by the store's
/// key for another record's hash (a replayed genuine acknowledgement), and one ahead of the
/// record it answers. A device given the store's public key drops nothing on them, counts
/// them, and once the real store is back every record arrives exactly once. The positive
/// control, in the same run: a device without the store key believes the unsigned ones and its
/// records are lost to the store.
#[test]
fn forged_acknowledgements_drop_nothing_from_a_device_given_the_store_key() {
    let dir = temp("forged-acks");
    let (port, config, device) = initialized(&dir);
    let public = sink_service(&config, &["keys", "public"]);
    assert!(public.status.success(), "{public:?}");
    let store_public_key = String::from_utf8(public.stdout).unwrap().trim().to_owned();
    // What a replay could carry: the store key's genuine signature over another record's hash.
    let store_key = veil_wire::DeviceKey::load_or_create(&dir.join("ack.key")).unwrap();
    assert_eq!(store_key.public_hex(), store_public_key);
    let other_key = veil_wire::DeviceKey::from_seed([9; 32]);

    // The rogue peer, on the store's address.
    let mut rogue_config = zenoh::Config::default();
    for (k, v) in [
        ("mode", "\"peer\"".to_string()),
        ("listen/endpoints", format!("[\"tcp/127.0.0.1:{port}\"]")),
        ("scouting/multicast/enabled", "false".into()),
    ] {
        rogue_config.insert_json5(k, &v).unwrap();
    }
    let rogue = zenoh::open(rogue_config).wait().unwrap();
    let seen: Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>> = Arc::default();
    let (forger, seen_by_rogue) = (rogue.clone(), seen.clone());
    let _records = rogue
        .declare_subscriber("veil/**")
        .callback(move |sample| {
            let Ok(r) = veil_wire::Record::from_slice(&sample.payload().to_bytes()) else {
                return;
            };
            let names = r.names().unwrap();
            let forged = [
                veil_wire::Ack::new(r.seq),
                other_key.sign_ack(&names, r.seq, &r.hash),
                store_key.sign_ack(&names, r.seq, &"0".repeat(64)),
                // Ahead of what it answers (a device without the key would wait for it).
                store_key.sign_ack(&names, r.seq + 1, &r.hash),
            ];
            for ack in forged {
                let _ = forger
                    .put(names.ack_key(), ack.to_vec())
                    .congestion_control(zenoh::qos::CongestionControl::Block)
                    .wait();
            }
            seen_by_rogue
                .lock()
                .unwrap()
                .entry(r.device.clone())
                .and_modify(|s| *s = (*s).max(r.seq))
                .or_insert(r.seq);
        })
        .wait()
        .unwrap();

    let spool = dir.join("spool");
    let keyed = pipeline(300, 3000, "cam-keyed", &device, &spool).replace(
        "auditsink ",
        &format!("auditsink store-public-key={store_public_key} "),
    );
    let open = pipeline(300, 3000, "cam-open", &device, &spool)
        .replace("eos-timeout=60000", "eos-timeout=8000");
    let keyed = std::thread::spawn(move || veil_e2e::run_to_eos(&keyed, 300));
    let open = std::thread::spawn(move || veil_e2e::run_to_eos(&open, 300));
    // Until the rogue has answered a good part of both devices' records.
    let start = Instant::now();
    loop {
        let s = seen.lock().unwrap().clone();
        if s.get("cam-keyed").is_some_and(|&n| n >= 10)
            && s.get("cam-open").is_some_and(|&n| n >= 10)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the rogue saw {s:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    drop(_records);
    rogue.close().wait().unwrap();

    // The real store comes back on the same address.
    let service = serve(&config);
    let outcome = |messages: &[gst::Structure]| -> (u64, bool, u64) {
        let (last, complete) = veil_e2e::audit_outcome(messages);
        let forged = messages
            .iter()
            .find(|s| s.name() == gstveilaudit::MSG_EOS)
            .and_then(|s| s.get::<u64>("forged-acks").ok())
            .unwrap_or(0);
        (last, complete, forged)
    };
    let (keyed_last, keyed_complete, keyed_forged) = outcome(&keyed.join().unwrap());
    let (open_last, _, _) = outcome(&open.join().unwrap());
    assert!(service.stop());
    let report = verify_report(&config);
    // The device with the store key: everything, exactly once, and every forgery counted.
    assert!(keyed_complete, "{report}");
    assert_eq!(
        report["chains"]["acme/cam-keyed/default"], keyed_last,
        "{report}"
    );
    assert!(
        keyed_forged >= 4 * 10,
        "only {keyed_forged} forged acknowledgements counted"
    );
    // The control: without it, the unsigned acknowledgements dropped records the store never had.
    let open_stored = report["chains"]["acme/cam-open/default"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        open_stored < open_last,
        "the control lost nothing ({open_stored} of {open_last} stored): the attack did not happen"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The shipped transport policy, played by an attacker with the PyPI client: behind the
/// mutual-TLS listener with Zenoh's access control (`veil-certs --acl-out`, default deny,
/// subjects by certificate common name), tenant beta's device certificate cannot publish under
/// acme's key space, hear acme's acknowledgements or query anything, and acme's device cannot
/// publish under beta's — while the same certificates' allowed traffic passes beside each
/// refusal: acme's real pipeline is acknowledged and stored, beta's puts under its own prefix
/// reach the store, and an operator certificate's queries are answered.
#[test]
fn zenoh_access_control_confines_each_device_certificate() {
    use veil_testkit::zenoh_acl::{access_control, with_access_control};
    // The shipped example is the generator's output.
    let base =
        std::fs::read_to_string(veil_e2e::repo_path("configs/zenoh/service-mtls.json5")).unwrap();
    let shipped =
        std::fs::read_to_string(veil_e2e::repo_path("configs/zenoh/service-mtls-acl.json5"))
            .unwrap();
    assert_eq!(
        shipped,
        with_access_control(&base, &access_control(&["acme/hq/cam-1"], &["operator"])).unwrap(),
        "configs/zenoh/service-mtls-acl.json5 is stale: it is service-mtls.json5 with zenoh_acl::access_control for acme/hq/cam-1 and operator"
    );

    let dir = temp("acl");
    let (port, config, _) = initialized(&dir);
    let certs = dir.join("certs");
    let (acme, beta) = ("acme/hq/cam-1", "beta/hq/cam-2");
    veil_testkit::certs::generate(&certs, "Veil test", &[acme, beta, "operator"]).unwrap();
    let endpoint = format!("tls/127.0.0.1:{port}");
    let local = |text: &str| {
        text.replace("tls/127.0.0.1:7448", &endpoint)
            .replace("configs/certs/", &format!("{}/", certs.display()))
    };
    // The service: the shipped mutual-TLS listener with access control for both devices.
    std::fs::write(
        dir.join("service.json5"),
        local(&with_access_control(&base, &access_control(&[acme, beta], &["operator"])).unwrap()),
    )
    .unwrap();
    let client = |name: &str| mtls_client(&dir, &local, name);
    let (acme_device, beta_device, operator) = (client(acme), client(beta), client("operator"));
    let api_key = |tenant: &str| {
        let out = sink_service(
            &config,
            &["api-keys", "create", "--tenant", tenant, "--role", "admin"],
        );
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (acme_admin, beta_admin) = (api_key("acme"), api_key("beta"));
    let service = serve(&config);

    let probe = |config: &Path, args: &[&str]| -> std::process::Child {
        Command::new(veil_e2e::python_client())
            .arg(veil_e2e::repo_path("tests/python/zenoh_probe.py"))
            .arg(config)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let answer = |child: std::process::Child| -> serde_json::Value {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let received = || -> u64 {
        let stats = answer(probe(
            &operator,
            &["get", "veil-admin/sink/stats", &acme_admin],
        ));
        assert_eq!(
            stats["ok"], 1,
            "the operator's admin query (control): {stats}"
        );
        let payload: serde_json::Value =
            serde_json::from_str(stats["payloads"][0].as_str().unwrap()).unwrap();
        payload["received"].as_u64().unwrap()
    };

    // Beta's certificate listens for acme's acknowledgements while acme's device runs.
    let eavesdroppers = [
        probe(&beta_device, &["sub", "veil-ack/acme/**", "25"]),
        probe(&beta_device, &["sub", "veil-ack/**", "25"]),
    ];
    std::thread::sleep(Duration::from_secs(2));
    let (last, complete) = run(&pipeline(100, 0, "cam-1", &acme_device, &dir.join("spool")));
    assert!(
        complete,
        "acme's device is acknowledged through the access control (control)"
    );
    for heard in eavesdroppers.map(answer) {
        assert_eq!(
            heard["count"], 0,
            "beta heard acme's acknowledgements: {heard}"
        );
    }

    // Puts: beta's own prefix arrives (control); beta under acme, acme under beta do not.
    let before = received();
    answer(probe(
        &beta_device,
        &["put", "veil/beta/hq/cam-2/door/metrics", "3"],
    ));
    let start = Instant::now();
    while received() < before + 3 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "beta's own puts never arrived"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let after_control = received();
    assert_eq!(after_control, before + 3);
    answer(probe(
        &beta_device,
        &["put", "veil/acme/hq/cam-1/default/metrics", "3"],
    ));
    answer(probe(
        &acme_device,
        &["put", "veil/beta/hq/cam-2/door/metrics", "3"],
    ));
    answer(probe(
        &acme_device,
        &["put", "veil/acme/hq/cam-2/door/metrics", "3"],
    ));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        received(),
        after_control,
        "a put outside the certificate's own key space arrived"
    );

    // Queries: a device certificate gets nothing, even with a valid admin API key; the
    // operator's certificate with the same key gets acme's records (control).
    for (device, key) in [(&beta_device, &beta_admin), (&acme_device, &acme_admin)] {
        for selector in ["veil/**", "veil-admin/sink/verify"] {
            let got = answer(probe(device, &["get", selector, key]));
            assert_eq!(got["ok"], 0, "{selector}: {got}");
        }
    }
    let history = answer(probe(&operator, &["get", "veil/acme/**", &acme_admin]));
    assert_eq!(history["ok"], last, "{history}");
    assert!(service.stop());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_device_certificate_cannot_announce_a_store_through_the_access_control() {
    use veil_testkit::zenoh_acl::{access_control, with_access_control};
    use wait_timeout::ChildExt;
    let dir = temp("acl-tokens");
    let (port, config, _) = initialized(&dir);
    let certs = dir.join("certs");
    let (device, store) = ("acme/hq/cam-1", "store-x");
    veil_testkit::certs::generate(&certs, "Veil test", &[device, store]).unwrap();
    let endpoint = format!("tls/127.0.0.1:{port}");
    let local = |text: &str| {
        text.replace("tls/127.0.0.1:7448", &endpoint)
            .replace("configs/certs/", &format!("{}/", certs.display()))
    };
    // The shipped rules for the device and, for the control, a subject that may announce stores.
    let mut acl = access_control(&[device], &[]);
    acl["rules"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"id": "stores.announce",
        "messages": ["liveliness_token"], "flows": ["ingress"], "permission": "allow",
        "key_exprs": ["veil-store/**"]}));
    acl["subjects"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"id": "store-x", "cert_common_names": [store]}));
    acl["policies"].as_array_mut().unwrap().push(
        serde_json::json!({"id": "stores", "rules": ["stores.announce"], "subjects": ["store-x"]}),
    );
    let base =
        std::fs::read_to_string(veil_e2e::repo_path("configs/zenoh/service-mtls.json5")).unwrap();
    std::fs::write(
        dir.join("service.json5"),
        local(&with_access_control(&base, &acl).unwrap()),
    )
    .unwrap();
    let client = |name: &str| mtls_client(&dir, &local, name);
    // An announcement that would win over the service's own (started at 0, owning veil/**).
    let claim = veil_e2e::winning_claim("veil/**");
    let announce = |config: &Path| veil_e2e::announce_token(config, &claim);
    let mut service = serve(&config);
    // The device's certificate: denied, the service keeps running.
    announce(&client(device));
    assert!(
        service.0.try_wait().unwrap().is_none(),
        "a device certificate's announcement stopped the store"
    );
    // Control: a certificate the rules let announce stores stops it (the announcement arrives).
    announce(&client(store));
    let status = service
        .0
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("the store did not give way to an announcement that arrived");
    assert_eq!(status.code(), Some(3), "the ownership refusal's exit code");
    std::fs::remove_dir_all(&dir).unwrap();
}
