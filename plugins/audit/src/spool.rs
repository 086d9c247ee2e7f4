// SPDX-License-Identifier: MIT OR Apache-2.0
//! The durable spool of one chain unit: a sled database holding every chained record from the
//! moment it is queued until the store acknowledges it.
//!
//! One tree, so that a record and the chain state it advances are written in one atomic batch:
//! `r` + big-endian seq → the record's published bytes; `m/next`, `m/head`, `m/acked` → chain
//! state. The writer appends (then flushes: a record counts as queued only once on disk), the
//! publisher reads and, on acknowledgement, removes.
//!
//! **Sealed at rest**: a record's value is `0xA5` ‖ 96-bit random nonce ‖ AES-256-GCM of (kind
//! ‖ bytes), with the record's key as associated data (a value moved to another sequence number
//! does not open). The key is the device's spool key (`DeviceKey::derive_secret("spool")`: the
//! device key file, mode 0600, refused otherwise), so the spool's files hold no tenant, site,
//! device or stream name and no record content (spooled records may be NG images). Values of
//! the unsealed format of earlier versions (kind index ‖ bytes) are still read.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use veil_wire::{GENESIS, Kind, Record};

/// The first byte of a sealed value (no kind index is this large).
const SEALED: u8 = 0xA5;
const NONCE_LEN: usize = 12;

const NEXT: &[u8] = b"m/next";
const HEAD: &[u8] = b"m/head";
const ACKED: &[u8] = b"m/acked";
const CONFIG_DIGEST: &[u8] = b"m/config";
const DETECTIONS_NEXT: &[u8] = b"m/detections";

fn kind_index(kind: Kind) -> u8 {
    Kind::ALL.iter().position(|&k| k == kind).unwrap_or(0) as u8
}

fn record_key(seq: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = b'r';
    key[1..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn read_u64(db: &sled::Db, key: &[u8]) -> Result<Option<u64>, sled::Error> {
    Ok(db
        .get(key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes))
}

pub struct Spool {
    db: sled::Db,
    cipher: Aes256Gcm,
    /// Sequence number the next appended record gets.
    next: AtomicU64,
    /// Highest sequence number the store acknowledged.
    acked: AtomicU64,
    head: std::sync::Mutex<String>,
}

#[derive(Debug)]
pub struct SpoolError(pub String);

impl std::fmt::Display for SpoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<sled::Error> for SpoolError {
    fn from(e: sled::Error) -> Self {
        SpoolError(format!("spool: {e}"))
    }
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, sealing with `key` (the device's spool key).
    pub fn open(dir: &Path, key: &[u8; 32]) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| SpoolError(format!("spool directory {}: {e}", dir.display())))?;
        let db = sled::Config::new()
            .path(dir)
            // The writer flushes explicitly after each group; no background flusher needed.
            .flush_every_ms(None)
            .open()
            .map_err(|e| {
                SpoolError(format!(
                    "spool {}: {e} (is another pipeline using it?)",
                    dir.display()
                ))
            })?;
        let next = read_u64(&db, NEXT)?.unwrap_or(1);
        let acked = read_u64(&db, ACKED)?.unwrap_or(0);
        let head = db
            .get(HEAD)?
            .and_then(|v| String::from_utf8(v.to_vec()).ok())
            .unwrap_or_else(|| GENESIS.to_string());
        Ok(Spool {
            db,
            cipher: Aes256Gcm::new(key.into()),
            next: AtomicU64::new(next),
            acked: AtomicU64::new(acked),
            head: std::sync::Mutex::new(head),
        })
    }

    pub fn next_seq(&self) -> u64 {
        self.next.load(Ordering::Acquire)
    }

    /// Sequence number of the last queued record (0 when none ever was).
    pub fn last_seq(&self) -> u64 {
        self.next_seq() - 1
    }

    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Acquire)
    }

    pub fn head(&self) -> String {
        self.head.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Records queued and not yet acknowledged.
    pub fn pending(&self) -> u64 {
        self.last_seq().saturating_sub(self.acked())
    }

    /// Appends records that continue the chain (seq = next, prev = head, in order) in one
    /// atomic batch and flushes it to disk.
    pub fn append(&self, records: &[Record]) -> Result<(), SpoolError> {
        let Some(last) = records.last() else {
            return Ok(());
        };
        let mut expected = self.next_seq();
        let mut batch = sled::Batch::default();
        for r in records {
            if r.seq != expected {
                return Err(SpoolError(format!(
                    "spool: record {} appended, {expected} expected",
                    r.seq
                )));
            }
            let mut plain = Vec::with_capacity(256);
            plain.push(kind_index(r.kind));
            plain.extend_from_slice(&r.to_vec());
            let key = record_key(r.seq);
            batch.insert(&key, self.seal(&key, &plain)?);
            expected += 1;
        }
        batch.insert(NEXT, &expected.to_be_bytes());
        batch.insert(HEAD, last.hash.as_bytes());
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        self.next.store(expected, Ordering::Release);
        if let Ok(mut head) = self.head.lock() {
            head.clone_from(&last.hash);
        }
        Ok(())
    }

    fn seal(&self, key: &[u8], plain: &[u8]) -> Result<Vec<u8>, SpoolError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| SpoolError(format!("spool: no random numbers: {e}")))?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: key,
                },
            )
            .map_err(|_| SpoolError("spool: sealing failed".into()))?;
        let mut value = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        value.push(SEALED);
        value.extend_from_slice(&nonce);
        value.extend_from_slice(&sealed);
        Ok(value)
    }

    /// A queued record: its kind and published bytes.
    pub fn get(&self, seq: u64) -> Result<Option<(Kind, Vec<u8>)>, SpoolError> {
        let key = record_key(seq);
        let Some(value) = self.db.get(key)? else {
            return Ok(None);
        };
        let plain = match value.split_first() {
            Some((&SEALED, rest)) if rest.len() > NONCE_LEN => {
                let (nonce, sealed) = rest.split_at(NONCE_LEN);
                self.cipher
                    .decrypt(
                        Nonce::from_slice(nonce),
                        Payload {
                            msg: sealed,
                            aad: &key,
                        },
                    )
                    .map_err(|_| {
                        SpoolError(format!(
                            "spool: record {seq} does not open with this device's key (another key file, or damaged)"
                        ))
                    })?
            }
            // The unsealed format of earlier versions.
            _ => value.to_vec(),
        };
        match plain.split_first() {
            Some((&k, bytes)) if (k as usize) < Kind::ALL.len() => {
                Ok(Some((Kind::ALL[k as usize], bytes.to_vec())))
            }
            _ => Err(SpoolError(format!("spool: record {seq} is damaged"))),
        }
    }

    pub fn detections_next(&self) -> u64 {
        read_u64(&self.db, DETECTIONS_NEXT)
            .ok()
            .flatten()
            .unwrap_or(1)
    }

    /// Saved with the next flush: detections are best-effort, a crash may reuse a few numbers.
    pub fn set_detections_next(&self, next: u64) -> Result<(), SpoolError> {
        self.db.insert(DETECTIONS_NEXT, &next.to_be_bytes())?;
        Ok(())
    }

    /// The store holds everything up to `seq`: drop it from the spool. Acknowledgements of
    /// records never queued, or older than the last, are ignored; returns whether it advanced.
    pub fn ack(&self, seq: u64) -> Result<bool, SpoolError> {
        let acked = self.acked();
        if seq <= acked || seq > self.last_seq() {
            return Ok(false);
        }
        let mut batch = sled::Batch::default();
        for s in acked + 1..=seq {
            batch.remove(&record_key(s));
        }
        batch.insert(ACKED, &seq.to_be_bytes());
        self.db.apply_batch(batch)?;
        // Not flushed here: losing an acknowledgement in a crash only means a resend, which the
        // store deduplicates.
        self.acked.store(seq, Ordering::Release);
        Ok(true)
    }

    pub fn flush(&self) -> Result<(), SpoolError> {
        self.db.flush()?;
        Ok(())
    }

    /// Digest of the last published configuration record.
    pub fn config_digest(&self) -> Option<String> {
        self.db
            .get(CONFIG_DIGEST)
            .ok()
            .flatten()
            .and_then(|v| String::from_utf8(v.to_vec()).ok())
    }

    pub fn set_config_digest(&self, digest: &str) -> Result<(), SpoolError> {
        self.db.insert(CONFIG_DIGEST, digest.as_bytes())?;
        Ok(())
    }

    /// Bytes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_wire::Names;

    fn records(spool: &Spool, n: u64) -> Vec<Record> {
        let names = Names::new("t", "s", "d", "x").unwrap();
        let mut head = spool.head();
        let mut out = Vec::new();
        for seq in spool.next_seq()..spool.next_seq() + n {
            let r = Record::new(
                &names,
                seq,
                0,
                None,
                Kind::Event,
                serde_json::json!({"i": seq}),
                Some(head.clone()),
            )
            .unwrap();
            head = r.hash.clone();
            out.push(r);
        }
        out
    }

    #[test]
    fn records_survive_reopening_until_acknowledged() {
        let dir = std::env::temp_dir().join(format!("veil-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let head;
        {
            let spool = Spool::open(&dir, &KEY).unwrap();
            let batch = records(&spool, 5);
            spool.append(&batch).unwrap();
            assert!(spool.ack(2).unwrap());
            assert!(
                !spool.ack(1).unwrap(),
                "an older acknowledgement is ignored"
            );
            assert!(
                !spool.ack(9).unwrap(),
                "records never queued cannot be acknowledged"
            );
            spool.flush().unwrap();
            head = spool.head();
        }
        let spool = Spool::open(&dir, &KEY).unwrap();
        assert_eq!(
            (spool.next_seq(), spool.acked(), spool.pending()),
            (6, 2, 3)
        );
        assert_eq!(spool.head(), head);
        assert!(spool.get(2).unwrap().is_none());
        let (kind, bytes) = spool.get(3).unwrap().unwrap();
        assert_eq!(
            (kind, Record::from_slice(&bytes).unwrap().seq),
            (Kind::Event, 3)
        );
        // A record that does not continue the sequence is refused.
        let mut wrong = records(&spool, 1);
        wrong[0].seq = 9;
        assert!(spool.append(&wrong).is_err());
        drop(spool);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const KEY: [u8; 32] = [7; 32];

    /// Every byte of every file below `dir`.
    fn raw_bytes(dir: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(raw_bytes(&path));
            } else {
                out.extend(std::fs::read(&path).unwrap());
            }
        }
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// What an attacker with the spool's files and without the device key sees: no name and
    /// no content; the same records read back with the key (the control), and another key
    /// opens nothing.
    #[test]
    fn the_spool_files_hold_no_names_and_no_content() {
        let dir = std::env::temp_dir().join(format!("veil-spool-sealed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let names = Names::new("acme-tenant", "hq-site", "cam-secret", "entrance-door").unwrap();
        let spool = Spool::open(&dir, &KEY).unwrap();
        let record = Record::new(
            &names,
            1,
            0,
            None,
            Kind::Image,
            serde_json::json!({"data": "NG-PART-PIXELS-BASE64"}),
            Some(GENESIS.into()),
        )
        .unwrap();
        spool.append(std::slice::from_ref(&record)).unwrap();
        spool.flush().unwrap();
        let (kind, bytes) = spool.get(1).unwrap().unwrap();
        assert_eq!(kind, Kind::Image);
        assert!(contains(&bytes, b"NG-PART-PIXELS-BASE64") && contains(&bytes, b"cam-secret"));
        drop(spool);
        let raw = raw_bytes(&dir);
        assert!(raw.len() > 100, "the spool wrote {} bytes", raw.len());
        for secret in [
            "acme-tenant",
            "hq-site",
            "cam-secret",
            "entrance-door",
            "NG-PART-PIXELS-BASE64",
        ] {
            assert!(
                !contains(&raw, secret.as_bytes()),
                "{secret} is readable in the spool files"
            );
        }
        let other = Spool::open(&dir, &[8; 32]).unwrap();
        assert!(other.get(1).is_err(), "another key opened the record");
        drop(other);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A spool written by an earlier version (values unsealed) is still read.
    #[test]
    fn unsealed_values_of_earlier_versions_are_read() {
        let dir = std::env::temp_dir().join(format!("veil-spool-old-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spool = Spool::open(&dir, &KEY).unwrap();
        let record = records(&spool, 1).remove(0);
        let mut old = vec![kind_index(Kind::Event)];
        old.extend_from_slice(&record.to_vec());
        spool.db.insert(record_key(1), old).unwrap();
        let (kind, bytes) = spool.get(1).unwrap().unwrap();
        assert_eq!(
            (kind, Record::from_slice(&bytes).unwrap()),
            (Kind::Event, record)
        );
        drop(spool);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
