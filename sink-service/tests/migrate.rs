// SPDX-License-Identifier: MIT OR Apache-2.0
//! A store written by the previous version opens with this one, and no file of a store holds a
//! tenant, site, device or stream name or any record's content.
//!
//! `tests/fixtures/store-v1/` was written by the version of 2026-11-30 (layout 1: names in tree
//! names and keys) with tenants `acme-corp` and `beta-labs`: chains of three devices (windows,
//! checkpoints, an NG image), a quarantined payload, a service integrity alert and its
//! acknowledgement, an admin API key (its token in `token`), a webhook subscription, an enrolled
//! device, trust-on-first-use pins and an audit-log entry.

use std::path::{Path, PathBuf};

mod common;

use common::{Device, take_all, temp};
use veil_sink_service::api::data::{self, Filter};
use veil_sink_service::api::keys::KeyStore;
use veil_sink_service::store::Store;

/// Every byte of every file under `dir`.
fn bytes_under(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(bytes_under(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The names and a piece of content the fixture holds (each long enough that random bytes do
/// not spell it by chance).
const SECRETS: [&str; 10] = [
    "acme-corp",
    "beta-labs",
    "headquarters",
    "plant-seven",
    "laboratory",
    "camera-01",
    "camera-09",
    "line-01",
    "opportunities_to_see",
    "fixture jpeg",
];

fn fixture(dir: &Path) -> (PathBuf, PathBuf, String) {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1");
    copy_dir(&source, dir);
    let kek = dir.join("kek");
    // Git keeps no file modes: the KEK must be 0600 to be accepted.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = std::fs::read_to_string(dir.join("token")).unwrap();
    (dir.join("store"), kek, token.trim().to_owned())
}

#[test]
fn a_layout_1_store_is_migrated_keeps_everything_and_holds_no_names() {
    let dir = temp("migrate");
    let (path, kek, token) = fixture(&dir);
    // The control: the old layout spells its names (and, in tree names, its tenants).
    let before = bytes_under(&path);
    for name in ["acme-corp", "beta-labs", "headquarters", "camera-01"] {
        assert!(holds(&before, name), "the fixture should spell {name}");
    }

    let store = std::sync::Arc::new(Store::open(&path, &kek).unwrap());
    assert!(!dir.join("store.layout1").exists() && !dir.join("store.migrating").exists());
    assert_eq!(store.tenants(), ["acme-corp", "beta-labs"]);
    let report = veil_sink_service::verify::verify(&store).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    // acme-corp: camera-01's 6 windows and 2 checkpoints, line-01's image and checkpoint;
    // beta-labs: camera-09's 4 windows and its checkpoint.
    assert_eq!(report.records, 8 + 2 + 5, "{report:?}");
    assert_eq!((report.staged, report.set_aside), (0, 0), "{report:?}");
    assert_eq!(report.quarantined, 1);
    assert_eq!(report.integrity_events, 1);
    assert!(report.audit.errors.is_empty(), "{:?}", report.audit.errors);

    // The API's reads: streams, records, the image by id, the alert and its acknowledgement.
    let all = Filter::within(&Default::default());
    let streams = data::streams(&store, "acme-corp", &Default::default()).unwrap();
    assert_eq!(streams.len(), 2, "{streams:?}");
    let page = data::page(
        &store,
        "acme-corp",
        &[veil_wire::Kind::Image],
        &all,
        None,
        10,
    )
    .unwrap();
    assert_eq!(page.items.len(), 1);
    let image = data::image(
        &store,
        "acme-corp",
        &Default::default(),
        &hex::encode(&page.keys[0]),
    )
    .unwrap()
    .expect("the image by its id");
    assert_eq!(image.device, "line-01");
    let alerts = data::integrity(&store, "acme-corp", &all).unwrap();
    let service_alert = alerts.iter().find(|a| a["source"] == "service").unwrap();
    assert_eq!(service_alert["site"], "headquarters", "{service_alert}");
    assert_eq!(
        service_alert["acknowledged"]["note"], "seen",
        "{service_alert}"
    );
    // History over Zenoh answers the same records.
    let ke = zenoh::key_expr::KeyExpr::try_from("veil/acme-corp/**").unwrap();
    let range = veil_sink_service::query::parse_range("").unwrap();
    let history =
        veil_sink_service::query::history(&store, &ke, range, Some("acme-corp"), &|_, _, _, _| {
            true
        })
        .unwrap();
    assert_eq!(history.len(), 10);
    // Keys, subscriptions, enrollments and pins.
    let keys = KeyStore::open(&store).unwrap();
    assert!(
        keys.authenticate(Some(&token), veil_sink_service::store::now_ns())
            .is_ok()
    );
    assert_eq!(
        veil_sink_service::webhooks::list(&store, "acme-corp")
            .unwrap()
            .len(),
        1
    );
    let enrolled = veil_sink_service::devices::get(&store, "acme-corp", "camera-02").unwrap();
    assert_eq!(enrolled.unwrap().site.as_deref(), Some("headquarters"));
    // Its key is still taken: one key, one device.
    let camera_02 = veil_wire::DeviceKey::from_seed([2; 32]).public_hex();
    let again =
        veil_sink_service::devices::enroll(&store, "beta-labs", "camera-88", None, &camera_02, 1);
    assert!(again.unwrap_err().to_string().contains("already enrolled"));
    let camera_01 = veil_wire::DeviceKey::from_seed([1; 32]).public_hex();
    assert_eq!(
        store.pin_key("acme-corp", "camera-01", &camera_01).unwrap(),
        Ok(())
    );
    assert!(
        store
            .pin_key("beta-labs", "camera-77", &camera_01)
            .unwrap()
            .is_err()
    );

    // The chains go on: more records of camera-01 and of a new device, after the migration.
    let mut ingest = common::ingest(&store);
    let mut camera = Device::try_at("acme-corp", "headquarters", "camera-01", 1).unwrap();
    let old = Device::try_at("acme-corp", "headquarters", "camera-01", 1)
        .unwrap()
        .records(6, 3);
    camera.seq = old.last().unwrap().seq;
    camera.head = old.last().unwrap().hash.clone();
    take_all(&mut ingest, &camera.records(2, 2));
    let mut fresh = Device::try_at("acme-corp", "warehouse-nine", "camera-77", 77).unwrap();
    take_all(&mut ingest, &fresh.records(3, 3));
    drop(ingest);
    let report = veil_sink_service::verify::verify(&store).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    assert_eq!(report.records, 15 + 3 + 4, "{report:?}");
    store.flush().unwrap();
    drop((keys, store));

    // Reopened: no second migration, the same store.
    let store = Store::open(&path, &kek).unwrap();
    assert_eq!(
        veil_sink_service::verify::verify(&store).unwrap().records,
        22
    );
    drop(store);

    // Not one name, not one piece of content, in any file of the store.
    let after = bytes_under(&path);
    assert!(
        after.len() > 10_000,
        "the store is there: {} bytes",
        after.len()
    );
    for secret in SECRETS.iter().chain(&["warehouse-nine", "camera-77"]) {
        assert!(!holds(&after, secret), "the store's files spell {secret:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
