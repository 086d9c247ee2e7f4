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
use crate::store::{Entry, SERVICE_TENANT, Store, UnitState};

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
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

/// Finishes or undoes a directory swap a crash interrupted: with the old database set aside
/// and no complete new one in place, the old one goes back (and is migrated again).
pub fn recover(path: &Path) -> anyhow::Result<()> {
    let old = sibling(path, ".layout1");
    if !old.exists() {
        return Ok(());
    }
    if path.exists() {
        // The new database is in place (the swap's last step): the old one is done with.
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("removing the migrated layout-1 store {}", old.display()))?;
    } else {
        std::fs::rename(&old, path).with_context(|| {
            format!("restoring {} after an interrupted migration", old.display())
        })?;
    }
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
    let kek_copy = tempfile_kek(path, kek)?;
    let result = (|| -> anyhow::Result<u64> {
        let old = crate::store::open_db(path)?;
        let new = Store::open(&fresh, &kek_copy)?;
        let n = copy(&old, &new, kek)?;
        new.flush()?;
        Ok(n)
    })();
    let _ = std::fs::remove_file(&kek_copy);
    let n = result.with_context(|| {
        format!(
            "migrating the store {} to layout 2 (it is unchanged)",
            path.display()
        )
    })?;
    let old = sibling(path, ".layout1");
    std::fs::rename(path, &old)?;
    std::fs::rename(&fresh, path)?;
    std::fs::remove_dir_all(&old)?;
    tracing::info!(
        store = %path.display(),
        entries = n,
        "migrated to layout 2: no names on disk"
    );
    Ok(())
}

/// The new database opens with the same KEK, from a file of its own (mode 0600, removed after).
fn tempfile_kek(path: &Path, kek: &SecretKey) -> anyhow::Result<PathBuf> {
    let file = sibling(path, ".migrating.kek");
    let _ = std::fs::remove_file(&file);
    kek.save(&file)?;
    Ok(file)
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
    let mut moved: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
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
                    moved.insert(k.to_vec(), key);
                }
                "index" => {
                    let (device, stream, seq) = v1_unit(&k).context("a layout-1 index key")?;
                    let seq = seq.context("a layout-1 index key without seq")?;
                    let entry = match Entry::decode(&v).context("a layout-1 index entry")? {
                        Entry::Live(h, rkey) => Entry::Live(
                            h,
                            moved
                                .get(&rkey)
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
                        Some(old_key) => match moved.get(&old_key) {
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
