// SPDX-License-Identifier: MIT OR Apache-2.0
//! Where a device keeps its spools and its key, named so that no directory spells a tenant,
//! device or stream.
//!
//! `<spool-dir>/<D>/device.key` and `<spool-dir>/<D>/streams/<S>/`, where `D` is the first 16
//! bytes (hex) of SHA-256(`veil-spool-device␀tenant␀device`) — unkeyed, since the device key
//! lives there: a name is not spelled out, though someone who guesses it can confirm it — and
//! `S` those of SHA-256(spool-names secret of the device key ‖ stream), which nobody without
//! the key can confirm. Spools of earlier versions (`<spool-dir>/<tenant>/<device>/…` with
//! `streams/<stream>/`) are moved into place when found.

use std::path::{Path, PathBuf};

use crate::DeviceKey;
use sha2::{Digest, Sha256};

fn short_hex(digest: &[u8]) -> String {
    hex::encode(&digest[..16])
}

/// The device's directory: spools and, by default, its key.
pub fn device_dir(root: &Path, tenant: &str, device: &str) -> PathBuf {
    let mut h = Sha256::new();
    for part in [
        b"veil-spool-device".as_slice(),
        tenant.as_bytes(),
        device.as_bytes(),
    ] {
        h.update(part);
        h.update([0]);
    }
    root.join(short_hex(&h.finalize()))
}

/// A stream's spool directory inside the device's.
pub fn stream_dir(device_dir: &Path, key: &DeviceKey, stream: &str) -> PathBuf {
    let mut h = Sha256::new();
    h.update(key.derive_secret("spool-names"));
    h.update(stream.as_bytes());
    device_dir.join("streams").join(short_hex(&h.finalize()))
}

/// Moves the directory of a device (before its key is loaded) from the earlier layout, if it
/// is there and the new one is not; removes the tenant directory left empty.
///
/// Errors: the rename failing (permissions, another file system).
pub fn adopt_device_dir(root: &Path, tenant: &str, device: &str) -> std::io::Result<()> {
    let old = root.join(tenant).join(device);
    let new = device_dir(root, tenant, device);
    if old.is_dir() && !new.exists() {
        std::fs::rename(&old, &new)?;
        let _ = std::fs::remove_dir(root.join(tenant));
    }
    Ok(())
}

/// Moves a stream's spool from the earlier layout (`streams/<stream>`), if it is there and the
/// new one is not.
///
/// Errors: the rename failing.
pub fn adopt_stream_dir(device_dir: &Path, key: &DeviceKey, stream: &str) -> std::io::Result<()> {
    let old = device_dir.join("streams").join(stream);
    let new = stream_dir(device_dir, key, stream);
    if old.is_dir() && !new.exists() {
        std::fs::rename(&old, &new)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_hashed_and_old_spools_move_into_place() {
        let root = std::env::temp_dir().join(format!("veil-spool-dirs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let key = DeviceKey::from_seed([5; 32]);
        let dir = device_dir(&root, "acme-corp", "camera-01");
        let stream = stream_dir(&dir, &key, "entrance");
        for path in [&dir, &stream] {
            let text = path.display().to_string();
            assert!(
                !text.contains("acme") && !text.contains("camera") && !text.contains("entrance")
            );
        }
        // Distinct names, distinct directories; another key, another stream directory.
        assert_ne!(dir, device_dir(&root, "acme-corp", "camera-02"));
        assert_ne!(dir, device_dir(&root, "acme-cor", "pcamera-01"));
        assert_ne!(
            stream,
            stream_dir(&dir, &DeviceKey::from_seed([6; 32]), "entrance")
        );
        // The earlier layout moves over, with what it holds.
        let old_stream = root.join("acme-corp/camera-01/streams/entrance");
        std::fs::create_dir_all(&old_stream).unwrap();
        std::fs::write(old_stream.join("conf"), b"spooled").unwrap();
        std::fs::write(root.join("acme-corp/camera-01/device.key"), b"key").unwrap();
        adopt_device_dir(&root, "acme-corp", "camera-01").unwrap();
        adopt_stream_dir(&dir, &key, "entrance").unwrap();
        assert_eq!(std::fs::read(stream.join("conf")).unwrap(), b"spooled");
        assert_eq!(std::fs::read(dir.join("device.key")).unwrap(), b"key");
        assert!(!root.join("acme-corp").exists());
        // Idempotent.
        adopt_device_dir(&root, "acme-corp", "camera-01").unwrap();
        adopt_stream_dir(&dir, &key, "entrance").unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }
}
