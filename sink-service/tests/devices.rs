// SPDX-License-Identifier: MIT OR Apache-2.0
//! Enrolled devices, the default trust mode, played by an attacker: a fresh key claiming an
//! unused device name of another tenant, an enrolled device's key reused under another name, a
//! revoked device, a re-keyed device whose old key is still in the wrong hands — each beside an
//! enrolled device whose records are stored (the control). Enrollment changes go through the
//! real command line and land in the audit log; `verify` checks the result.

use std::path::Path;

mod common;

use common::{Device, configs, sink_service, take_all, temp};
use veil_sink_service::config::{Config, TrustMode};
use veil_sink_service::ingest::Ingest;
use veil_wire::DeviceKey;

fn cli(config: &Path, args: &[&str]) -> String {
    let out = sink_service(config, args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn only_enrolled_devices_store_and_the_audit_log_names_each_change() {
    let dir = temp("devices");
    let (config, _) = configs(&dir, veil_testkit::net::free_port());
    // The default trust mode: no [trust] table at all.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("[trust]\nmode = \"tofu\"\n", "")).unwrap();
    assert_eq!(
        Config::load(&config).unwrap().trust.mode,
        TrustMode::Enrolled
    );
    cli(&config, &["keys", "init"]);

    let mut control = Device::try_at("acme", "hq", "cam-1", 1).unwrap();
    let mut stranger = Device::try_at("beta", "hq", "cam-2", 2).unwrap();
    let mut revoked = Device::try_at("acme", "hq", "cam-3", 3).unwrap();
    let mut rekeyed = Device::try_at("acme", "hq", "cam-4", 4).unwrap();
    // cam-1's own key, signing for a device of beta's.
    let mut borrowed = Device::try_at("beta", "hq", "cam-9", 1).unwrap();
    let mut wrong_site = Device::try_at("acme", "lab", "cam-5", 5).unwrap();
    let enroll = |d: &Device, site: &str| {
        cli(
            &config,
            &[
                "devices",
                "enroll",
                "--tenant",
                &d.names.tenant,
                "--site",
                site,
                "--device",
                &d.names.device,
                "--public-key",
                &d.key.public_hex(),
            ],
        );
    };
    enroll(&control, "hq");
    enroll(&revoked, "hq");
    enroll(&rekeyed, "hq");
    enroll(&wrong_site, "hq");
    // A key file enrolls too (created, mode 0600, when the device is provisioned here).
    let key_file = dir.join("cam-6.key");
    let out = sink_service(
        &config,
        &[
            "devices",
            "enroll",
            "--tenant",
            "acme",
            "--device",
            "cam-6",
            "--key-file",
            key_file.to_str().unwrap(),
            "--create",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let cam6 = DeviceKey::load_or_create(&key_file).unwrap();
    // So does a spool directory: the key where auditsink keeps it by default.
    let spool = dir.join("spool");
    cli(
        &config,
        &[
            "devices",
            "enroll",
            "--tenant",
            "acme",
            "--device",
            "cam-8",
            "--spool-dir",
            spool.to_str().unwrap(),
            "--create",
        ],
    );
    let cam8 = veil_wire::spool_dirs::device_dir(&spool, "acme", "cam-8").join("device.key");
    let cam8 = DeviceKey::load_or_create(&cam8).unwrap();
    // One key, one device: cam-1's key cannot be enrolled again.
    let again = sink_service(
        &config,
        &[
            "devices",
            "enroll",
            "--tenant",
            "beta",
            "--device",
            "cam-9",
            "--public-key",
            &control.key.public_hex(),
        ],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already enrolled"));
    cli(
        &config,
        &["devices", "revoke", "--tenant", "acme", "--device", "cam-3"],
    );
    let twice = sink_service(
        &config,
        &["devices", "revoke", "--tenant", "acme", "--device", "cam-3"],
    );
    assert!(
        !twice.status.success(),
        "a second revoke is refused (and not logged)"
    );
    // A mistyped key file enrolls nothing and creates nothing.
    let typo = dir.join("no-such-dir/cam-7.key");
    let out = sink_service(
        &config,
        &[
            "devices",
            "enroll",
            "--tenant",
            "acme",
            "--device",
            "cam-7",
            "--key-file",
            typo.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--create"));
    assert!(!dir.join("no-such-dir").exists());
    // Nor does a bad name, even with --create.
    let bad = dir.join("bad-name.key");
    let out = sink_service(
        &config,
        &[
            "devices",
            "enroll",
            "--tenant",
            "ac/me",
            "--device",
            "cam-7",
            "--key-file",
            bad.to_str().unwrap(),
            "--create",
        ],
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(!bad.exists(), "a refused enrollment wrote a key");
    let listed = cli(&config, &["devices", "list", "--tenant", "acme"]);
    assert_eq!(listed.lines().count(), 6, "{listed}");
    assert!(listed.contains(&cam6.public_hex()) && listed.contains(&cam8.public_hex()));
    assert!(!cli(&config, &["devices", "list", "--tenant", "beta"]).contains("cam"));

    // Takes records as `serve` does; returns the counts and the devices acknowledged.
    let take_acked = |records: &[veil_wire::Record]| {
        let store = common::store(&dir);
        let mut ingest = Ingest::new(
            store.clone(),
            Config::load(&config).unwrap().trust,
            Default::default(),
        );
        for r in records {
            ingest.take(&r.key_expr(), &r.to_vec()).unwrap();
        }
        let acked: std::collections::BTreeSet<String> = ingest
            .commit()
            .unwrap()
            .into_iter()
            .map(|(names, _, _)| format!("{}/{}", names.tenant, names.device))
            .collect();
        (ingest.stats.clone(), acked)
    };
    let take = |records: &[veil_wire::Record]| take_acked(records).0;
    // Before the re-key: cam-4's first chain under its enrolled key is stored.
    let stats = take(&rekeyed.records(3, 3));
    assert_eq!((stats.stored, stats.spoofed), (4, 0));
    // cam-4 lost its key (the chain survives on the device): a new key, a new generation.
    let old_key = std::mem::replace(&mut rekeyed.key, DeviceKey::from_seed([44; 32]));
    cli(
        &config,
        &[
            "devices",
            "rekey",
            "--tenant",
            "acme",
            "--device",
            "cam-4",
            "--public-key",
            &rekeyed.key.public_hex(),
        ],
    );
    let after_rekey = rekeyed.records(2, 2);
    // Whoever holds the old key signs the same chain on: refused.
    let mut thief = Device::try_at("acme", "hq", "cam-4", 4).unwrap();
    thief.key = old_key;
    thief.seq = rekeyed.seq;
    thief.head = rekeyed.head.clone();
    let stolen = thief.records(1, 1);

    let mut records = control.records(3, 3);
    records.extend(stranger.records(3, 3));
    records.extend(revoked.records(3, 3));
    records.extend(borrowed.records(3, 3));
    records.extend(wrong_site.records(3, 3));
    records.extend(after_rekey);
    let (stats, acked) = take_acked(&records);
    // Refused before anything is stored: four chains of 4 records each, and none of them is
    // acknowledged (their devices keep their spools).
    assert_eq!(stats.spoofed, 16, "{stats:?}");
    assert_eq!(
        acked,
        ["acme/cam-1".to_owned(), "acme/cam-4".to_owned()].into(),
        "only admitted devices are acknowledged"
    );
    assert_eq!(
        stats.chain_errors, 0,
        "cam-4's chain goes on under its new key: {stats:?}"
    );
    let stats = take(&stolen);
    assert_eq!(
        stats.stored, 0,
        "the old key signs nothing valid any more: {stats:?}"
    );
    assert_eq!(stats.chain_errors, 1, "{stats:?}");

    let store = common::store(&dir);
    let report = veil_sink_service::verify::verify(&store).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    // Valid: the control's 3 windows and checkpoint, cam-4's 7 records under both keys. In
    // quarantine: the four refused chains' 4 records each and the thief's checkpoint. The
    // thief's window waits, staged, for a checkpoint that never verifies.
    assert_eq!(report.records, 4 + 7, "{report:?}");
    assert_eq!(
        (report.set_aside, report.quarantined),
        (0, 4 * 4 + 1),
        "{report:?}"
    );
    assert_eq!(report.staged, 1, "{report:?}");
    // Strangers create no tenant: beta's alerts are the service's, naming beta.
    assert_eq!(store.tenants(), ["acme"]);
    let service_events = store.events(".service").unwrap();
    assert!(
        service_events.iter().any(|e| e["tenant"] == "beta"),
        "{service_events:?}"
    );
    let reasons: Vec<String> = ["acme", ".service"]
        .iter()
        .flat_map(|t| store.events(t).unwrap())
        .map(|e| e["reason"].as_str().unwrap_or("").to_owned())
        .collect();
    for expected in [
        "beta/cam-2 is not enrolled",
        "beta/cam-9 is not enrolled",
        "acme/cam-3 was revoked",
        "acme/cam-5 is enrolled for another site, not lab",
        "checkpoint signed by another key than the chain's",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "no integrity event saying {expected:?}: {reasons:?}"
        );
    }
    drop(store);
    let out = sink_service(&config, &["verify"]);
    assert!(out.status.success(), "{out:?}");

    let audit = cli(&config, &["audit"]);
    let actions: Vec<(String, String)> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"].as_str().unwrap_or("").starts_with("device."))
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["detail"]["device"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |a: &str, d: &str| (a.to_owned(), d.to_owned());
    assert_eq!(
        actions,
        [
            expect("device.enroll", "cam-1"),
            expect("device.enroll", "cam-3"),
            expect("device.enroll", "cam-4"),
            expect("device.enroll", "cam-5"),
            expect("device.enroll", "cam-6"),
            expect("device.enroll", "cam-8"),
            expect("device.revoke", "cam-3"),
            expect("device.rekey", "cam-4"),
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The acknowledgement key rotates in two steps: the next key exists (and is printed) before
/// it signs anything, so devices can be given both; the second step makes it current.
#[test]
fn the_acknowledgement_key_rotates_in_two_steps() {
    let dir = temp("rotate-ack");
    let (config, _) = configs(&dir, veil_testkit::net::free_port());
    let refused = sink_service(&config, &["keys", "rotate-ack"]);
    assert!(!refused.status.success(), "no key yet: {refused:?}");
    cli(&config, &["keys", "init"]);
    let first = cli(&config, &["keys", "public"]);
    let next = cli(&config, &["keys", "rotate-ack"]);
    assert_ne!(next, first);
    assert_eq!(
        cli(&config, &["keys", "public"]),
        first,
        "still signing with the current key"
    );
    assert!(dir.join("ack.key.next").exists());
    let switched = cli(&config, &["keys", "rotate-ack"]);
    assert_eq!(switched, next);
    assert_eq!(cli(&config, &["keys", "public"]), next);
    assert!(!dir.join("ack.key.next").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A device that lost its spool (and key) starts its chain over at sequence number 1: refused
/// as a conflict until it is re-keyed with a new chain, then stored in a new chain epoch beside
/// the old chain, both verified and both served.
#[test]
fn a_device_that_lost_its_spool_starts_a_new_chain_epoch_after_a_rekey() {
    let dir = temp("epoch");
    let (config, _) = configs(&dir, veil_testkit::net::free_port());
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("[trust]\nmode = \"tofu\"\n", "")).unwrap();
    cli(&config, &["keys", "init"]);
    let first = Device::try_at("acme", "hq", "cam-1", 1).unwrap();
    cli(
        &config,
        &[
            "devices",
            "enroll",
            "--tenant",
            "acme",
            "--device",
            "cam-1",
            "--public-key",
            &first.key.public_hex(),
        ],
    );
    let take = |records: &[veil_wire::Record]| {
        let store = common::store(&dir);
        let mut ingest = Ingest::new(
            store.clone(),
            Config::load(&config).unwrap().trust,
            Default::default(),
        );
        take_all(&mut ingest, records);
        ingest.stats.clone()
    };
    let mut first = first;
    let stats = take(&first.records(3, 3));
    assert_eq!(stats.stored, 4);
    // The replacement starts over: the same sequence numbers, other records.
    let restarted = || {
        Device::try_at("acme", "hq", "cam-1", 2)
            .unwrap()
            .records(2, 2)
    };
    let refused = take(&restarted());
    assert_eq!(refused.stored, 0, "{refused:?}");
    assert!(refused.quarantined > 0, "{refused:?}");
    cli(
        &config,
        &[
            "devices",
            "rekey",
            "--tenant",
            "acme",
            "--device",
            "cam-1",
            "--new-chain",
            "--public-key",
            &Device::try_at("acme", "hq", "cam-1", 2)
                .unwrap()
                .key
                .public_hex(),
        ],
    );
    let stats = take(&restarted());
    assert_eq!((stats.stored, stats.quarantined), (3, 0), "{stats:?}");

    let store = common::store(&dir);
    let report = veil_sink_service::verify::verify(&store).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    assert_eq!(report.records, 4 + 3, "{report:?}");
    assert_eq!(report.chains["acme/cam-1/door"], 4);
    assert_eq!(report.chains["acme/cam-1/door#1"], 3);
    let streams =
        veil_sink_service::api::data::streams(&store, "acme", &Default::default()).unwrap();
    let epochs: Vec<&serde_json::Value> = streams.iter().map(|s| &s["chain_epoch"]).collect();
    assert_eq!(epochs, [0, 1], "{streams:?}");
    let ke = zenoh::key_expr::KeyExpr::try_from("veil/acme/**").unwrap();
    let range = veil_sink_service::query::parse_range("").unwrap();
    let served =
        veil_sink_service::query::history(&store, &ke, range, Some("acme"), &|_, _, _, _| true)
            .unwrap();
    assert_eq!(served.len(), 7);
    drop(store);
    let audit = cli(&config, &["audit"]);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"device.rekey\"") && l.contains("\"chain_epoch\":1")),
        "{audit}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
