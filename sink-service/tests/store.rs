// SPDX-License-Identifier: MIT OR Apache-2.0
//! The store without Zenoh: ingest rules, verification against tampering, tenant spoofing,
//! malformed input, backup and restore, retention, key rotation. Real sled files, real AES-GCM.

mod common;

use common::{Device, ingest, store, take_all, temp};
use veil_sink_service::ingest::Outcome;
use veil_sink_service::{backup, retention, verify};
use veil_wire::Kind;

#[test]
fn records_are_stored_once_verified_and_only_after_a_trusted_checkpoint() {
    let dir = temp("basic");
    let store = store(&dir);
    let mut ingest = ingest(&store);
    let mut device = Device::new("acme", "cam-1", 1);
    let records = device.records(10, 4);
    // Before the checkpoint: staged, acknowledged, not served.
    for r in &records[..4] {
        assert_eq!(
            ingest.take(&r.key_expr(), &r.to_vec()).unwrap(),
            Outcome::Staged
        );
    }
    let acks = ingest.commit().unwrap();
    assert_eq!(acks[0].1, 4);
    assert_eq!(verify::verify(&store).unwrap().records, 0);
    // Out of order, then everything, then all of it again (a device replaying).
    ingest
        .take(&records[6].key_expr(), &records[6].to_vec())
        .unwrap();
    take_all(&mut ingest, &records);
    take_all(&mut ingest, &records);
    let report = verify::verify(&store).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    assert_eq!((report.records, report.staged), (records.len() as u64, 0));
    // Records 1–4 and 7 (taken out of order) in the first replay, everything in the second.
    assert_eq!(ingest.stats.duplicates, 5 + records.len() as u64);
    assert_eq!(ingest.commit().unwrap(), vec![]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verify_names_a_flipped_byte_and_swapped_tenants() {
    let dir = temp("tamper");
    let store = store(&dir);
    let mut ingest = ingest(&store);
    take_all(&mut ingest, &Device::new("acme", "cam-1", 1).records(6, 3));
    take_all(&mut ingest, &Device::new("beta", "cam-9", 2).records(6, 3));
    assert!(verify::verify(&store).unwrap().ok());

    // Flip one byte of one stored record, through the raw sled tree.
    let acme = store.tree("records", "acme").unwrap();
    let seq_of = |k: &[u8]| veil_sink_service::store::parse_record_key(k).unwrap().seq;
    let (key, value) = acme
        .iter()
        .map(|i| i.unwrap())
        .find(|(k, _)| seq_of(k) == 3)
        .unwrap();
    let mut flipped = value.to_vec();
    flipped[30] ^= 0x01;
    acme.insert(&key, flipped).unwrap();
    let report = verify::verify(&store).unwrap();
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    assert!(
        report.errors[0].contains("acme/hq/cam-1/door/metrics seq 3: does not decrypt"),
        "{:?}",
        report.errors
    );
    assert!(
        report.errors[1].contains("acme/cam-1/door record 3"),
        "{:?}",
        report.errors
    );
    acme.insert(&key, value.clone()).unwrap();
    assert!(verify::verify(&store).unwrap().ok());

    // Swap two tenants' ciphertexts (same position in both trees).
    let beta = store.tree("records", "beta").unwrap();
    let (bkey, bvalue) = beta
        .iter()
        .map(|i| i.unwrap())
        .find(|(k, _)| seq_of(k) == 3)
        .unwrap();
    acme.insert(&key, bvalue.to_vec()).unwrap();
    beta.insert(&bkey, value.to_vec()).unwrap();
    let report = verify::verify(&store).unwrap();
    assert!(!report.ok());
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.starts_with("acme/") && e.contains("does not decrypt")),
        "{:?}",
        report.errors
    );
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.starts_with("beta/") && e.contains("does not decrypt")),
        "{:?}",
        report.errors
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_device_of_tenant_a_publishing_under_b_is_quarantined() {
    let dir = temp("spoof");
    let store = store(&dir);
    let mut ingest = ingest(&store);
    // The device's key is pinned to tenant A on first use.
    let mut honest = Device::new("tenant-a", "cam-1", 7);
    take_all(&mut ingest, &honest.records(3, 3));
    // The same device (same key) now publishes under B, key expression and body agreeing.
    let mut spoof = Device::new("tenant-b", "cam-1", 7);
    let records = spoof.records(5, 10);
    take_all(&mut ingest, &records);
    let report = verify::verify(&store).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    // Nothing of B is valid; everything it sent is in quarantine; an integrity event says why.
    assert!(store.tree("records", "tenant-b").unwrap().is_empty());
    assert_eq!(report.set_aside, 6);
    let events = store.events("tenant-b").unwrap();
    assert!(
        events.iter().any(|e| e["type"] == "untrusted-key"
            && e["reason"].as_str().unwrap().contains("tenant-a/cam-1")),
        "{events:?}"
    );
    // A pinned-mode store refuses keys not listed for the tenant, naming the owner if known.
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_oversized_wrong_schema_and_spoofed_payloads_are_quarantined_while_valid_ones_are_stored()
 {
    let dir = temp("garbage");
    let store = store(&dir);
    let mut ingest = ingest(&store);
    let mut device = Device::new("acme", "cam-1", 1);
    let records = device.records(20, 5);
    let valid = records[0].clone();
    let mut wrong_schema: serde_json::Value = serde_json::from_slice(&valid.to_vec()).unwrap();
    wrong_schema["v"] = serde_json::json!(7);
    let mut spoofed = valid.to_vec();
    let spoof_key = "veil/other/hq/cam-1/door/metrics";
    let oversized = vec![b'{'; 17 << 20];
    let bad: Vec<(&str, Vec<u8>)> = vec![
        (
            "veil/acme/hq/cam-1/door/metrics",
            b"\x00\xffgarbage".to_vec(),
        ),
        (
            "veil/acme/hq/cam-1/door/metrics",
            valid.to_vec()[..40].to_vec(),
        ),
        ("veil/acme/hq/cam-1/door/metrics", oversized),
        (
            "veil/acme/hq/cam-1/door/metrics",
            serde_json::to_vec(&wrong_schema).unwrap(),
        ),
        ("veil/acme/hq/cam-1/door/metrics", b"{\"v\":1}".to_vec()),
        (spoof_key, std::mem::take(&mut spoofed)),
        ("veil/acme/hq/cam-1/door/event", valid.to_vec()),
        ("veil/acme", valid.to_vec()),
    ];
    for (i, r) in records.iter().enumerate() {
        ingest.take(&r.key_expr(), &r.to_vec()).unwrap();
        let (key, payload) = &bad[i % bad.len()];
        match ingest.take(key, payload).unwrap() {
            Outcome::Quarantined(_) => {}
            other => panic!("{key}: {other:?}"),
        }
    }
    ingest.commit().unwrap();
    let report = verify::verify(&store).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    assert_eq!(report.records, records.len() as u64);
    assert_eq!(report.quarantined, records.len() as u64);
    let s = &ingest.stats;
    assert_eq!(
        (s.oversized > 0, s.malformed > 0, s.spoofed > 0),
        (true, true, true),
        "{s:?}"
    );
    let q = store.quarantined().unwrap();
    assert!(
        q.iter()
            .any(|e| e["reason"].as_str().unwrap().starts_with("oversized"))
    );
    assert!(q.iter().any(|e| {
        e["reason"]
            .as_str()
            .unwrap()
            .contains("unsupported wire version 7")
    }));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_backup_restores_into_an_empty_store_that_verifies() {
    let dir = temp("backup");
    let store_a = store(&dir);
    let mut ingest = ingest(&store_a);
    take_all(&mut ingest, &Device::new("acme", "cam-1", 1).records(50, 7));
    take_all(&mut ingest, &Device::new("beta", "cam-2", 2).records(20, 7));
    let key = veil_sink_service::crypto::SecretKey::generate().unwrap();
    let file = dir.join("store.vbk");
    backup::backup(&store_a, &file, &key).unwrap();
    // Nothing readable in the backup: no tenant names, no record content.
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        !bytes.windows(4).any(|w| w == b"acme") && !bytes.windows(12).any(|w| w == b"window_start")
    );

    // Into an empty store with another KEK.
    let other = dir.join("restored");
    std::fs::create_dir_all(&other).unwrap();
    let store_b = store(&other);
    assert!(
        backup::restore(
            &store_b,
            &file,
            &veil_sink_service::crypto::SecretKey::generate().unwrap()
        )
        .is_err(),
        "wrong backup key"
    );
    let n = backup::restore(&store_b, &file, &key).unwrap();
    assert!(n > 100);
    // Reopened, as after `sink-service restore`: the names key is the backup's now.
    drop(store_b);
    let store_b = store(&other);
    let report = verify::verify(&store_b).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    assert_eq!(report.records, 50 + 8 + 20 + 3);
    assert!(
        backup::restore(&store_b, &file, &key).is_err(),
        "a store with data is refused"
    );
    // A truncated backup is refused.
    std::fs::write(dir.join("cut.vbk"), &bytes[..bytes.len() - 10]).unwrap();
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(backup::restore(&store(&empty), &dir.join("cut.vbk"), &key).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn retention_deletes_old_records_and_what_remains_still_verifies() {
    let dir = temp("retention");
    let store = store(&dir);
    let mut ingest = ingest(&store);
    let mut device = Device::new("acme", "cam-1", 1);
    take_all(&mut ingest, &device.records(120, 10));
    // Keep metrics for 30 minutes at "now" = the end of the 2 hours: 90 windows go.
    let now = 1_795_428_000_000_000_000 + 121 * 60_000_000_000;
    let keep = [(Kind::Metrics, std::time::Duration::from_secs(30 * 60))]
        .into_iter()
        .collect();
    let deleted = retention::sweep(&store, &keep, now).unwrap();
    assert_eq!(deleted, 90);
    let report = verify::verify(&store).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    assert_eq!(report.records, 30 + 12);
    // The chain goes on after the cut.
    take_all(&mut ingest, &device.records(5, 10));
    let report = verify::verify(&store).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rotating_the_key_encryption_key_rewraps_and_refuses_the_old_one() {
    let dir = temp("rotate");
    let kek_file = dir.join("kek");
    {
        let store = store(&dir);
        let mut ingest = ingest(&store);
        take_all(&mut ingest, &Device::new("acme", "cam-1", 1).records(10, 5));
        let new = veil_sink_service::crypto::SecretKey::generate().unwrap();
        std::fs::copy(&kek_file, dir.join("old-kek")).unwrap();
        // acme's data key, the service's (its tenant registry) and the names key.
        assert_eq!(store.rewrap(&new).unwrap(), 3);
        std::fs::remove_file(&kek_file).unwrap();
        new.save(&kek_file).unwrap();
    }
    let store = veil_sink_service::store::Store::open(&dir.join("store"), &kek_file).unwrap();
    assert!(verify::verify(&store).unwrap().ok());
    drop(store);
    let err = veil_sink_service::store::Store::open(&dir.join("store"), &dir.join("old-kek"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("is not this store's"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_pinned_store_takes_only_the_keys_listed_for_the_tenant() {
    let dir = temp("pinned");
    let store = store(&dir);
    let listed = Device::new("acme", "cam-1", 1);
    let mut trust = veil_sink_service::config::TrustConfig {
        mode: veil_sink_service::config::TrustMode::Pinned,
        ..Default::default()
    };
    trust
        .tenants
        .insert("acme".into(), vec![listed.key.public_hex()]);
    let mut ingest =
        veil_sink_service::ingest::Ingest::new(store.clone(), trust, Default::default());
    take_all(&mut ingest, &Device::new("acme", "cam-1", 1).records(5, 5));
    // A device of acme with an unlisted key, and acme's key under another tenant.
    take_all(&mut ingest, &Device::new("acme", "cam-2", 2).records(5, 5));
    take_all(&mut ingest, &Device::new("beta", "cam-1", 1).records(5, 5));
    let report = verify::verify(&store).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    assert_eq!(report.records, 6);
    assert_eq!(report.set_aside, 12);
    let beta = store.events("beta").unwrap();
    assert!(
        beta[0]["reason"]
            .as_str()
            .unwrap()
            .contains("pinned for tenant acme"),
        "{beta:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_gap_the_device_does_not_fill_becomes_an_integrity_event() {
    let dir = temp("gap");
    let store = store(&dir);
    let limits = veil_sink_service::config::Limits {
        gap_report_ms: 0,
        ..Default::default()
    };
    let trust = veil_sink_service::config::TrustConfig {
        mode: veil_sink_service::config::TrustMode::Tofu,
        ..Default::default()
    };
    let mut ingest = veil_sink_service::ingest::Ingest::new(store.clone(), trust, limits);
    let records = Device::new("acme", "cam-1", 1).records(10, 5);
    // Records 3 and 4 never come.
    let delivered: Vec<_> = records
        .iter()
        .filter(|r| r.seq != 3 && r.seq != 4)
        .cloned()
        .collect();
    take_all(&mut ingest, &delivered);
    ingest.commit().unwrap();
    let events = store.events("acme").unwrap();
    assert_eq!(events.len(), 1, "reported once: {events:?}");
    assert_eq!(events[0]["type"], "gap");
    assert!(
        events[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("records 3..4 missing"),
        "{events:?}"
    );
    // Only what precedes the gap is acknowledged, and nothing is valid without its checkpoint.
    assert_eq!(
        store
            .unit_state("acme", "cam-1", "door", 0)
            .unwrap()
            .unwrap()
            .chain
            .next_seq,
        3
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// History serves a tenant only the kinds its reader may read (Zenoh maps API-key scopes to
/// kinds): an operator key's view holds the window but not the kept frame; the control, a
/// reader allowed everything, gets both.
#[test]
fn history_serves_only_the_kinds_the_reader_may_read() {
    let dir = temp("history-kinds");
    let store = store(&dir);
    let mut ingest = ingest(&store);
    let mut station = Device::new("acme", "line-1", 3);
    let records = [
        station.window(1),
        station.image(2, 7, b"\xff\xd8 not really a jpeg \xff\xd9"),
        station.checkpoint(),
    ];
    take_all(&mut ingest, &records);
    let everything = zenoh::key_expr::KeyExpr::try_from("veil/**").unwrap();
    let kinds = |readable: veil_sink_service::query::Readable<'_>| -> Vec<Kind> {
        veil_sink_service::query::history(
            &store,
            &everything,
            veil_sink_service::query::parse_range("").unwrap(),
            Some("acme"),
            readable,
        )
        .unwrap()
        .iter()
        .map(|(_, b)| veil_wire::Record::from_slice(b).unwrap().kind)
        .collect()
    };
    let all = kinds(&|_, _, _, _| true);
    assert!(
        all.contains(&Kind::Image) && all.contains(&Kind::Metrics),
        "{all:?}"
    );
    let structure = kinds(&|k, _, _, _| k != Kind::Image);
    assert!(!structure.contains(&Kind::Image), "{structure:?}");
    assert!(structure.contains(&Kind::Metrics), "{structure:?}");
    // Another tenant's reader: nothing.
    let other = veil_sink_service::query::history(
        &store,
        &everything,
        veil_sink_service::query::parse_range("").unwrap(),
        Some("beta"),
        &|_, _, _, _| true,
    )
    .unwrap();
    assert!(other.is_empty());
}

/// A webhook subscription limited to site `lab` (what a station-scoped key creates) is queued
/// deliveries only for lab's records and alerts; the tenant-wide subscription beside it, the
/// control, hears of both sites.
#[test]
fn webhook_deliveries_honour_the_subscriptions_stations() {
    use veil_sink_service::stations::Stations;
    use veil_sink_service::webhooks::{self, NewSubscription, Policy};
    let dir = temp("hook-stations");
    let store = store(&dir);
    let policy = Policy {
        max_attempts: 1,
        backoff_base: std::time::Duration::from_secs(1),
        backoff_max: std::time::Duration::from_secs(1),
        timeout: std::time::Duration::from_secs(1),
        allow_http: true,
        allow_private: true,
    };
    let subscribe = |stations: Stations| {
        webhooks::create(
            &store,
            "acme",
            NewSubscription {
                url: "http://127.0.0.1:9/hook",
                events: ["window.closed".to_owned(), "integrity.alert".to_owned()].into(),
                description: "",
                stations,
            },
            &policy,
        )
        .unwrap()
        .unwrap()
        .id
    };
    let wide = subscribe(Stations::default());
    let lab = subscribe(Stations::new(&["lab"], &[], &[]).unwrap());
    store.set_notify(true);
    let mut ingest = ingest(&store);
    take_all(&mut ingest, &Device::new("acme", "cam-1", 1).records(3, 3));
    take_all(
        &mut ingest,
        &Device::try_at("acme", "lab", "cam-7", 7)
            .unwrap()
            .records(2, 2),
    );
    for device in ["cam-1", "cam-7"] {
        store
            .integrity_event(
                "acme",
                serde_json::json!({"type": "gap", "device": device, "stream": "door"}),
            )
            .unwrap();
    }
    webhooks::dispatch(&store, store.take_notices()).unwrap();
    // The queue: due time (8 bytes) ‖ delivery id → tenant ␀ sealed delivery.
    let mut queued: std::collections::HashMap<String, Vec<String>> = Default::default();
    for item in store.tree("webhook-queue", ".service").unwrap().iter() {
        let (key, value) = item.unwrap();
        let split = value.iter().position(|&b| b == 0).unwrap();
        let plain = store
            .open_value("acme", "webhook-queue", &key[8..], &value[split + 1..])
            .unwrap()
            .unwrap();
        let d: webhooks::Delivery = serde_json::from_slice(&plain).unwrap();
        queued.entry(d.subscription).or_default().push(d.body);
    }
    let sites = |id: &str| -> Vec<(String, bool)> {
        queued[id]
            .iter()
            .map(|body| {
                let v: serde_json::Value = serde_json::from_str(body).unwrap();
                let data = &v["data"];
                let about_lab =
                    data["record"]["site"] == "lab" || data["event"]["device"] == "cam-7";
                (v["type"].as_str().unwrap().to_owned(), about_lab)
            })
            .collect()
    };
    let wide = sites(&wide);
    assert_eq!(wide.len(), 7, "5 windows and 2 alerts: {wide:?}");
    assert!(wide.iter().any(|(_, lab)| !lab), "the control hears of hq");
    let lab = sites(&lab);
    assert_eq!(lab.len(), 3, "2 windows and 1 alert: {lab:?}");
    assert!(lab.iter().all(|(_, lab)| *lab), "{lab:?}");
}

/// A chain is of one site: a device that names another site mid-chain has those records
/// refused, so a site filter (and a site-scoped key) sees every stored record of the chain
/// under the chain's site, none under the other.
#[test]
fn a_chain_that_changes_site_is_refused_from_the_change_on() {
    use veil_sink_service::api::data::{self, Filter};
    let ingest_of = |store| common::ingest(store);
    let dir = temp("site-change");
    let store = store(&dir);
    let mut ingest = ingest(&store);
    let mut device = Device::try_at("acme", "hq", "cam-5", 5).unwrap();
    let mut records = device.records(2, 2);
    device.names.site = "lab".into();
    records.extend(device.records(2, 2));
    take_all(&mut ingest, &records);
    assert_eq!(ingest.stats.spoofed, 3, "{:?}", ingest.stats);
    let report = verify::verify(&store).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    assert_eq!(
        report.records, 3,
        "hq's two windows and checkpoint: {report:?}"
    );
    let kinds = [Kind::Metrics, Kind::Checkpoint];
    let at = |site: &str| {
        let filter = Filter {
            site: Some(site.into()),
            ..Filter::within(&Default::default())
        };
        data::page(&store, "acme", &kinds, &filter, None, 100)
            .unwrap()
            .items
            .len()
    };
    assert_eq!((at("hq"), at("lab")), (3, 0));
    let events = store.events("acme").unwrap();
    assert!(
        events.iter().any(|e| e["reason"]
            .as_str()
            .unwrap_or("")
            .contains("names site lab, its chain is of site hq")
            && e["site"] == "hq"),
        "{events:?}"
    );
    // After a restart the first record to arrive names the other site: refused, and the
    // genuine records that follow are still acknowledged on the chain's site.
    drop(ingest);
    let mut ingest = ingest_of(&store);
    let mut genuine = Device::try_at("acme", "hq", "cam-5", 5).unwrap();
    genuine.seq = records[2].seq;
    genuine.head = records[2].hash.clone();
    let mut again = vec![records[3].clone()];
    again.extend(genuine.records(1, 1));
    for r in &again {
        ingest.take(&r.key_expr(), &r.to_vec()).unwrap();
    }
    let acks = ingest.commit().unwrap();
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!((acks[0].0.site.as_str(), acks[0].1), ("hq", 5));
    std::fs::remove_dir_all(&dir).unwrap();
}
