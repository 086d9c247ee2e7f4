// SPDX-License-Identifier: MIT OR Apache-2.0
//! Encrypted backups. A backup holds every tree as it is at rest (records stay sealed with their
//! tenants' data keys) with the data keys re-wrapped under the backup's own key — never the
//! key-encryption key — and the whole stream sealed again in chunks with the backup key, so
//! even the names in the keys stay private. The last chunk is marked: a truncated backup is
//! refused.
//!
//! File: `VEILBAK1` then chunks `u32 length ‖ sealed(chunk)`; a chunk's associated data is
//! `veil-backup-v1 ‖ index (u64 BE) ‖ last (u8)`; a chunk's plaintext is entries
//! `u16 tree-name length ‖ name ‖ u32 key length ‖ key ‖ u32 value length ‖ value`.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, bail};

use crate::crypto::SecretKey;
use crate::store::Store;

const MAGIC: &[u8; 8] = b"VEILBAK1";
const CHUNK: usize = 1 << 20;

fn label(index: u64, last: bool) -> Vec<u8> {
    [
        b"veil-backup-v1".as_slice(),
        &index.to_be_bytes(),
        &[last as u8],
    ]
    .concat()
}

fn push_entry(buf: &mut Vec<u8>, tree: &[u8], key: &[u8], value: &[u8]) {
    buf.extend_from_slice(&(tree.len() as u16).to_be_bytes());
    buf.extend_from_slice(tree);
    buf.extend_from_slice(&(key.len() as u32).to_be_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(&(value.len() as u32).to_be_bytes());
    buf.extend_from_slice(value);
}

/// Writes the backup; returns the number of entries. The file appears whole or not at all
/// (written beside `out` as `<out>.partial`, synced, then renamed).
///
/// Errors: the store's (reading) and the file system's, naming the file.
pub fn backup(store: &Store, out: &Path, backup_key: &SecretKey) -> anyhow::Result<u64> {
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let written = write_backup(store, &partial, backup_key);
    let renamed = written.and_then(|n| {
        std::fs::rename(&partial, out)
            .with_context(|| format!("moving {} to {}", partial.display(), out.display()))?;
        Ok(n)
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    renamed
}

/// The file name of a scheduled backup taken at `ns` (since the Unix epoch):
/// `veil-<RFC 3339 UTC, ':' as '-'>.bak`; names sort by time.
pub fn scheduled_name(ns: u64) -> String {
    format!(
        "veil-{}.bak",
        veil_wire::time::format_time(ns).replace(':', "-")
    )
}

/// Of the scheduled backups named in `names`, those to delete so that the newest `keep` stay
/// (other files are not ours and stay).
pub fn beyond_keep(names: &[String], keep: usize) -> Vec<String> {
    let mut ours: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("veil-") && n.ends_with(".bak"))
        .collect();
    ours.sort();
    let excess = ours.len().saturating_sub(keep);
    ours.into_iter().take(excess).cloned().collect()
}

/// A scheduled backup ([`crate::config::BackupSchedule`]) into its folder, then the oldest ones
/// beyond `keep` deleted; returns the file and its number of entries.
///
/// Errors: the backup's (the folder, the key file, the store); an older backup that cannot be
/// deleted is logged, not an error.
pub fn scheduled(
    store: &Store,
    schedule: &crate::config::BackupSchedule,
) -> anyhow::Result<(std::path::PathBuf, u64)> {
    std::fs::create_dir_all(&schedule.dir)
        .with_context(|| format!("creating {}", schedule.dir.display()))?;
    let key = load_or_create_key(&schedule.key_file)?;
    let out = schedule.dir.join(scheduled_name(crate::store::now_ns()));
    let n = backup(store, &out, &key)?;
    let names: Vec<String> = std::fs::read_dir(&schedule.dir)
        .with_context(|| format!("listing {}", schedule.dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    for old in beyond_keep(&names, schedule.keep) {
        let path = schedule.dir.join(&old);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(file = %path.display(), "could not delete an old backup: {e}");
        }
    }
    Ok((out, n))
}

/// The backup key in `path`, made (mode 0600) when there is none.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<SecretKey> {
    if path.exists() {
        SecretKey::load(path)
    } else {
        let key = SecretKey::generate()?;
        key.save(path)?;
        Ok(key)
    }
}

fn write_backup(store: &Store, out: &Path, backup_key: &SecretKey) -> anyhow::Result<u64> {
    store.flush()?;
    let mut file =
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    file.write_all(MAGIC)?;
    let mut chunk = Vec::with_capacity(CHUNK + 4096);
    let mut index = 0u64;
    let mut entries = 0u64;
    let mut emit =
        |chunk: &mut Vec<u8>, last: bool, file: &mut std::fs::File| -> anyhow::Result<()> {
            let sealed = backup_key.seal(&label(index, last), chunk)?;
            file.write_all(&(sealed.len() as u32).to_be_bytes())?;
            file.write_all(&sealed)?;
            chunk.clear();
            index += 1;
            Ok(())
        };
    for name in store.db().tree_names() {
        if name.as_ref() == b"meta" {
            continue; // the KEK fingerprint belongs to the store, not to the backup
        }
        let tree = store.db().open_tree(&name)?;
        for item in tree.iter() {
            let (k, v) = item?;
            let value = match (name.as_ref(), k.strip_prefix(b"dek/")) {
                (b"keys", Some(tenant)) => {
                    let tenant = String::from_utf8(tenant.to_vec())?;
                    backup_key.wrap(&tenant, &store.kek().unwrap(&tenant, &v)?)?
                }
                _ => v.to_vec(),
            };
            push_entry(&mut chunk, &name, &k, &value);
            entries += 1;
            if chunk.len() >= CHUNK {
                emit(&mut chunk, false, &mut file)?;
            }
        }
    }
    emit(&mut chunk, true, &mut file)?;
    file.sync_all()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(entries)
}

/// Restores a backup into an empty store, re-wrapping the data keys under the store's KEK.
/// The store takes the backup's names key with it: reopen it before using it.
pub fn restore(store: &Store, input: &Path, backup_key: &SecretKey) -> anyhow::Result<u64> {
    // A new store holds only its names key (and its metadata).
    let names_key = b"dek/.names".as_slice();
    let has_data = store.db().tree_names().iter().any(|n| {
        n.as_ref() != b"meta"
            && store
                .db()
                .open_tree(n)
                .map(|t| t.iter().keys().any(|k| k.map_or(true, |k| k != names_key)))
                .unwrap_or(true)
    });
    if has_data {
        bail!(
            "restore needs an empty store; {} holds data",
            store.path.display()
        );
    }
    let mut file =
        std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let mut magic = [0u8; 8];
    file.read_exact(&mut magic)?;
    if &magic != MAGIC {
        bail!("{} is not a Veil backup", input.display());
    }
    let mut entries = 0u64;
    let mut index = 0u64;
    let mut layout_1 = true;
    loop {
        let mut len = [0u8; 4];
        if file.read_exact(&mut len).is_err() {
            bail!("the backup ends without its last chunk (truncated)");
        }
        let mut sealed = vec![0u8; u32::from_be_bytes(len) as usize];
        file.read_exact(&mut sealed).context("truncated backup")?;
        let (plain, last) = match backup_key.open(&label(index, false), &sealed) {
            Some(p) => (p, false),
            None => match backup_key.open(&label(index, true), &sealed) {
                Some(p) => (p, true),
                None => bail!(
                    "backup chunk {index} does not decrypt: wrong backup key, or the backup was altered"
                ),
            },
        };
        let mut rest: &[u8] = &plain;
        let mut take = |n: usize| -> anyhow::Result<Vec<u8>> {
            if rest.len() < n {
                bail!("damaged backup chunk {index}");
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head.to_vec())
        };
        loop {
            let Ok(n) = take(2) else { break };
            let tree = take(u16::from_be_bytes([n[0], n[1]]) as usize)?;
            let n = take(4)?;
            let key = take(u32::from_be_bytes(n[..4].try_into()?) as usize)?;
            let n = take(4)?;
            let mut value = take(u32::from_be_bytes(n[..4].try_into()?) as usize)?;
            if tree == b"keys" && key == names_key {
                layout_1 = false;
            }
            if tree == b"keys"
                && let Some(tenant) = key.strip_prefix(b"dek/")
            {
                let tenant = String::from_utf8(tenant.to_vec())?;
                value = store
                    .kek()
                    .wrap(&tenant, &backup_key.unwrap(&tenant, &value)?)?;
            }
            store.db().open_tree(&tree)?.insert(key, value)?;
            entries += 1;
        }
        index += 1;
        if last {
            break;
        }
    }
    if layout_1 {
        // A backup of a layout-1 store: restored as such, migrated at the next opening.
        store.db().open_tree("keys")?.remove(names_key)?;
        store.db().open_tree("meta")?.remove(crate::store::LAYOUT)?;
    }
    store.flush()?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_names_sort_by_time_and_only_the_oldest_beyond_keep_go() {
        let a = scheduled_name(1_700_000_000_000_000_000);
        let b = scheduled_name(1_700_000_000_500_000_000);
        let c = scheduled_name(1_700_000_100_000_000_000);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(!a.contains(':'), "{a}");
        let names = vec![
            c.clone(),
            "notes.txt".to_owned(),
            a.clone(),
            format!("{b}.partial"),
            b.clone(),
        ];
        assert_eq!(beyond_keep(&names, 2), vec![a.clone()]);
        assert_eq!(beyond_keep(&names, 1), vec![a, b]);
        assert!(beyond_keep(&names, 5).is_empty());
    }
}
