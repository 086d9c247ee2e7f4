// SPDX-License-Identifier: MIT OR Apache-2.0
//! From store layout 1 (tenant, site, device and stream spelled out in tree names and keys) to
//! layout 2 (opaque ids, names only in sealed values; see [`crate::store`]).
//!
//! The old database is read and a new one written beside it (`<store>.migrating`); only when
//! that is complete and flushed are the directories swapped (`<store>` → `<store>.layout1`,
//! `<store>.migrating` → `<store>`) and the old one removed — sled is log-structured, so names
//! deleted in place could survive in its files, a fresh database cannot hold them. An
//! interrupted migration starts again from the old database ([`recover`]). Values whose key
//! does not change are copied sealed as they are (their associated data binds tenant name, tree
//! kind and key, not the tree's name); records, indexes, unit states and alert
//! acknowledgements get new keys and are sealed anew.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::crypto::SecretKey;
use crate::store::{Entry, LAYOUT, SERVICE_TENANT, Store, UnitState};

/// `<store>` + suffix beside the store (a trailing slash of the configured path is ignored).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_owned()).unwrap_or_default();
    name.push(suffix);
    path.parent()
        .map(|p| p.join(&name))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Makes the renames in `path`'s directory durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => std::fs::File::open(".")?.sync_all(),
    }
}

/// Whether `path` holds a complete layout-2 database (what the swap's last step put there).
fn is_layout_2(path: &Path) -> anyhow::Result<bool> {
    let db = crate::store::open_db(path)?;
    let done = db
        .open_tree("meta")?
        .get(LAYOUT)?
        .is_some_and(|v| v.as_ref() == crate::store::LAYOUT_VERSION);
    drop(db);
    Ok(done)
}

/// Whether a database without a layout mark holds anything (then it is of layout 1).
pub fn holds_data(db: &sled::Db) -> anyhow::Result<bool> {
    for name in db.tree_names() {
        if name.as_ref() == b"meta" || name.as_ref() == b"__sled__default" {
            continue;
        }
        if !db.open_tree(&name)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Finishes or undoes a directory swap a crash interrupted: the old database set aside is
/// removed only when a complete layout-2 database is in place; otherwise whatever is at the
/// store's path is set aside and the old one goes back (to be migrated again).
pub fn recover(path: &Path) -> anyhow::Result<()> {
    let old = sibling(path, ".layout1");
    if !old.exists() {
        return Ok(());
    }
    if path.exists() && is_layout_2(path)? {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("removing the migrated layout-1 store {}", old.display()))?;
    } else {
        if path.exists() {
            let stray = sibling(path, ".incomplete");
            let _ = std::fs::remove_dir_all(&stray);
            std::fs::rename(path, &stray)?;
        }
        std::fs::rename(&old, path).with_context(|| {
            format!("restoring {} after an interrupted migration", old.display())
        })?;
    }
    sync_parent(path)?;
    Ok(())
}

/// `site␀device␀stream␀kind␀` + capture + seq → its parts.
fn v1_record_key(key: &[u8]) -> Option<(String, String, String, String, u64, u64)> {
    let mut parts = Vec::new();
    let mut rest = key;
    for _ in 0..4 {
        let end = rest.iter().position(|&b| b == 0)?;
        parts.push(String::from_utf8(rest[..end].to_vec()).ok()?);
        rest = &rest[end + 1..];
    }
    if rest.len() != 16 {
        return None;
    }
    let capture = u64::from_be_bytes(rest[..8].try_into().ok()?);
    let seq = u64::from_be_bytes(rest[8..].try_into().ok()?);
    let [site, device, stream, kind] = <[String; 4]>::try_from(parts).ok()?;
    Some((site, device, stream, kind, capture, seq))
}

/// `device␀stream` (+ `␀` + seq) → device, stream (, seq).
fn v1_unit(key: &[u8]) -> Option<(String, String, Option<u64>)> {
    let split = key.iter().position(|&b| b == 0)?;
    let device = String::from_utf8(key[..split].to_vec()).ok()?;
    let rest = &key[split + 1..];
    match rest.iter().position(|&b| b == 0) {
        Some(end) if rest.len() == end + 9 => Some((
            device,
            String::from_utf8(rest[..end].to_vec()).ok()?,
            Some(u64::from_be_bytes(rest[end + 1..].try_into().ok()?)),
        )),
        Some(_) => None,
        None => Some((device, String::from_utf8(rest.to_vec()).ok()?, None)),
    }
}

/// Rewrites the layout-1 store at `path` as layout 2, then swaps it in. `kek` is the store's
/// (its fingerprint already checked).
///
/// Errors: a value that does not open or a key of no known shape (nothing is swapped then: the
/// old store stays as it was).
pub fn v1_to_v2(path: &Path, kek: &SecretKey) -> anyhow::Result<()> {
    let fresh = sibling(path, ".migrating");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh)?;
    }
    let result = (|| -> anyhow::Result<u64> {
        let old = crate::store::open_db(path)?;
        let new = Store::create_with_kek(&fresh, kek)?;
        let n = copy(&old, &new, kek)?;
        new.flush()?;
        Ok(n)
    })();
    let n = result.with_context(|| {
        format!(
            "migrating the store {} to layout 2 (it is unchanged)",
            path.display()
        )
    })?;
    let old = sibling(path, ".layout1");
    std::fs::rename(path, &old)
        .with_context(|| format!("setting {} aside (is it a mount point?)", path.display()))?;
    std::fs::rename(&fresh, path)?;
    sync_parent(path)?;
    std::fs::remove_dir_all(&old)?;
    sync_parent(path)?;
    tracing::info!(
        store = %path.display(),
        entries = n,
        "migrated to layout 2: no names on disk"
    );
    Ok(())
}

fn copy(old: &sled::Db, new: &Store, kek: &SecretKey) -> anyhow::Result<u64> {
    let old_keys = old.open_tree("keys")?;
    // The tenants: their data keys, re-bound to their ids.
    let mut deks = HashMap::new();
    for item in old_keys.scan_prefix(b"dek/") {
        let (k, wrapped) = item?;
        let tenant = String::from_utf8(k[4..].to_vec()).context("a tenant name")?;
        deks.insert(tenant.clone(), kek.unwrap(&tenant, &wrapped)?);
    }
    // The service's own key first: the tenant registry is sealed with it.
    let mut tenants: Vec<&String> = deks.keys().collect();
    tenants.sort_by_key(|t| (t.as_str() != SERVICE_TENANT, t.as_str()));
    for tenant in tenants {
        new.adopt_dek(tenant, &deks[tenant])?;
    }
    let open = |tenant: &str, tree: &str, key: &[u8], sealed: &[u8]| -> anyhow::Result<Vec<u8>> {
        let dek = deks
            .get(tenant)
            .with_context(|| format!("no data key for {tree}/{tenant}"))?;
        dek.open(tenant, tree, key, sealed).with_context(|| {
            format!("{tree}/{tenant}: a value does not decrypt (altered, or moved)")
        })
    };
    let mut n = 0u64;
    // Record keys, old → new, for the index and the alerts' ids.
    // Layout-1 record keys do not name the tenant: the map is per tenant.
    let mut moved: HashMap<(String, Vec<u8>), Vec<u8>> = HashMap::new();
    let mut names: Vec<(String, String)> = old
        .tree_names()
        .into_iter()
        .filter_map(|n| String::from_utf8(n.to_vec()).ok())
        .filter_map(|n| n.split_once('/').map(|(k, t)| (k.to_owned(), t.to_owned())))
        .collect();
    // Records first: the index and the acknowledgements refer to their keys.
    names.sort_by_key(|(kind, _)| (kind != "records", kind.clone()));
    for (kind, tenant) in names {
        let tree = old.open_tree(format!("{kind}/{tenant}"))?;
        let target = new.tree(&kind, &tenant)?;
        for item in tree.iter() {
            let (k, v) = item?;
            n += 1;
            match kind.as_str() {
                "records" => {
                    let (_, device, stream, record_kind, capture, seq) =
                        v1_record_key(&k).context("a layout-1 records key")?;
                    let unit = new.unit_id(&tenant, &device, &stream, 0);
                    let key = crate::store::record_key(&unit, &record_kind, capture, seq);
                    let plain = open(&tenant, "records", &k, &v)?;
                    target.insert(&key, new.seal(&tenant, "records", &key, &plain)?)?;
                    moved.insert((tenant.clone(), k.to_vec()), key);
                }
                "index" => {
                    let (device, stream, seq) = v1_unit(&k).context("a layout-1 index key")?;
                    let seq = seq.context("a layout-1 index key without seq")?;
                    let entry = match Entry::decode(&v).context("a layout-1 index entry")? {
                        Entry::Live(h, rkey) => Entry::Live(
                            h,
                            moved
                                .get(&(tenant.clone(), rkey))
                                .cloned()
                                .context("an index entry of a record that is not stored")?,
                        ),
                        other => other,
                    };
                    let unit = new.unit_id(&tenant, &device, &stream, 0);
                    target.insert(crate::store::seq_key(&unit, seq), entry.encode())?;
                }
                "chains" => {
                    let (device, stream, _) = v1_unit(&k).context("a layout-1 unit key")?;
                    let state: UnitState = serde_json::from_slice(&v).context("a unit state")?;
                    new.set_unit_state(&tenant, &device, &stream, &state)?;
                }
                "cuts" => {
                    let (device, stream, _) = v1_unit(&k).context("a layout-1 unit key")?;
                    let cut = serde_json::from_slice(&v).context("a retention cut")?;
                    new.set_cut(&tenant, &new.unit_id(&tenant, &device, &stream, 0), &cut)?;
                }
                "acks" => {
                    // `d-<hex of a records key>`: the record's new key.
                    let id = String::from_utf8(k.to_vec()).context("an alert id")?;
                    let plain = open(&tenant, "acks", &k, &v)?;
                    let id = match id.strip_prefix("d-").and_then(|h| hex::decode(h).ok()) {
                        Some(old_key) => match moved.get(&(tenant.clone(), old_key)) {
                            Some(key) => format!("d-{}", hex::encode(key)),
                            None => id,
                        },
                        None => id,
                    };
                    new.put(&tenant, "acks", id.as_bytes(), &plain)?;
                }
                "devices" => {
                    let device = String::from_utf8(k.to_vec()).context("a device name")?;
                    let plain = open(&tenant, "devices", &k, &v)?;
                    new.put(&tenant, "devices", &new.device_id(&tenant, &device), &plain)?;
                }
                "device-keys" if tenant == SERVICE_TENANT => {
                    // Public key → owner, keyed by the key's id now.
                    let public_key = String::from_utf8(k.to_vec()).context("a public key")?;
                    let plain = open(&tenant, "device-keys", &k, &v)?;
                    let id = new.key_id(&public_key);
                    new.put(SERVICE_TENANT, "device-keys", id.as_bytes(), &plain)?;
                }
                "webhook-queue" if tenant == SERVICE_TENANT => {
                    // tenant ␀ sealed delivery → tenant id ␀ sealed delivery.
                    let split = v
                        .iter()
                        .position(|&b| b == 0)
                        .context("a queued delivery")?;
                    let owner = String::from_utf8(v[..split].to_vec())?;
                    let value = [new.tenant_id(&owner).as_bytes(), &v[split..]].concat();
                    target.insert(k, value)?;
                }
                // Keys unchanged (events, webhooks and their log, API keys, the audit log, the
                // quarantine, device keys…): sealed values copied as they are.
                _ => {
                    target.insert(k, v)?;
                }
            }
        }
    }
    // The service's own metadata (SIEM forwarding cursors…), but not what belongs to the
    // database (its KEK fingerprint and layout, already set).
    let new_meta = new.db().open_tree("meta")?;
    for item in old.open_tree("meta")?.iter() {
        let (k, v) = item?;
        if k.as_ref() != b"kek-fingerprint" && k.as_ref() != LAYOUT {
            new_meta.insert(k, v)?;
        }
    }
    // Trust on first use: `pin/<tenant>/<device>` → `pin/<device id>`, sealed in `pins`.
    for item in old_keys.iter() {
        let (k, v) = item?;
        let key = String::from_utf8_lossy(&k).into_owned();
        let pins = crate::store::PINS;
        if let Some(rest) = key.strip_prefix("pin/") {
            let (tenant, device) = rest.split_once('/').context("a layout-1 pin")?;
            let id = hex::encode(new.device_id(tenant, device));
            new.put(SERVICE_TENANT, pins, format!("pin/{id}").as_bytes(), &v)?;
        } else if let Some(public_key) = key.strip_prefix("owner/") {
            let id = new.key_id(public_key);
            new.put(SERVICE_TENANT, pins, format!("owner/{id}").as_bytes(), &v)?;
        } else if !key.starts_with("dek/") {
            bail!("an unknown layout-1 key entry {key:?}");
        }
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_swap_happens_beside_the_store_whatever_its_spelling() {
        for spelled in ["/var/lib/veil/sink", "/var/lib/veil/sink/"] {
            assert_eq!(
                sibling(Path::new(spelled), ".layout1"),
                PathBuf::from("/var/lib/veil/sink.layout1")
            );
        }
        assert_eq!(
            sibling(Path::new("sink"), ".migrating"),
            PathBuf::from("sink.migrating")
        );
    }

    /// A crash between the two renames, then an empty directory where the store was: the
    /// old database comes back rather than being removed.
    #[test]
    fn an_interrupted_swap_restores_the_old_store() {
        let dir = std::env::temp_dir().join(format!("veil-recover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = dir.join("sink");
        let old = dir.join("sink.layout1");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("marker"), b"the only copy").unwrap();
        std::fs::create_dir_all(&store).unwrap();
        recover(&store).unwrap();
        assert_eq!(
            std::fs::read(store.join("marker")).unwrap(),
            b"the only copy"
        );
        assert!(!old.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn layout_1_keys_split() {
        let mut k = b"hq\0cam-1\0door\0metrics\0".to_vec();
        k.extend_from_slice(&5u64.to_be_bytes());
        k.extend_from_slice(&7u64.to_be_bytes());
        assert_eq!(
            v1_record_key(&k),
            Some((
                "hq".into(),
                "cam-1".into(),
                "door".into(),
                "metrics".into(),
                5,
                7
            ))
        );
        let mut i = b"cam-1\0door\0".to_vec();
        i.extend_from_slice(&9u64.to_be_bytes());
        assert_eq!(v1_unit(&i), Some(("cam-1".into(), "door".into(), Some(9))));
        assert_eq!(
            v1_unit(b"cam-1\0door"),
            Some(("cam-1".into(), "door".into(), None))
        );
        assert_eq!(v1_record_key(b"short"), None);
    }
}
