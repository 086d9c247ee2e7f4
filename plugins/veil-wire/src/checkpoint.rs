// SPDX-License-Identifier: MIT OR Apache-2.0
//! Signed checkpoints and the device's Ed25519 key.
//!
//! A `checkpoint` record's body is a [`Checkpoint`]: it names the chain unit, the sequence
//! number and hash of the record just before it (the chain head it vouches for) and the device's
//! public key. `signature` is the Ed25519 signature (hex) of the RFC 8785 canonical JSON of the
//! body without `signature`. A verifier that trusts the key trusts every record up to `seq`.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::record::canonical_json;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub tenant: String,
    pub device: String,
    pub stream: String,
    /// Sequence number of the last record covered.
    pub seq: u64,
    /// That record's hash.
    pub head: String,
    /// Ed25519 public key, 64 hex digits.
    pub public_key: String,
    /// 128 hex digits.
    pub signature: String,
}

impl Checkpoint {
    /// The bytes that are signed.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.remove("signature");
        }
        canonical_json(&value).unwrap_or_default()
    }

    /// Checks the signature against the key the checkpoint carries; returns that key.
    pub fn verify(&self) -> Result<VerifyingKey, String> {
        let key = parse_public_key(&self.public_key)?;
        let sig: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("signature is not 128 hex digits")?;
        key.verify_strict(&self.signed_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| "bad checkpoint signature".to_string())?;
        Ok(key)
    }
}

pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("public key is not 64 hex digits")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "public key is not an Ed25519 point".into())
}

/// The device's signing key.
pub struct DeviceKey(SigningKey);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "key file {path} is accessible to others (mode {mode:o}); it must be 0600: chmod 600 {path}"
    )]
    Permissions { path: String, mode: u32 },
    #[error("key file {path} does not hold a 64-hex-digit Ed25519 seed")]
    Format { path: String },
    #[error("no random numbers: {0}")]
    Random(String),
}

impl DeviceKey {
    pub fn generate() -> Result<DeviceKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(DeviceKey(SigningKey::from_bytes(&seed)))
    }

    pub fn from_seed(seed: [u8; 32]) -> DeviceKey {
        DeviceKey(SigningKey::from_bytes(&seed))
    }

    /// Loads the key, creating it (mode 0600, directories 0700) on first use. Refuses a key
    /// file that group or others can read or write.
    pub fn load_or_create(path: &Path) -> Result<DeviceKey, KeyError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let shown = path.display().to_string();
        let io = |source| KeyError::Io {
            path: shown.clone(),
            source,
        };
        match std::fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(KeyError::Permissions { path: shown, mode });
                }
                let text = std::fs::read_to_string(path).map_err(io)?;
                let seed: [u8; 32] = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or(KeyError::Format {
                        path: shown.clone(),
                    })?;
                Ok(DeviceKey::from_seed(seed))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .map_err(io)?;
                }
                let key = DeviceKey::generate()?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io)?;
                writeln!(file, "{}", hex::encode(key.0.to_bytes())).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A secret of the device derived from its key for one purpose (`label`), e.g. the key
    /// that seals the spool: SHA-256(`veil/` ‖ label ‖ 0 ‖ seed). The seed is 32 random bytes,
    /// so one hash is a sound key derivation; distinct labels give independent keys.
    pub fn derive_secret(&self, label: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"veil/");
        h.update(label.as_bytes());
        h.update([0u8]);
        h.update(self.0.to_bytes());
        h.finalize().into()
    }

    /// The store's signed acknowledgement of `seq` (whose record has `hash`) for `names`.
    pub fn sign_ack(&self, names: &crate::Names, seq: u64, hash: &str) -> crate::Ack {
        let signature = self.0.sign(&crate::Ack::signed_bytes(names, seq, hash));
        crate::Ack {
            v: crate::record::WIRE_VERSION,
            seq,
            hash: Some(hash.to_owned()),
            signature: Some(hex::encode(signature.to_bytes())),
        }
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().to_bytes())
    }

    pub fn sign_checkpoint(
        &self,
        tenant: &str,
        device: &str,
        stream: &str,
        seq: u64,
        head: &str,
    ) -> Checkpoint {
        let mut cp = Checkpoint {
            tenant: tenant.into(),
            device: device.into(),
            stream: stream.into(),
            seq,
            head: head.into(),
            public_key: self.public_hex(),
            signature: String::new(),
        };
        cp.signature = hex::encode(self.0.sign(&cp.signed_bytes()).to_bytes());
        cp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn signatures_verify_and_any_change_breaks_them() {
        let key = DeviceKey::from_seed([7; 32]);
        let cp = key.sign_checkpoint("acme", "cam-3", "entrance", 10, &"ab".repeat(32));
        assert_eq!(
            cp.verify().unwrap().to_bytes().to_vec(),
            hex::decode(key.public_hex()).unwrap()
        );
        let mut moved = cp.clone();
        moved.tenant = "other".into();
        assert!(moved.verify().is_err());
        let mut later = cp.clone();
        later.seq = 11;
        assert!(later.verify().is_err());
        let mut foreign = cp;
        foreign.public_key = DeviceKey::from_seed([8; 32]).public_hex();
        assert!(foreign.verify().is_err());
    }

    #[test]
    fn key_file_is_created_private_and_refused_when_readable() {
        let dir = std::env::temp_dir().join(format!("veil-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("keys/device.key");
        let first = DeviceKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Same key on the next start.
        assert_eq!(
            DeviceKey::load_or_create(&path).unwrap().public_hex(),
            first.public_hex()
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = DeviceKey::load_or_create(&path).err().unwrap();
        assert!(err.to_string().contains("must be 0600"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
