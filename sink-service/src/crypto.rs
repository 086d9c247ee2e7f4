// SPDX-License-Identifier: MIT OR Apache-2.0
//! Encryption at rest: AES-256-GCM per record with a random 96-bit nonce.
//!
//! Each tenant has a data key (DEK); the DEKs are stored wrapped (AES-256-GCM) by the
//! key-encryption key (KEK), which lives in a file of mode 0600 outside the store. Rotating the
//! KEK re-wraps the DEKs only. A sealed value is `nonce ‖ ciphertext+tag`; its associated data
//! binds the tenant, the tree and the key, so a value moved to another tenant, tree or key no
//! longer opens.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

const NONCE: usize = 12;

fn random<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    Ok(out)
}

fn seal_with(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
    let cipher = Aes256Gcm::new(key.into());
    let nonce: [u8; NONCE] = random()?;
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| anyhow::anyhow!("encryption failed"))?;
    let mut out = Vec::with_capacity(NONCE + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open_with(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE + 16 {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE);
    Aes256Gcm::new(key.into())
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
}

/// A 256-bit key read from (or written to) a file holding 64 hex digits.
#[derive(Clone)]
pub struct SecretKey(pub [u8; 32]);

impl SecretKey {
    pub fn generate() -> anyhow::Result<SecretKey> {
        Ok(SecretKey(random()?))
    }

    /// Reads a key file; refuses one that group or others can access.
    pub fn load(path: &Path) -> anyhow::Result<SecretKey> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("key file {}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "key file {} is accessible to others (mode {mode:o}); it must be 0600: chmod 600 {}",
                path.display(),
                path.display()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("key file {}", path.display()))?;
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("key file {} does not hold 64 hex digits", path.display()))?;
        Ok(SecretKey(bytes))
    }

    /// Writes the key with mode 0600; never overwrites.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("writing key file {}", path.display()))?;
        writeln!(f, "{}", hex::encode(self.0))?;
        f.sync_all()?;
        Ok(())
    }

    /// Names the key without revealing it (to tell a wrong KEK from a damaged store).
    pub fn fingerprint(&self) -> String {
        hex::encode(&Sha256::digest([b"veil-key-fingerprint\0".as_slice(), &self.0].concat())[..8])
    }

    /// Wraps a tenant's data key.
    pub fn wrap(&self, tenant: &str, dek: &DataKey) -> anyhow::Result<Vec<u8>> {
        seal_with(&self.0, &wrap_aad(tenant), &dek.0)
    }

    pub fn unwrap(&self, tenant: &str, wrapped: &[u8]) -> anyhow::Result<DataKey> {
        let bytes = open_with(&self.0, &wrap_aad(tenant), wrapped).with_context(|| {
            format!("the data key of tenant {tenant} does not unwrap with this key")
        })?;
        Ok(DataKey(bytes.try_into().map_err(|_| {
            anyhow::anyhow!("damaged data key of {tenant}")
        })?))
    }

    /// Seals arbitrary bytes (backups) under this key with a label.
    pub fn seal(&self, label: &[u8], plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        seal_with(&self.0, label, plaintext)
    }

    pub fn open(&self, label: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.0, label, sealed)
    }
}

fn wrap_aad(tenant: &str) -> Vec<u8> {
    [b"veil-dek-v1\0".as_slice(), tenant.as_bytes()].concat()
}

/// A tenant's data key.
#[derive(Clone)]
pub struct DataKey(pub [u8; 32]);

fn record_aad(tenant: &str, tree: &str, key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + tenant.len() + tree.len() + key.len());
    aad.extend_from_slice(b"veil-rec-v1\0");
    aad.extend_from_slice(tenant.as_bytes());
    aad.push(0);
    aad.extend_from_slice(tree.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key);
    aad
}

impl DataKey {
    pub fn generate() -> anyhow::Result<DataKey> {
        Ok(DataKey(random()?))
    }

    pub fn seal(
        &self,
        tenant: &str,
        tree: &str,
        key: &[u8],
        plaintext: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        seal_with(&self.0, &record_aad(tenant, tree, key), plaintext)
    }

    pub fn open(&self, tenant: &str, tree: &str, key: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.0, &record_aad(tenant, tree, key), sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_records_open_only_where_they_were_sealed() {
        let dek = DataKey([9; 32]);
        let sealed = dek.seal("acme", "records", b"k1", b"hello").unwrap();
        assert_eq!(
            dek.open("acme", "records", b"k1", &sealed).unwrap(),
            b"hello"
        );
        assert!(
            dek.open("other", "records", b"k1", &sealed).is_none(),
            "moved to another tenant"
        );
        assert!(
            dek.open("acme", "staging", b"k1", &sealed).is_none(),
            "moved to another tree"
        );
        assert!(
            dek.open("acme", "records", b"k2", &sealed).is_none(),
            "moved to another key"
        );
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(
            dek.open("acme", "records", b"k1", &flipped).is_none(),
            "a flipped byte"
        );
        // Random nonces: sealing twice gives two ciphertexts.
        assert_ne!(
            sealed,
            dek.seal("acme", "records", b"k1", b"hello").unwrap()
        );
    }

    #[test]
    fn data_keys_unwrap_only_with_their_kek_and_tenant() {
        let kek = SecretKey([1; 32]);
        let dek = DataKey([2; 32]);
        let wrapped = kek.wrap("acme", &dek).unwrap();
        assert_eq!(kek.unwrap("acme", &wrapped).unwrap().0, dek.0);
        assert!(kek.unwrap("other", &wrapped).is_err());
        assert!(SecretKey([3; 32]).unwrap("acme", &wrapped).is_err());
        assert_ne!(kek.fingerprint(), SecretKey([3; 32]).fingerprint());
    }
}
